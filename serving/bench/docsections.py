"""Generated pages share ``docs/perf/README.md``: ``make bench`` writes the page, ``make bench-peers`` owns its
``## Goals (issue 11 ...)`` section, and the how-to section is static. A section runs from its ``## `` heading
to the next ``## `` heading; each writer replaces only its own and keeps the others."""
from __future__ import annotations

PEER_GOALS = "## Goals (issue 11: `make bench-peers`)"  # owned by ``make bench-peers``
BENCH_GOALS = "## Goals (issue 6)"  # owned by ``make bench``


def _bounds(lines: list[str], heading: str) -> tuple[int, int] | None:
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading.rstrip()), None)
    if start is None:
        return None
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
    return start, end


def extract(text: str, heading: str) -> str | None:
    """The section under ``heading`` (heading line included), or None."""
    lines = text.splitlines()
    found = _bounds(lines, heading)
    return None if found is None else "\n".join(lines[found[0]:found[1]]).rstrip() + "\n"


def upsert(text: str, heading: str, section: str, before: str | None = None) -> str:
    """``text`` with the ``heading`` section replaced by ``section`` (which starts with its heading); a new
    section goes before the ``before`` heading when there is one, else at the end."""
    lines = text.splitlines()
    new = section.rstrip().splitlines() + [""]
    found = _bounds(lines, heading)
    if found is not None:
        lines[found[0]:found[1]] = new
    else:
        anchor = _bounds(lines, before) if before else None
        at = anchor[0] if anchor else len(lines)
        if at == len(lines) and lines and lines[-1].strip():
            lines.append("")
        lines[at:at] = new
    return "\n".join(lines).rstrip() + "\n"
