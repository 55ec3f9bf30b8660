"""Refuse a new version whose ``serving_default`` would break the clients of the latest published one.

The rule itself is ``export.contract.signature_diff`` (shared with the rollout preflight). This module finds
what to compare with, the newest version of the name that has a readable ``metadata.json``, and turns an
incompatible diff into ``SignatureChangeError`` unless the user allowed it (``ALLOW_SIGNATURE_CHANGE=1``),
in which case the change is returned for the metadata record. Runs under the model lock, at publish time,
so a concurrent export cannot slip a version in between the check and the rename.
"""
from __future__ import annotations

from pathlib import Path

from .contract import format_diff, signature_diff
from .errors import SignatureChangeError
from .metadata import read_metadata, version_dirs


def latest_signature(model_dir: Path) -> tuple[int, dict] | None:
    """``(version, signature record)`` of the newest version with export metadata, or None."""
    for number, path in reversed(version_dirs(model_dir)):
        try:
            meta = read_metadata(path)
        except (OSError, ValueError):
            continue  # copied in by hand, or another tool's version: nothing to compare with
        if isinstance(meta.get("signature"), dict):
            return number, meta["signature"]
    return None


def check_signature(model_dir: Path, new: dict, new_version: int, *, allow_change: bool) -> dict | None:
    """None when compatible (or nothing published); the allowed change record; or SignatureChangeError."""
    previous = latest_signature(model_dir)
    if previous is None:
        return None
    old_version, old = previous
    changes = signature_diff(old, new)
    if not changes:
        return None
    diff = format_diff(changes, old_label=f"version {old_version}", new_label=f"version {new_version}")
    if not allow_change:
        raise SignatureChangeError(
            f"{diff}\nclients of version {old_version} would break: keep the keys, dtypes and shapes (INPUT_NAMES=/"
            "OUTPUT_NAMES= rename keys), publish under a new NAME, or pass ALLOW_SIGNATURE_CHANGE=1 "
            "(recorded in metadata.json)"
        )
    return {"allowed": True, "from_version": old_version, "changes": [str(c) for c in changes]}
