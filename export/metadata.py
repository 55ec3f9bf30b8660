"""The registry record of a version (``metadata.json``) and the version-directory listing.

Imported by the deploy tools and the server's ONNX backend, which must not pay for TensorFlow: this module
imports nothing heavier than the standard library.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from importlib import metadata as _pkg
from pathlib import Path

METADATA_FILE = "metadata.json"
SCHEMA = 1
PACKAGES = ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "numpy")


ONNX_OK, ONNX_FAILED, ONNX_SKIPPED = "ok", "failed", "skipped"


def onnx_state(meta: dict | None) -> tuple[str, str | None]:
    """``(status, reason)`` of a version's ONNX model from its metadata.

    Records written before the ``status`` field existed always had a ``model.onnx``: they read as ``ok``.
    """
    block = (meta or {}).get("onnx")
    if not isinstance(block, dict):
        return ("unknown", None) if meta is None else (ONNX_OK, None)
    return str(block.get("status", ONNX_OK)), block.get("reason")


def version_dirs(model_dir: Path) -> list[tuple[int, Path]]:
    """Numeric children of ``model_dir`` (the versions TF Serving would load), sorted by number.

    Non-numeric names (``.staging-*``, ``.registry.json``) are skipped exactly as TF Serving skips them.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    found = [(int(p.name), p) for p in model_dir.iterdir() if p.name.isdigit() and p.is_dir()]
    return sorted(found)


def read_metadata(version_dir: Path) -> dict:
    """The parsed ``metadata.json`` of a version; ``FileNotFoundError`` if the version has none."""
    path = Path(version_dir) / METADATA_FILE
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a schema-{SCHEMA} export metadata record")
    return data


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed (SavedModel variables can be large)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: Path) -> str:
    """One sha256 for a directory: over its sorted relative paths and their file hashes."""
    h = hashlib.sha256()
    for rel, digest in sorted(file_hashes(root).items()):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def file_hashes(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative POSIX path -> sha256 for every regular file under ``root`` (minus ``exclude``)."""
    root = Path(root)
    out: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            path = Path(dirpath) / fname
            rel = path.relative_to(root).as_posix()
            if rel not in exclude:
                out[rel] = sha256_file(path)
    return dict(sorted(out.items()))


def tree_sizes(root: Path, onnx_file: str = "model.onnx") -> dict[str, int]:
    """Byte totals: the whole version, the SavedModel part (pb + variables) and the ONNX file."""
    root = Path(root)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    saved = sum(p.stat().st_size for p in root.glob("saved_model.pb*"))
    saved += sum(p.stat().st_size for p in (root / "variables").rglob("*") if p.is_file())
    onnx = (root / onnx_file).stat().st_size if (root / onnx_file).is_file() else 0
    return {"total_bytes": total, "saved_model_bytes": saved, "onnx_bytes": onnx}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shaped an export (None where one is missing)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = _pkg.version(name)
        except _pkg.PackageNotFoundError:
            out[name] = None
    return out


def utc_now() -> str:
    """UTC time in ISO 8601 with a ``Z`` suffix, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_metadata(version_dir: Path, record: dict) -> Path:
    """Write ``record`` as ``metadata.json`` and fsync it (the caller renames the directory afterwards)."""
    path = Path(version_dir) / METADATA_FILE
    with path.open("w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path
