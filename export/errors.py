"""Every error the export pipeline raises on purpose, under one root.

    ExportError                 anything the user can fix; the CLI prints the message and exits non-zero
    ├── SourceError             the model cannot be found, imported or deserialized
    │   └── UnsafeModelError    deserialization needs safe_mode=False (a Lambda layer): refused unless --unsafe
    ├── SignatureError          input/output names or specs cannot be derived, or a sample does not fit them
    │   └── SignatureChangeError  the new serving_default breaks clients of the latest published version
    ├── ConversionError         writing the SavedModel failed
    ├── OnnxConversionError     converting to ONNX failed (fatal only with REQUIRE_ONNX=1)
    ├── VersionError            bad model name, or a version number that exists or was ever used
    └── ParityError             the runtimes disagree; carries the full ParityReport

Foreign exceptions (Keras, TF, tf2onnx) are translated to these at the one place that calls them; anything
else is a bug and propagates with its traceback.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .compare import ParityReport


class ExportError(Exception):
    """Root of the export pipeline's errors (all are the user's to fix, none is a bug)."""


class SourceError(ExportError):
    """The model source cannot be found, imported or loaded."""


class UnsafeModelError(SourceError):
    """Loading the model needs unsafe deserialization (e.g. a Lambda layer's Python bytecode)."""


class SignatureError(ExportError):
    """Inputs/outputs cannot be named or described, or sample inputs do not match them."""


class SignatureChangeError(SignatureError):
    """The new version's signature is incompatible with the latest published one (the diff is the message)."""


class ConversionError(ExportError):
    """The SavedModel export (or loading it the way the server does) failed."""


class OnnxConversionError(ExportError):
    """ONNX conversion failed; the message is one line naming the unsupported ops. Best-effort by default:
    the version is published without ``model.onnx`` unless ``REQUIRE_ONNX=1``."""


class VersionError(ExportError):
    """Invalid model name, or a version number that exists or was already used."""


class ParityError(ExportError):
    """The runtimes disagree on the sample inputs; ``report`` holds every row and failure."""

    def __init__(self, report: ParityReport) -> None:
        self.report = report
        n = len(report.failures)
        first = "; ".join(f.describe() for f in report.failures[:3])
        more = f" (+{n - 3} more)" if n > 3 else ""
        super().__init__(f"parity failed: {n} failure(s): {first}{more}")
