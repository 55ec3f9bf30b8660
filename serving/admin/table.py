"""The registry's tables, read-only: `versions` (one row per version from its export metadata) and `history`
(one row per label move kept in `.labels.json`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from export.metadata import ONNX_OK, onnx_state
from serving.admin import layout
from serving.admin.labels import load_labels

COLUMNS = ("version", "created", "labels", "parity", "onnx", "total", "saved_model", "onnx_size", "notes")
# Shown only when some version has them (exports before DESCRIPTION=/TAGS= existed have neither).
OPTIONAL_COLUMNS = ("tags", "description")
HISTORY_COLUMNS = ("at", "action", "label", "version", "previous", "by", "details")
MAX_DESCRIPTION = 60

__all__ = ["COLUMNS", "HISTORY_COLUMNS", "OPTIONAL_COLUMNS", "all_version_rows", "format_table", "history_rows",
           "human_bytes", "table_columns", "version_rows"]


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


def _onnx_status(meta: Mapping[str, Any]) -> str:
    """ok | failed | skipped from the export's ONNX record (records from before the field read as ok)."""
    return onnx_state(dict(meta))[0]


def _tags(meta: Mapping[str, Any]) -> str:
    tags = meta.get("tags")
    if isinstance(tags, dict):  # KEY=VALUE tags
        return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    if isinstance(tags, list | tuple):
        return ",".join(str(t) for t in tags)
    return str(tags) if tags else ""


def _description(meta: Mapping[str, Any]) -> str:
    text = " ".join(str(meta.get("description") or "").split())  # one line, whatever the file holds
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 3] + "..."


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
            "onnx": _onnx_status(meta),
            "total": human_bytes(sizes.get("total_bytes")),
            "saved_model": human_bytes(sizes.get("saved_model_bytes")),
            "onnx_size": human_bytes(sizes.get("onnx_bytes")),
            "notes": _notes(info) or "-",
            "tags": _tags(meta) or "-",
            "description": _description(meta) or "-",
        })
    return rows


def all_version_rows(models_dir: Path) -> list[dict[str, str]]:
    """`version_rows` of every model under `models_dir` (by name), each row with a leading `model`."""
    return [{"model": name, **row} for name in layout.model_names(models_dir)
            for row in version_rows(models_dir, name)]


def table_columns(rows: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
    """The versions table's columns for these rows: `model` when listing several models, the optional
    columns when any row has a value for them."""
    lead = ("model",) if rows and "model" in rows[0] else ()
    extra = tuple(c for c in OPTIONAL_COLUMNS if any(r.get(c, "-") != "-" for r in rows))
    return lead + COLUMNS + extra


def _event_details(event: Mapping[str, Any]) -> str:
    """Whatever else an event records (a rollout report, a reason), as key=value."""
    known = {"at", "action", "label", "version", "previous", "by"}
    return " ".join(f"{k}={v}" for k, v in event.items() if k not in known and not isinstance(v, dict | list))


def history_rows(models_dir: Path, name: str) -> list[dict[str, str]]:
    """The label moves of model `name`, oldest first, from `.labels.json` (promote, rollback, rollout...)."""
    events = load_labels(layout.model_dir(models_dir, name)).events
    return [{
        "at": str(e.get("at") or "-"),
        "action": str(e.get("action") or "-"),
        "label": str(e.get("label") or "-"),
        "version": "-" if e.get("version") is None else str(e["version"]),
        "previous": "-" if e.get("previous") is None else str(e["previous"]),
        "by": str(e.get("by") or "-"),
        "details": _event_details(e) or "-",
    } for e in events if isinstance(e, dict)]


def format_table(rows: Sequence[Mapping[str, str]], columns: Sequence[str] | None = None) -> str:
    """Left-aligned plain-text columns with a header line (stable for scripts: one row per line).
    `columns` defaults to the versions table's (`table_columns`)."""
    columns = tuple(columns) if columns is not None else table_columns(rows)
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)
