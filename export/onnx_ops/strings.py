"""onnxruntime-extensions' custom-op domain (``ai.onnx.contrib``) for string ops tf2onnx maps there.

Standard ONNX has almost no string ops; tf2onnx converts ``StringSplitV2``, ``StaticRegexReplace``,
``StringJoin``, string ``Equal`` ... to ``ai.onnx.contrib`` ops when that domain is offered, and ONNX Runtime
runs them once onnxruntime-extensions' library is registered in its ``SessionOptions``
(``serving.backends.ort_contrib``, used by the server's ONNX Runtime backend). The domain is offered only when
the package is installed, and kept in the model only when a node uses it, so a model without string ops stays
loadable by a plain ONNX Runtime.
"""
from __future__ import annotations

from serving.backends.ort_contrib import CONTRIB_DOMAIN, available, uses_contrib

CONTRIB_OPSET = 1


def extra_opsets() -> list:
    """tf2onnx ``extra_opset`` entries: the contrib domain when onnxruntime-extensions can run it."""
    from onnx import helper

    return [helper.make_opsetid(CONTRIB_DOMAIN, CONTRIB_OPSET)] if available() else []


def drop_unused_contrib(model_proto) -> None:
    """Remove the contrib opset import from a model that has no contrib node (in place)."""
    if uses_contrib(model_proto):
        return
    kept = [o for o in model_proto.opset_import if o.domain != CONTRIB_DOMAIN]
    del model_proto.opset_import[:]
    model_proto.opset_import.extend(kept)
