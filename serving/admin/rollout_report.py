"""What a rollout tells its user: one numbered progress line per step, then a short table, also as JSON.

Every check (preflight, load, label, verification, shadow load, promotion) ends up as a `Check` with a
one-line *figure* ("max |diff| 0 over gRPC and REST (atol 1e-05)", "p99 canary 3.1 ms / stable 2.9 ms = x1.07"),
so a failed rollout names the check that failed and the number that failed it. The same records go into the
label history and the version's `metadata.json` (`rollouts`), so `versions`/`history` can show them later.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from serving.admin.fsutil import atomic_write_text

__all__ = ["Check", "Progress", "RolloutReport", "format_report"]

PROMOTED = "promoted"
ROLLED_BACK = "rolled back"
REFUSED = "refused"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Check:
    """One check of a rollout: its name, whether it passed, the figure that decided it, and the details."""

    name: str
    passed: bool
    figure: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RolloutReport:
    """The whole rollout: who, when, against which server, every check, and how it ended."""

    name: str
    version: int | None
    previous_stable: int | None
    server: str
    by: str
    started: str
    finished: str = ""
    result: str = ""
    failed_check: str | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.result == PROMOTED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The compact record kept in `.labels.json` and `metadata.json` (figures, no bulky details)."""
        doc = self.to_json()
        doc["checks"] = [{"name": c.name, "passed": c.passed, "figure": c.figure} for c in self.checks]
        return doc

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2, default=str) + "\n")
        return path


def format_report(report: RolloutReport) -> str:
    """The final table: one row per check (PASS/FAIL, figure), then the outcome in one line."""
    rows = [(c.name, "PASS" if c.passed else "FAIL", c.figure) for c in report.checks]
    width = max([len("CHECK")] + [len(r[0]) for r in rows])
    lines = [f"{'CHECK'.ljust(width)}  RESULT  FIGURE"]
    lines += [f"{n.ljust(width)}  {r.ljust(6)}  {f}" for n, r, f in rows]
    if report.succeeded:
        outcome = (f"{report.name}: stable {report.previous_stable} -> {report.version} (version "
                   f"{report.previous_stable} stays loaded: `make rollback NAME={report.name}` switches back)")
    elif report.result == REFUSED:
        outcome = f"{report.name}: rollout of version {report.version} refused by {report.failed_check}; nothing changed"
    else:
        outcome = (f"{report.name}: rollout of version {report.version} {report.result} "
                   f"(failed check: {report.failed_check}); stable still -> {report.previous_stable}")
    return "\n".join([*lines, *(f"note: {n}" for n in report.notes), outcome])


class Progress:
    """Numbered step lines: `[3/7] verify canary over gRPC and REST ... ok (0.2s): max |diff| 0`."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.index = 0
        self.stream = stream or sys.stdout
        self._start = 0.0

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, label: str) -> None:
        self.index += 1
        self._start = time.monotonic()
        print(f"[{self.index}/{self.total}] {label} ... ", end="", file=self.stream, flush=True)

    def end(self, check: Check | None = None, text: str = "done") -> float:
        seconds = time.monotonic() - self._start
        if check is not None:
            text = f"{'ok' if check.passed else 'FAILED'}: {check.figure}"
        print(f"{text} ({seconds:.1f}s)", file=self.stream, flush=True)
        return seconds
