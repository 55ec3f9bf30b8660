"""TF Serving's REST JSON <-> numpy, both directions, with TF Serving's rules and error messages.

Server side: ``decode_predict_request`` (row ``instances`` / columnar ``inputs``, ``{"b64": ...}`` for bytes,
values cast to the signature's dtypes exactly as ``tensorflow_serving/util/json_tensor.cc`` allows) and
``encode_predict_response``; ``decode_examples`` for classify/regress. Client side: ``encode_predict_request``
and ``decode_predict_response``. JSON carries NaN/Infinity/-Infinity unquoted, as TF Serving reads and writes.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

try:  # the server always has it (pinned); the clients-only install works without it, with the same results
    import orjson
except ImportError:  # pragma: no cover - exercised by tests/clients/test_install.py's fresh venv
    orjson = None

from .codecs import CodecError
from .tf_floats import tf_float32_as_double

BYTES_SUFFIX = "_bytes"
_TF_NAMES = {
    "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int32": "DT_INT32", "int16": "DT_INT16", "int8": "DT_INT8",
    "uint8": "DT_UINT8", "int64": "DT_INT64", "bool": "DT_BOOL", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
    "string": "DT_STRING", "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16", "uint16": "DT_UINT16",
}
_JSON_SUPPORTED = {"float32", "float64", "int32", "int16", "int8", "uint8", "int64", "bool", "uint32", "uint64", "string"}
_FLOAT_MAX_INT = {"float32": (1 << 24) - 1, "float64": (1 << 53) - 1}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_MAX_RANK = 32  # numpy arrays hold at most 64 dimensions; no served model takes more than a handful


# ---------------------------------------------------------------- JSON text
# rapidjson (TF Serving's parser) reads an integer literal outside int64/uint64 as a double; Python's json and
# orjson agree on that only for the fast path, so the fallback parser converts such literals the same way.
_INT_MIN, _UINT_MAX = -(1 << 63), (1 << 64) - 1


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Python would read 1e400 as inf; rapidjson (TF Serving) refuses it
        raise CodecError(f"JSON Parse error: Number too big to be stored in double: {text[:40]}")
    return value


def _rapidjson_int(text: str) -> int | float:
    value = int(text)
    return value if _INT_MIN <= value <= _UINT_MAX else _finite_float(text)


def loads(raw: bytes | str) -> Any:
    """Parse a request body as rapidjson does for TF Serving (NaN/Infinity allowed, a number beyond a double
    refused, an integer beyond 64 bits read as a double). Empty or malformed JSON -> ``CodecError``.

    Strict JSON (nearly every body) is parsed by orjson; only what it refuses (NaN/Infinity literals, numbers
    beyond a double, bad UTF-8 or syntax) is parsed again by the standard library, for the exact semantics
    and the error message.
    """
    if not raw:
        raise CodecError("JSON Parse error: The document is empty")
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw, parse_float=_finite_float, parse_int=_rapidjson_int)
    except CodecError:
        raise
    except RecursionError:
        raise CodecError("JSON Parse error: document nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"JSON Parse error: {exc}") from None


def dumps(obj: Any) -> bytes:
    """Compact JSON with NaN/Infinity written unquoted, as TF Serving writes them."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode("utf-8")


def dumps_response(obj: Any) -> bytes:
    """Serialize what ``encode_predict_response`` built (numpy arrays and ``orjson.Fragment`` inside)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def show_json(value: Any) -> str:
    """A JSON value as error messages quote it: compact, cut to 200 characters (however deeply nested)."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=True)
    except RecursionError:  # orjson parses deeper documents than json.dumps writes: quote the opening
        parts = []
        while isinstance(value, (list, dict)) and len(parts) < 200:
            if isinstance(value, dict):
                if not value:
                    break
                key, value = next(iter(value.items()))
                parts.append("{" + json.dumps(key) + ":")
            else:
                if not value:
                    break
                parts.append("[")
                value = value[0]
        text = "".join(parts) + "..."
    return text if len(text) <= 200 else text[:197] + "..."


_show = show_json


def _json_type(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, (int, float)):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    return "ARRAY" if isinstance(value, list) else "OBJECT"


