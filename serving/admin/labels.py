"""Version labels and their promotion history: `<models_dir>/<name>/.labels.json` (ours; `.registry.json`
belongs to the exporter).

    {"labels": {"stable": 2, "canary": 3},
     "stable_history": [1, 2],                      # every stable version in promotion order; the last is current
     "events": [{"at": "...Z", "action": "promote", "label": "stable", "version": 2, "previous": 1,
                 "by": "alice"}, ...]}                # who ran the command (older files lack "by")

`rollback` pops the current stable off `stable_history` and re-labels the one below it, so repeated
rollbacks walk back through every earlier stable version. `models.config` keeps that rollback target
loaded, so a rollback is a label move between two versions the server already holds. The file name starts with a dot, so TF Serving
and the local server never mistake it for a version.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.admin.errors import AdminError
from serving.admin.fsutil import atomic_write_text

LABELS_FILE = ".labels.json"
STABLE = "stable"
CANARY = "canary"
# TF Serving resolves a label only if it is not a number; keep labels to plain identifiers.
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def check_label(label: str) -> str:
    """Return `label` if it is a usable TF Serving version label, else raise AdminError."""
    if not _LABEL_RE.match(label or ""):
        raise AdminError(f"invalid label {label!r}: use a name such as 'stable' or 'canary' "
                         "(a letter, then letters, digits, '_', '.', '-')")
    return label


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def current_user() -> str:
    """Who runs this command, for the label history (login name; "unknown" where the system has none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "unknown"


@dataclass
class LabelState:
    """The labels of one model and how they got there (mutable; saved with `save_labels`)."""

    labels: dict[str, int] = field(default_factory=dict)
    stable_history: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def assign(self, label: str, version: int, action: str = "promote") -> int | None:
        """Point `label` at `version`; record it. Returns the version it pointed at before (or None)."""
        previous = self.labels.get(label)
        self.labels[label] = version
        if label == STABLE and (not self.stable_history or self.stable_history[-1] != version):
            self.stable_history.append(version)
        self.events.append({"at": _utc_now(), "action": action, "label": label, "version": version,
                            "previous": previous, "by": current_user()})
        return previous

    def rollback_target(self, existing: set[int]) -> int | None:
        """The version `rollback` would move `stable` to: the latest earlier stable that still exists."""
        current = self.labels.get(STABLE)
        earlier = [v for v in self.stable_history if v != current and v in existing]
        return earlier[-1] if earlier else None

    def rollback_stable(self, existing: set[int]) -> tuple[int, int]:
        """Move `stable` to the previous stable version that still exists. Returns (from, to)."""
        current = self.labels.get(STABLE)
        if current is None:
            raise AdminError("no 'stable' label to roll back (promote a version to stable first)")
        target = self.rollback_target(existing)
        if target is None:
            raise AdminError(f"no earlier stable version to roll back to (stable is {current}; "
                             "every earlier stable version is gone or none was ever promoted)")
        # Drop everything promoted after the target, so the next rollback goes further back.
        cut = len(self.stable_history) - 1 - self.stable_history[::-1].index(target)
        self.stable_history = self.stable_history[:cut + 1]
        self.labels[STABLE] = target
        self.events.append({"at": _utc_now(), "action": "rollback", "label": STABLE, "version": target,
                            "previous": current, "by": current_user()})
        return current, target


def _as_int(value: Any, path: Path, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AdminError(f"{path}: {what} must be a non-negative integer version, got {value!r}")
    return value


def load_labels(model_dir: Path) -> LabelState:
    """Read `.labels.json` of the model at `model_dir` (an empty state if there is none yet)."""
    path = model_dir / LABELS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LabelState()
    except json.JSONDecodeError as err:
        raise AdminError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("labels", {}), dict):
        raise AdminError(f"{path}: expected an object with a 'labels' object")
    labels = {check_label(k): _as_int(v, path, f"label {k!r}") for k, v in raw.get("labels", {}).items()}
    history = [_as_int(v, path, "stable_history entry") for v in raw.get("stable_history", [])]
    events = raw.get("events", [])
    if not isinstance(events, list):
        raise AdminError(f"{path}: 'events' must be a list")
    return LabelState(labels=labels, stable_history=history, events=events)


def save_labels(model_dir: Path, state: LabelState) -> None:
    """Write the state atomically (readers never see half a file)."""
    doc = {"labels": dict(sorted(state.labels.items())), "stable_history": state.stable_history,
           "events": state.events}
    atomic_write_text(model_dir / LABELS_FILE, json.dumps(doc, indent=2) + "\n")
