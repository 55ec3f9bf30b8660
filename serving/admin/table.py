"""The `versions` table: one row per version from its export metadata (version, created, labels, parity, sizes,
ONNX state: the size when ``model.onnx`` was published, ``failed``/``skipped`` when it was not)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from export.metadata import ONNX_OK, onnx_state
from serving.admin import layout
from serving.admin.labels import load_labels

COLUMNS = ("version", "created", "labels", "parity", "total", "saved_model", "onnx", "notes")

__all__ = ["COLUMNS", "format_table", "human_bytes", "version_rows"]


def human_bytes(n: object) -> str:
    """1536 -> '1.5 KiB'; '-' for a missing or non-integer size."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _parity(info: layout.VersionInfo) -> str:
    passed = info.parity_passed
    if passed is None:
        return "unknown"
    parity = info.metadata.get("parity", {}) if info.metadata else {}
    tol = f" (rtol={parity['rtol']}, atol={parity['atol']})" if "rtol" in parity and "atol" in parity else ""
    return ("pass" if passed else "FAIL") + tol


def _onnx(info: layout.VersionInfo, size: object) -> str:
    status, _reason = onnx_state(info.metadata)
    if status == ONNX_OK:
        return human_bytes(size)
    return status  # failed | skipped | unknown (no metadata)


def _notes(info: layout.VersionInfo) -> str:
    meta = info.metadata
    if meta is None:
        return f"no {layout.METADATA_FILE}"
    notes = [flag for flag in ("forced", "unsafe") if meta.get(flag)]
    if meta.get("signature_change"):
        notes.append("signature-change")
    status, reason = onnx_state(meta)
    if status != ONNX_OK and reason:
        notes.append(f"onnx: {reason[:60]}")
    return ",".join(notes)


def version_rows(models_dir: Path, name: str) -> list[dict[str, str]]:
    """The table rows (newest first) for model `name` under `models_dir`."""
    mdir = layout.model_dir(models_dir, name)
    by_version: dict[int, list[str]] = {}
    for label, version in sorted(load_labels(mdir).labels.items()):
        by_version.setdefault(version, []).append(label)
    rows = []
    for info in reversed(layout.list_versions(mdir)):
        meta = info.metadata or {}
        sizes: Mapping[str, object] = meta.get("sizes") or {}
        rows.append({
            "version": str(info.version),
            "created": str(meta.get("created", "-")),
            "labels": ",".join(by_version.get(info.version, [])) or "-",
            "parity": _parity(info),
            "total": human_bytes(sizes.get("total_bytes")),
            "saved_model": human_bytes(sizes.get("saved_model_bytes")),
            "onnx": _onnx(info, sizes.get("onnx_bytes")),
            "notes": _notes(info) or "-",
        })
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """Left-aligned plain-text columns with a header line (stable for scripts: one row per line)."""
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)