# ---------------------------------------------------------------- server side: request
def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value: Any) -> bytes:
    if not _is_b64(value):
        raise CodecError(f"JSON Value: {_show(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise CodecError("Unable to base64 decode") from None


def _shape_of(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _type_error(value: Any, dtype: str) -> CodecError:
    return CodecError(
        f"JSON Value: {_show(value)} Type: {_json_type(value)} is not of expected type: {_TF_NAMES.get(dtype, dtype)}"
    )


def _check_leaf(value: Any, dtype: str) -> None:
    """Raise TF Serving's error for a leaf that ``dtype`` cannot hold (the slow path, for messages)."""
    if dtype in ("float32", "float64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if isinstance(value, int) and abs(value) > _FLOAT_MAX_INT[dtype]:
            target = "float" if dtype == "float32" else "double"
            raise CodecError(f"Cannot convert JSON value: {value} to {target} without loss of precision.")
        if dtype == "float32" and abs(value) != float("inf") and abs(value) > _FLOAT32_MAX:
            raise CodecError(f"Cannot convert JSON value: {_show(value)} to float without loss of precision.")
    elif dtype == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
    elif dtype == "string":
        if isinstance(value, dict):
            _b64decode(value)
        elif not isinstance(value, str):
            raise _type_error(value, dtype)
    else:  # integers
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, dtype)
        info = np.iinfo(np.dtype(dtype))
        if not info.min <= value <= info.max:
            raise _type_error(value, dtype)


def _walk(value: Any, shape: list[int], level: int, dtype: str) -> None:
    """Check a JSON tensor the way json_tensor.cc's FillTensorProto does, raising its messages."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise CodecError(
                f"JSON Value: {_show(value)} found at incorrect level: {level + 1} in the JSON DOM. Expected at level: {rank}"
            )
        _check_leaf(value, dtype)
        return
    if level >= rank:
        raise CodecError(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise CodecError(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _walk(item, shape, level + 1, dtype)


def _strings(value: Any) -> Any:
    if isinstance(value, list):
        return [_strings(v) for v in value]
    return _b64decode(value) if isinstance(value, dict) else value.encode("utf-8")


def json_to_ndarray(value: Any, dtype: str) -> np.ndarray:
    """One JSON tensor (scalar or nested lists) -> ndarray of the signature dtype, or TF Serving's error."""
    if dtype not in _JSON_SUPPORTED:
        raise CodecError(f"Conversion of JSON Value: {_show(value)} to type: {_TF_NAMES.get(dtype, dtype)} is not supported")
    shape = _shape_of(value)
    if len(shape) > _MAX_RANK:
        raise CodecError(f"JSON Value: {_show(value)} has rank {len(shape)}; at most {_MAX_RANK} dimensions are supported")
    if dtype == "string":
        _walk(value, shape, 0, dtype)
        flat = np.empty(int(np.prod(shape, dtype=np.int64)) if shape else 1, dtype=object)
        flat[:] = np.array(_strings(value), dtype=object).reshape(-1) if shape else [_strings(value)]
        return flat.reshape(shape)
    try:  # fast path: numpy parses a well-formed dense tensor in C
        arr = np.asarray(value)
        fast = arr.dtype.kind in ("f", "i", "u", "b") and list(arr.shape) == shape
    except (ValueError, TypeError, OverflowError):
        fast = False
    if fast and _fits(arr, dtype):
        return arr.astype(dtype, copy=False)
    _walk(value, shape, 0, dtype)  # raises the precise error
    return np.asarray(value, dtype=dtype)


def _fits(arr: np.ndarray, dtype: str) -> bool:
    kind = arr.dtype.kind
    if dtype == "bool":
        return kind == "b"
    if kind == "b":
        return False
    if dtype in ("float32", "float64"):
        if kind in "iu" and arr.size and np.abs(arr).max() > _FLOAT_MAX_INT[dtype]:
            return False
        if dtype == "float32" and kind == "f" and arr.size:
            with np.errstate(invalid="ignore"):
                largest = float(np.abs(arr).max())  # NaN when any is NaN, inf when any is infinite
            if largest <= _FLOAT32_MAX:  # the common case, without copying out the finite values
                return True
            finite = arr[np.isfinite(arr)]
            return not finite.size or float(np.abs(finite).max()) <= _FLOAT32_MAX
        return True
    if kind not in "iu":
        return False
    info = np.iinfo(np.dtype(dtype))
    return not arr.size or (arr.min() >= info.min and arr.max() <= info.max)


def decode_predict_request(body: Any, input_dtypes: Mapping[str, str]) -> tuple[dict[str, np.ndarray], str]:
    """A parsed ``:predict`` body -> (named input arrays, "row" | "columnar"), with TF Serving's checks."""
    if not isinstance(body, dict):
        raise CodecError(f"JSON Value: {_show(body)} Is not object")
    if "signature_name" in body and not isinstance(body["signature_name"], str):
        raise CodecError(f"JSON Value: {_show(body)} not formatted correctly. 'signature_name' key must be a string value.")
    if not input_dtypes:
        raise CodecError(f"Failed to get input map for signature: {body.get('signature_name') or 'DEFAULT'}")
    if "instances" in body and "inputs" in body:
        raise CodecError(
            f"JSON Value: {_show(body)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
        )
    if "instances" in body:
        return _decode_instances(body["instances"], body, input_dtypes), "row"
    if "inputs" in body:
        return _decode_inputs(body["inputs"], input_dtypes), "columnar"
    raise CodecError("Missing 'inputs' or 'instances' key")


def _decode_instances(instances: Any, body: Any, input_dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise CodecError(f"JSON Value: {_show(body)} Excepting 'instances' to be an list/array")
    if not instances:
        raise CodecError(f"JSON Value: {_show(body)} No values in 'instances' array")

    def is_object(v: Any) -> bool:
        return isinstance(v, dict) and not _is_b64(v)

    if not is_object(instances[0]):
        if len(input_dtypes) > 1:
            raise CodecError(
                "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"
            )
        name, dtype = next(iter(input_dtypes.items()))
        for i, item in enumerate(instances):
            if is_object(item):
                raise CodecError(f"Expecting value/list but got object at item {i} of input list")
        return {name: _stack(instances, dtype, name)}
    names = set(input_dtypes)
    columns: dict[str, list] = {n: [] for n in input_dtypes}
    for i, item in enumerate(instances):
        if not is_object(item):
            raise CodecError(f"Expecting object but got list at item {i} of input list")
        for key in item:
            if key not in names:
                raise CodecError(
                    f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                    f"INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                )
        if set(item) != names:
            raise CodecError(
                f"Failed to process element: {i} of 'instances' list. JSON object: {_show(item)} "
                f"must only have keys: {','.join(sorted(names))}"
            )
        for key, value in item.items():
            columns[key].append(value)
    return {n: _stack(vals, input_dtypes[n], n) for n, vals in columns.items()}


def _stack(items: list, dtype: str, name: str) -> np.ndarray:
    """Batch the per-instance tensors of one input; every instance must have the same shape."""
    first = _shape_of(items[0])
    for i, item in enumerate(items):
        shape = _shape_of(item)
        if shape != first:
            raise CodecError(
                f"Failed to process element: {i} of 'instances' list. Error: INVALID_ARGUMENT: "
                f"Expecting shape [{','.join(map(str, first))}] but got: [{','.join(map(str, shape))}]"
            )
    try:
        return json_to_ndarray(items, dtype)
    except CodecError as exc:
        raise CodecError(f"Failed to process 'instances' for input '{name}'. Error: {exc}") from None


def _decode_inputs(inputs: Any, input_dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(input_dtypes) > 1:
            raise CodecError(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"
            )
        name, dtype = next(iter(input_dtypes.items()))
        return {name: json_to_ndarray(inputs, dtype)}
    out = {}
    for name, dtype in input_dtypes.items():
        if name not in inputs:
            raise CodecError(f"Missing named input: {name} in 'inputs' object.")
        out[name] = json_to_ndarray(inputs[name], dtype)
    return out


# ---------------------------------------------------------------- server side: response
# What an encoded output is: a numeric ndarray orjson writes itself (float32 already rounded as TF Serving
# prints it), an ``orjson.Fragment`` (pre-written JSON: floats with NaN/Infinity, which orjson would write as
# null), or plain JSON values (strings). The server side needs orjson (a server dependency, not a client one).
def _float_text(values: np.ndarray) -> orjson.Fragment:
    """Floats with NaN/Infinity among them, written by the standard library (``NaN``, ``Infinity``)."""
    return orjson.Fragment(json.dumps(values.tolist(), separators=(",", ":"), allow_nan=True))


def _to_json_values(name: str, arr: np.ndarray) -> Any:
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if kind in "OSU":
        as_b64 = name.endswith(BYTES_SUFFIX)

        def conv(v: Any) -> Any:
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            return {"b64": base64.b64encode(b).decode("ascii")} if as_b64 else b.decode("utf-8", "replace")

        flat = [conv(v) for v in arr.reshape(-1).tolist()]
        return np.array(flat, dtype=object).reshape(arr.shape).tolist() if arr.ndim else flat[0]
    if kind == "c":
        raise CodecError(f"Failed to write JSON value for tensor type: {arr.dtype}")
    if kind == "f":
        # float32: TF Serving's WriteDecimal<float> digits; float64 keeps every digit; half types widen.
        arr = tf_float32_as_double(arr) if arr.dtype == np.float32 else arr.astype(np.float64, copy=False)
        if not np.isfinite(arr).all():
            return _float_text(arr)
    return np.ascontiguousarray(arr) if arr.ndim else arr.item()


def encode_predict_response(outputs: Mapping[str, np.ndarray], fmt: str) -> dict:
    """Named output arrays -> ``{"predictions": ...}`` (row) or ``{"outputs": ...}`` (columnar), ready for
    ``dumps_response``."""
    if not outputs:
        raise CodecError("Cannot convert empty tensor map to JSON")
    if fmt == "columnar":
        if len(outputs) == 1:
            ((name, arr),) = outputs.items()
            return {"outputs": _to_json_values(name, arr)}
        return {"outputs": {n: _to_json_values(n, a) for n, a in sorted(outputs.items())}}
    batch = None
    for name, arr in outputs.items():
        arr = np.asarray(arr)
        if arr.ndim == 0:
            raise CodecError(f"Tensor name: {name} has no shape information ")
        if arr.shape[0] < 1:
            raise CodecError(f"Tensor name: {name} has invalid batch size: {arr.shape[0]}")
        if batch is not None and arr.shape[0] != batch:
            raise CodecError(f"Tensor name: {name} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    if len(outputs) == 1:
        ((name, arr),) = outputs.items()
        return {"predictions": _to_json_values(name, arr)}
    columns = {n: _rows(n, a) for n, a in sorted(outputs.items())}
    return {"predictions": [{n: columns[n][i] for n in columns} for i in range(batch)]}


def _rows(name: str, arr: np.ndarray) -> Any:
    """One output split into its instances for the row format (each row encoded like a whole tensor)."""
    arr = np.asarray(arr)
    value = _to_json_values(name, arr)
    if isinstance(value, orjson.Fragment):
        return [_to_json_values(name, row) for row in arr]
    return value


# ---------------------------------------------------------------- classify / regress examples
def _feature(example, name: str, values: Any) -> None:
    items = values if isinstance(values, list) else [values]
    feature = example.features.feature[name]
    kind = None
    for v in items:
        if v is None or isinstance(v, (list, dict)) and not _is_b64(v):
            raise CodecError(f"Feature: {name} has element with unexpected JSON type: {_json_type(v)}")
        if isinstance(v, bool) or isinstance(v, int):
            this, value = "int64", int(v)
        elif isinstance(v, float):
            this, value = "float", v
        else:
            this, value = "bytes", _b64decode(v) if isinstance(v, dict) else v.encode("utf-8")
        if kind not in (None, this):
            raise CodecError(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = this
        if this == "int64" and not -(1 << 63) <= value < (1 << 63):
            raise CodecError(f"Feature: {name} has uint64 element. Only int64 is supported.")
        getattr(feature, f"{this}_list").value.append(value)


def decode_examples(body: Any, example_cls) -> list[bytes]:
    """A ``:classify`` / ``:regress`` body -> serialized tf.Example protos (``context`` merged into each)."""
    if not isinstance(body, dict):
        raise CodecError(f"JSON Value: {_show(body)} Is not object")
    if "signature_name" in body and not isinstance(body["signature_name"], str):
        raise CodecError(f"JSON Value: {_show(body)} not formatted correctly. 'signature_name' key must be a string value.")
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise CodecError(f"Example must be JSON object but got JSON {_json_type(context)}")
    examples = body.get("examples")
    if examples is None:
        raise CodecError(f"JSON Value: {_show(body)} When method is classify, key 'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise CodecError(f"JSON Value: {_show(body)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise CodecError(f"JSON Value: {_show(body)} 'examples' value is an empty array")
    out = []
    for item in examples:
        if not isinstance(item, dict):
            raise CodecError(f"Example must be JSON object but got JSON {_json_type(item)}")
        example = example_cls()
        for name, values in {**(context or {}), **item}.items():
            _feature(example, name, values)
        out.append(example.SerializeToString())
    return out


# ---------------------------------------------------------------- client side
def ndarray_to_json(arr: np.ndarray) -> Any:
    """A numpy tensor as JSON values; bytes elements become ``{"b64": ...}``."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "OS":
        flat = [{"b64": base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode("ascii")}
                for v in arr.reshape(-1).tolist()]
        return np.array(flat, dtype=object).reshape(arr.shape).tolist() if arr.ndim else flat[0]
    if arr.dtype.kind == "U":
        return arr.tolist()
    if arr.dtype.kind not in "biuf":
        raise CodecError(f"REST JSON cannot carry {arr.dtype} tensors (use gRPC)")
    return arr.astype(np.float64).tolist() if arr.dtype.kind == "f" else arr.tolist()


def encode_predict_request(
    inputs: np.ndarray | Mapping[str, np.ndarray], signature_name: str = "", fmt: str = "columnar"
) -> dict:
    """Client: inputs -> a ``:predict`` body in columnar (``inputs``) or row (``instances``) format."""
    body: dict[str, Any] = {"signature_name": signature_name} if signature_name else {}
    if fmt == "columnar":
        body["inputs"] = (
            {k: ndarray_to_json(v) for k, v in inputs.items()} if isinstance(inputs, Mapping) else ndarray_to_json(inputs)
        )
    elif fmt == "row":
        if isinstance(inputs, Mapping):
            cols = {k: ndarray_to_json(v) for k, v in inputs.items()}
            sizes = {len(v) if isinstance(v, list) else -1 for v in cols.values()}
            if len(sizes) != 1 or -1 in sizes:
                raise CodecError("row format needs every input batched with the same first dimension")
            body["instances"] = [{k: cols[k][i] for k in cols} for i in range(sizes.pop())]
        else:
            body["instances"] = ndarray_to_json(inputs)
    else:
        raise CodecError(f"unknown REST format {fmt!r} (expected 'row' or 'columnar')")
    return body


def _from_json(value: Any) -> np.ndarray:
    if _is_b64(value) or (isinstance(value, list) and value and _is_b64(_leaf(value))):
        return np.array(_strings(value), dtype=object)
    return np.asarray(value)


def _leaf(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def split_predict_response(body: Any) -> Any | dict[str, Any]:
    """Client: a ``:predict`` answer -> the raw JSON value of its single unnamed output, or ``{name: JSON}``
    (row answers are regrouped by output name). Lets a caller convert with the signature's dtypes."""
    if not isinstance(body, dict):
        raise CodecError(f"unexpected predict response: {_show(body)}")
    if "outputs" in body:
        out = body["outputs"]
        if isinstance(out, dict) and not _is_b64(out):
            return dict(out)
        return out
    if "predictions" in body:
        preds = body["predictions"]
        if isinstance(preds, list) and preds and isinstance(preds[0], dict) and not _is_b64(preds[0]):
            return {k: [row[k] for row in preds] for k in preds[0]}
        return preds
    raise CodecError(f"predict response has neither 'predictions' nor 'outputs': {_show(body)}")


def json_to_output(value: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """Client: one output's JSON value -> ndarray, exactly in ``dtype`` when given (so int64/uint64 beyond
    2**53 and float32 values survive); DT_STRING (object) outputs become bytes, from text or b64."""
    if dtype is None:
        return _from_json(value)
    try:
        if dtype == np.dtype(object):
            shape = _shape_of(value)
            flat = np.empty(int(np.prod(shape, dtype=np.int64)) if shape else 1, dtype=object)
            flat[:] = [_b64decode(v) if isinstance(v, dict) else str(v).encode("utf-8") for v in _flatten(value)]
            return flat.reshape(shape)
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"output value does not fit {dtype}: {exc}") from None


def _flatten(value: Any):
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def decode_predict_response(body: Any) -> np.ndarray | dict[str, np.ndarray]:
    """Client: a ``:predict`` answer -> one array (single output) or a dict of arrays (named outputs)."""
    split = split_predict_response(body)
    if isinstance(split, dict):
        return {k: _from_json(v) for k, v in split.items()}
    return _from_json(split)
