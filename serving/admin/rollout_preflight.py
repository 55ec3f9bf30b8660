"""Rollout preflight: everything that can be proven from the files before the server is touched.

The candidate version must exist, carry the exporter's record (`metadata.json`) describing *this* directory,
have passed its parity gate without `--force`, still hold the files that gate saw (sha256 of every file in
the record), have its recorded parity samples (what the live verification replays), and keep the
`serving_default` contract of the version labelled `stable` (`export.contract`, the exporter's own rule).
Any failure raises `PreflightError` naming the check; nothing has been written at that point.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.compare import DEFAULT_ATOL, DEFAULT_RTOL
from export.contract import format_diff, signature_diff
from export.metadata import file_hashes
from export.parity import PARITY_INPUTS, PARITY_REFERENCE, load_arrays
from serving.admin import layout
from serving.admin.errors import AdminError
from serving.admin.labels import STABLE, LabelState

__all__ = ["Candidate", "PreflightError", "preflight"]


class PreflightError(AdminError):
    """A preflight check refused the version; `check` names it, the message gives the figure."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


@dataclass(frozen=True)
class Candidate:
    """The version to roll out, with what the live checks replay: recorded inputs, reference and tolerance."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]
    stable: int
    inputs: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    rtol: float
    atol: float


def _pick(versions: list[layout.VersionInfo], version: int | None, name: str) -> layout.VersionInfo:
    if not versions:
        raise PreflightError("version exists", f"model {name!r} has no numbered version directory")
    if version is None:
        return versions[-1]
    info = next((v for v in versions if v.version == version), None)
    if info is None:
        have = ", ".join(str(v.version) for v in versions)
        raise PreflightError("version exists", f"model {name!r} has no version {version} (versions: {have})")
    return info


def _check_record(info: layout.VersionInfo) -> dict[str, Any]:
    meta = info.metadata
    if meta is None:
        raise PreflightError("export record", f"version {info.version} has no {layout.METADATA_FILE}: it was not "
                             "exported by `python -m export`, so nothing proves its parity")
    if meta.get("version") != info.version:
        raise PreflightError("export record", f"{info.path / layout.METADATA_FILE} describes version "
                             f"{meta.get('version')}, not {info.version} (copied or renamed directory)")
    parity = meta.get("parity") if isinstance(meta.get("parity"), dict) else {}
    if parity.get("passed") is not True or meta.get("forced"):
        failures = "; ".join(str(f.get("detail", f)) for f in parity.get("failures", [])[:3]) or "no parity record"
        raise PreflightError("export parity", f"version {info.version} did not pass its export parity gate "
                             f"({'published with --force: ' if meta.get('forced') else ''}{failures})")
    return meta


def _check_files(info: layout.VersionInfo, meta: dict[str, Any]) -> int:
    """The version's files are the ones the parity gate saw (a half-synced or edited copy is refused)."""
    recorded = meta.get("files")
    if not isinstance(recorded, dict) or not recorded:
        raise PreflightError("files intact", f"{info.path / layout.METADATA_FILE} records no file hashes")
    actual = file_hashes(info.path, exclude=(layout.METADATA_FILE,))
    missing = sorted(set(recorded) - set(actual))
    changed = sorted(k for k in set(recorded) & set(actual) if recorded[k] != actual[k])
    if missing or changed:
        parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + \
                ([f"changed {', '.join(changed[:5])}"] if changed else [])
        raise PreflightError("files intact", f"version {info.version} differs from what its export proved: "
                             + "; ".join(parts))
    return len(recorded)


def _check_contract(name: str, info: layout.VersionInfo, meta: dict[str, Any], stable: layout.VersionInfo) -> None:
    if stable.metadata is None or "signature" not in stable.metadata:
        raise PreflightError("signature", f"stable version {stable.version} has no export record to compare with")
    changes = signature_diff(stable.metadata["signature"], meta.get("signature", {}))
    if changes:
        raise PreflightError("signature", format_diff(changes, f"{name} stable version {stable.version}",
                                                      f"version {info.version}")
                             + "\nre-export under a new model name, or migrate clients first")


def preflight(models_dir: Path, name: str, version: int | None, labels: LabelState) -> tuple[Candidate, list[str]]:
    """Run every file check on `version` of `name` (None: the newest); returns the candidate and figures."""
    mdir = layout.model_dir(models_dir, name)
    versions = layout.list_versions(mdir)
    info = _pick(versions, version, name)
    stable_v = labels.labels.get(STABLE)
    if stable_v is None:
        raise PreflightError("stable label", f"model {name!r} has no 'stable' version to roll out against; "
                             f"promote one first: make promote NAME={name} LABEL=stable VERSION=<n>")
    if stable_v == info.version:
        raise PreflightError("version exists", f"version {info.version} of {name!r} is already stable")
    stable = next((v for v in versions if v.version == stable_v), None)
    if stable is None:
        raise PreflightError("stable label", f"stable points at version {stable_v}, which no longer exists")
    meta = _check_record(info)
    files = _check_files(info, meta)
    _check_contract(name, info, meta, stable)
    try:
        inputs = load_arrays(info.path / PARITY_INPUTS)
        reference = load_arrays(info.path / PARITY_REFERENCE)
    except (OSError, ValueError) as err:
        raise PreflightError("parity samples", f"version {info.version}: recorded parity samples unreadable "
                             f"({err})") from err
    parity = meta["parity"]
    candidate = Candidate(name, info.version, info.path, meta, stable_v, inputs, reference,
                          float(parity.get("rtol", DEFAULT_RTOL)), float(parity.get("atol", DEFAULT_ATOL)))
    rows = next(iter(inputs.values())).shape[0] if inputs else 0
    figures = [f"version {info.version} (stable {stable_v}), export parity passed "
               f"(rtol {candidate.rtol:g}, atol {candidate.atol:g}), {files} files intact, "
               f"signature compatible, {rows} recorded samples"]
    return candidate, figures
