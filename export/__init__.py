"""Export pipeline: Keras model → numbered TF Serving version (SavedModel + model.onnx + warmup + metadata),
published atomically behind a parity gate.

Importing the package is cheap (no TensorFlow); ``export_model`` loads TensorFlow when first called.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .compare import ParityFailure, ParityReport, ParityRow
from .errors import (
    ConversionError,
    ExportError,
    OnnxConversionError,
    ParityError,
    SignatureChangeError,
    SignatureError,
    SourceError,
    UnsafeModelError,
    VersionError,
)
from .metadata import METADATA_FILE, read_metadata, version_dirs

if TYPE_CHECKING:
    from .pipeline import ExportResult, export_model

__all__ = [
    "METADATA_FILE", "ConversionError", "ExportError", "ExportResult", "OnnxConversionError", "ParityError",
    "ParityFailure", "ParityReport", "ParityRow", "SignatureChangeError", "SignatureError", "SourceError", "UnsafeModelError", "VersionError",
    "export_model", "read_metadata", "version_dirs",
]


def __getattr__(name: str) -> Any:
    if name in ("export_model", "ExportResult"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
