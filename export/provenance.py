"""Who exported a version, from which code, and what it is: the ``provenance`` block of ``metadata.json``.

``DESCRIPTION=`` and ``TAGS=`` are the user's words; the user name and the git commit of the working tree
(when the export runs inside a git checkout) are recorded so a version can be traced back to the code that
produced it. ``dirty`` says the tree had uncommitted changes, i.e. the commit alone does not reproduce it.
Standard library only; git is optional (missing git or no repository records ``null``).
"""
from __future__ import annotations

import getpass
import os
import re
import subprocess
from pathlib import Path

from .errors import ExportError

_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=+-]{0,63}$")
MAX_DESCRIPTION = 2000


def parse_tags(text: str | list[str] | None) -> list[str]:
    """``"a,b c"`` (commas or spaces) -> ``["a", "b", "c"]``, order kept, duplicates dropped."""
    items = text if isinstance(text, list) else re.split(r"[,\s]+", text or "")
    tags: list[str] = []
    for tag in (t.strip() for t in items):
        if not tag:
            continue
        if not _TAG.match(tag):
            raise ExportError(f"TAGS: {tag!r} is not a valid tag (letters, digits and _ . : / = + -, max 64)")
        if tag not in tags:
            tags.append(tag)
    return tags


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid) and no LOGNAME/USER
        return os.environ.get("USER") or None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict | None:
    """``{"commit", "dirty"}`` of the git working tree containing ``cwd``; None outside one (or without git)."""
    cwd = Path(cwd or Path.cwd())
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit, "dirty": bool(status)}


def provenance(description: str | None, tags: list[str], cwd: Path | None = None) -> dict:
    """The ``provenance`` record: description, tags, user and git state."""
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ExportError(f"DESCRIPTION is {len(description)} characters; keep it under {MAX_DESCRIPTION}")
    return {"description": description or None, "tags": list(tags), "user": _user(), "git": git_state(cwd)}
