"""Check predict inputs against the model's signature before sending, so a mistake gets one line that names
the input and what it expects, instead of a server error about ``arg[0]`` or a raw numpy message.

``conform_inputs(signature, inputs)`` returns the inputs ready to send, or raises ``InvalidInputError``:

- names: every signature input given, no other (TF Serving refuses both, naming neither the way we do);
- dtype: strings for a numeric input (or numbers for a ``DT_STRING`` one) are refused; numbers are cast to the
  signature's dtype when no value changes meaning: float64 -> float32 (rounding), ints to a wider or in-range
  narrower int or to a float, whole-valued floats to an int. Booleans and numbers never mix (TF Serving's JSON
  reader refuses ``true`` for a float too). gRPC needs the exact dtype
  (TF Serving answers "Expects arg[0] to be float but double is provided"), and a .npy or JSON file rarely has it;
- shape: the rank and every fixed dimension of a known signature shape (``-1`` is any size). A shape that
  differs only by trailing dimensions of size 1 goes to the server unchanged, which decides: TF Serving's own
  ``half_plus_two`` example sends ``[3]`` to a ``[-1, 1]`` signature and its graph accepts it.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import InvalidInputError
from .results import Signature, TensorSpec

__all__ = ["conform_input", "conform_inputs", "describe_shape"]

_NUMERIC = "biufc"
_TEXT = "SU"


def describe_shape(shape: tuple[int, ...] | None) -> str:
    """``(-1, 64)`` -> ``[-1, 64]``; None (unknown rank) -> ``any shape``."""
    return "any shape" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _expects(name: str, spec: TensorSpec) -> str:
    if spec.shape is None:
        return f"input '{name}' expects {spec.dtype} (any shape)"
    any_size = " (-1: any size)" if -1 in spec.shape else ""
    return f"input '{name}' expects {spec.dtype} with shape {describe_shape(spec.shape)}{any_size}"


def _got(value: np.ndarray) -> str:
    what = "strings" if _is_text(value) else str(value.dtype)
    return f"got {what} with shape {describe_shape(value.shape)}"


def _is_text(value: np.ndarray) -> bool:
    if value.dtype.kind in _TEXT:
        return True
    if value.dtype.kind == "O":
        return value.size > 0 and all(isinstance(v, (str, bytes)) for v in value.flat)
    return False


def _shape_fits(shape: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return len(shape) == len(want) and all(w < 0 or s == w for s, w in zip(shape, want, strict=True))


def _check_shape(name: str, spec: TensorSpec, value: np.ndarray) -> None:
    if spec.shape is None or _shape_fits(value.shape, spec.shape):
        return
    # Only trailing unit dimensions apart (same data layout): the server's graph decides.
    core, want = value.shape, spec.shape
    while core and core[-1] == 1:
        core = core[:-1]
    while want and want[-1] == 1:
        want = want[:-1]
    if _shape_fits(core, want):
        return
    raise InvalidInputError(f"{_expects(name, spec)}; {_got(value)}")


def _cast_number(name: str, spec: TensorSpec, value: np.ndarray, target: np.dtype) -> np.ndarray:
    """``value`` as ``target`` when that keeps every value's meaning, else InvalidInputError."""
    if value.dtype == target:
        return value
    src, dst = value.dtype.kind, target.kind
    if (src == "b") != (dst == "b"):
        ok = False  # numbers are not truth values, nor truth values numbers: say so rather than guess
    elif src == "c" and dst != "c":
        ok = False
    elif src == "f" and dst in "iu":
        ok = bool(np.all(np.isfinite(value)) and np.all(value == np.round(value))) and _in_range(value, target)
    elif src in "iu" and dst in "iu":
        ok = _in_range(value, target)
    else:  # to a float or complex: float64 -> float32 rounds, as TF Serving's JSON parser does
        ok = True
    if not ok:
        raise InvalidInputError(f"{_expects(name, spec)}; {_got(value)} whose values do not fit {spec.dtype}")
    return value.astype(target)


def _in_range(value: np.ndarray, target: np.dtype) -> bool:
    if value.size == 0:
        return True
    info = np.iinfo(target)
    return bool(value.min() >= info.min and value.max() <= info.max)


def conform_input(name: str, spec: TensorSpec, value: np.ndarray) -> np.ndarray:
    """One input checked against its spec and cast to its dtype (see the module docstring)."""
    if spec.dtype == "DT_STRING":
        if value.dtype.kind in _NUMERIC and value.size:
            raise InvalidInputError(f"{_expects(name, spec)}; {_got(value)} (numbers for a string input)")
        _check_shape(name, spec, value)
        return value
    try:
        target = spec.numpy_dtype
    except ValueError:  # a dtype numpy lacks (bfloat16 without ml_dtypes, resource, ...): the server decides
        return value
    if value.dtype == target:  # includes ml_dtypes' bfloat16 (numpy kind "V")
        _check_shape(name, spec, value)
        return value
    if value.dtype.kind not in _NUMERIC:
        if _is_text(value):
            sample = ", ".join(repr(v) for v in value.ravel()[:3].tolist())
            raise InvalidInputError(f"{_expects(name, spec)}; got strings ({sample}{', ...' if value.size > 3 else ''})"
                                    " for a numeric input")
        raise InvalidInputError(f"{_expects(name, spec)}; {_got(value)}")
    _check_shape(name, spec, value)
    return _cast_number(name, spec, value, target)


def conform_inputs(signature: Signature, inputs: Mapping[str, np.ndarray],
                   signature_name: str = "serving_default") -> dict[str, np.ndarray]:
    """All inputs of one predict call checked and cast; InvalidInputError names what is wrong."""
    expected = ", ".join(f"{k}: {v.dtype} {describe_shape(v.shape)}" for k, v in signature.inputs.items())
    unknown = sorted(set(inputs) - set(signature.inputs))
    if unknown:
        raise InvalidInputError(f"signature '{signature_name}' has no input {', '.join(map(repr, unknown))}; "
                                f"its inputs are {{{expected}}}")
    missing = sorted(set(signature.inputs) - set(inputs))
    if missing:
        raise InvalidInputError(f"missing input {', '.join(map(repr, missing))} of signature '{signature_name}'; "
                                f"its inputs are {{{expected}}}")
    return {name: conform_input(name, signature.inputs[name], value) for name, value in inputs.items()}
