"""Request checks and result checks with TF Serving's messages (predict_util.cc, classifier.cc, regressor.cc).

Runtime-neutral: they look at ``SignatureInfo`` and numpy arrays only, so every backend gets the same errors.
Shapes are not checked against the signature here: TF Serving feeds the tensor and lets the runtime refuse it
(the TF1 fixtures declare ``x`` as ``[-1, 1]`` but accept ``[3]``), and so do we (``runtime_error``).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import numpy as np

from .backends.base import SignatureInfo
from .errors import InvalidArgument, ServingError, Unimplemented

# numpy dtype name -> TensorFlow's name for it (what TF Serving's messages print).
_TF_NAMES = {"float32": "float", "float64": "double", "float16": "half", "string": "string", "object": "string"}


def tf_dtype_name(name: str) -> str:
    return _TF_NAMES.get(name, name)


_DTYPE_NAMES: dict[np.dtype, str] = {}


def _array_dtype(array: np.ndarray) -> str:
    dtype = array.dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:  # ``dtype.name`` is computed in Python on every access: remember it per dtype
        name = _DTYPE_NAMES[dtype] = "string" if dtype.kind in ("O", "S", "U") else dtype.name
    return name


def check_inputs(signature: SignatureInfo, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Names must equal the signature's inputs, dtypes must match: TF Serving's PreProcessPrediction."""
    sent, wanted = set(inputs), set(signature.inputs)
    if len(sent) != len(wanted):
        raise InvalidArgument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
        )
    checked = {}
    for index, alias in enumerate(sorted(inputs)):
        info = signature.inputs.get(alias)
        if info is None:
            raise InvalidArgument(
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{','.join(sorted(wanted))}}}."
            )
        array = np.asarray(inputs[alias])
        got = _array_dtype(array)
        if got != info.dtype:
            raise InvalidArgument(
                f"Expects arg[{index}] to be {tf_dtype_name(info.dtype)} but {tf_dtype_name(got)} is provided"
            )
        checked[alias] = array
    return checked


def check_output_filter(signature: SignatureInfo, output_filter: Sequence[str]) -> tuple[str, ...]:
    """The outputs to fetch: all of the signature's when the filter is empty."""
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise InvalidArgument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise InvalidArgument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return tuple(seen) or tuple(signature.outputs)


def classify_outputs(
    signature: SignatureInfo, raw: Mapping[str, np.ndarray], batch: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``classes`` [batch, k] bytes and ``scores`` [batch, k] float32 from a classify run, checked."""
    if "classes" not in signature.outputs and "scores" not in signature.outputs:
        raise InvalidArgument("Expected classification signature outputs to contain at least one of classes or scores.")
    classes = raw.get("classes")
    scores = raw.get("scores")
    if classes is not None:
        classes = _as_2d(np.asarray(classes), batch, "classes")
        if _array_dtype(classes) != "string":
            raise InvalidArgument(f"Expected classes Tensor of DT_STRING. Got: {tf_dtype_name(classes.dtype.name)}")
    if scores is not None:
        scores = _as_2d(np.asarray(scores), batch, "scores")
        if scores.dtype != np.float32:
            raise InvalidArgument(f"Expected scores Tensor of DT_FLOAT. Got: {tf_dtype_name(scores.dtype.name)}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidArgument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    return classes, scores


def _as_2d(array: np.ndarray, batch: int, what: str) -> np.ndarray:
    if array.ndim != 2:
        raise InvalidArgument(f"Expected Tensor shape: [batch_size num_classes] but got {list(array.shape)}")
    if array.shape[0] != batch:
        raise InvalidArgument(f"Expected {what} output batch size of {batch}. Got: {array.shape[0]}")
    return array


def regress_values(signature: SignatureInfo, raw: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    """The [batch] float32 values of a regress run, checked as TF Serving's regressor does."""
    if len(signature.outputs) != 1:
        raise InvalidArgument("Expected one output Tensor.")
    if "outputs" not in signature.outputs:
        raise InvalidArgument("No output Tensor named outputs found in signature.")
    values = np.asarray(raw["outputs"])
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise InvalidArgument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(values.shape)}"
        )
    if values.shape[0] != batch:
        raise InvalidArgument(f"Input batch size did not match output batch size: {batch} vs. {values.shape[0]}")
    if values.dtype != np.float32:
        raise InvalidArgument(f"Expected output Tensor of DT_FLOAT.  Got: {tf_dtype_name(values.dtype.name)}")
    return values.reshape(batch)


def runtime_error(exc: BaseException) -> ServingError | None:
    """The ServingError for a runtime refusing a request's tensors, or None for a genuine server fault.

    TensorFlow raises ``InvalidArgumentError`` for bad values and ``ValueError`` from ``Session.run`` for
    feeds of the wrong shape; ONNX Runtime raises its ``InvalidArgument``. A backend without classify or
    regress raises ``NotImplementedError``.
    """
    if isinstance(exc, NotImplementedError):
        return Unimplemented(str(exc))
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(exc, tf.errors.InvalidArgumentError):
        return InvalidArgument(exc.message)
    if isinstance(exc, ValueError) and "feed" in str(exc).lower():
        return InvalidArgument(str(exc))
    kind = type(exc)
    if kind.__name__ in ("InvalidArgument", "InvalidGraph") and kind.__module__.startswith("onnxruntime"):
        return InvalidArgument(str(exc))
    return None
