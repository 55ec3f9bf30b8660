"""numpy <-> ``tensorflow.TensorProto`` without TensorFlow.

Duck-typed over the message class: the same functions fill TF's own generated ``TensorProto`` (server side)
and the client's private copy (no TF import). Numeric tensors travel as raw little-endian bytes in
``tensor_content`` (one memcpy each way, ~100x faster than per-element ``*_val`` fields); bytes tensors use
``string_val``. Decoding also accepts every typed ``*_val`` field and TF's rule that fewer values than elements
repeat the last value.
"""
from __future__ import annotations

import math
import sys

import numpy as np

try:  # bfloat16 for numpy ships with TensorFlow's dependency ml_dtypes; optional for clients
    from ml_dtypes import bfloat16 as _bfloat16
except ImportError:  # pragma: no cover - depends on the environment
    _bfloat16 = None


class CodecError(ValueError):
    """A tensor or JSON payload that cannot be converted (maps to INVALID_ARGUMENT)."""


# tensorflow/core/framework/types.proto
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_COMPLEX64, DT_INT64, DT_BOOL, DT_BFLOAT16, DT_UINT16, DT_COMPLEX128, DT_HALF = 8, 9, 10, 14, 17, 18, 19
DT_UINT32, DT_UINT64 = 22, 23

DTYPE_NAMES = {
    DT_FLOAT: "DT_FLOAT", DT_DOUBLE: "DT_DOUBLE", DT_INT32: "DT_INT32", DT_UINT8: "DT_UINT8",
    DT_INT16: "DT_INT16", DT_INT8: "DT_INT8", DT_STRING: "DT_STRING", DT_COMPLEX64: "DT_COMPLEX64",
    DT_INT64: "DT_INT64", DT_BOOL: "DT_BOOL", DT_BFLOAT16: "DT_BFLOAT16", DT_UINT16: "DT_UINT16",
    DT_COMPLEX128: "DT_COMPLEX128", DT_HALF: "DT_HALF", DT_UINT32: "DT_UINT32", DT_UINT64: "DT_UINT64",
}

_ENUM_TO_NUMPY: dict[int, np.dtype] = {
    DT_FLOAT: np.dtype(np.float32), DT_DOUBLE: np.dtype(np.float64), DT_INT32: np.dtype(np.int32),
    DT_UINT8: np.dtype(np.uint8), DT_INT16: np.dtype(np.int16), DT_INT8: np.dtype(np.int8),
    DT_STRING: np.dtype(object), DT_COMPLEX64: np.dtype(np.complex64), DT_INT64: np.dtype(np.int64),
    DT_BOOL: np.dtype(np.bool_), DT_UINT16: np.dtype(np.uint16), DT_COMPLEX128: np.dtype(np.complex128),
    DT_HALF: np.dtype(np.float16), DT_UINT32: np.dtype(np.uint32), DT_UINT64: np.dtype(np.uint64),
}
if _bfloat16 is not None:
    _ENUM_TO_NUMPY[DT_BFLOAT16] = np.dtype(_bfloat16)
_NUMPY_TO_ENUM = {v: k for k, v in _ENUM_TO_NUMPY.items()}

# Which repeated field holds the values of each dtype when tensor_content is empty.
_VAL_FIELD = {
    DT_FLOAT: "float_val", DT_DOUBLE: "double_val", DT_INT32: "int_val", DT_UINT8: "int_val",
    DT_INT16: "int_val", DT_INT8: "int_val", DT_STRING: "string_val", DT_INT64: "int64_val",
    DT_BOOL: "bool_val", DT_UINT16: "int_val", DT_HALF: "half_val", DT_BFLOAT16: "half_val",
    DT_UINT32: "uint32_val", DT_UINT64: "uint64_val", DT_COMPLEX64: "scomplex_val", DT_COMPLEX128: "dcomplex_val",
}
_LITTLE = sys.byteorder == "little"


def dtype_to_enum(dtype: np.dtype | type | str) -> int:
    """TF ``DataType`` enum value for a numpy dtype (bytes/str/object -> DT_STRING)."""
    dt = np.dtype(dtype) if not (isinstance(dtype, str) and dtype == "string") else np.dtype(object)
    if dt.kind in "OSU":
        return DT_STRING
    try:
        return _NUMPY_TO_ENUM[dt.newbyteorder("=") if dt.byteorder not in "=|" else dt]
    except KeyError:
        raise CodecError(f"Unsupported numpy dtype for a tensor: {dt}") from None


def enum_to_dtype(enum: int) -> np.dtype:
    """numpy dtype for a TF ``DataType`` enum value (DT_STRING -> object)."""
    try:
        return _ENUM_TO_NUMPY[int(enum)]
    except KeyError:
        raise CodecError(f"Unsupported tensor dtype: {DTYPE_NAMES.get(int(enum), int(enum))}") from None


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value)
    raise CodecError(f"String tensors hold bytes or str, got {type(value).__name__}")


def ndarray_to_tensor_proto(array: object, out):
    """Fill the TensorProto message ``out`` (any generated class with TF's fields) from ``array``; returns ``out``."""
    arr = np.asarray(array)
    out.Clear()
    enum = dtype_to_enum(arr.dtype)
    out.dtype = enum
    out.tensor_shape.SetInParent()  # always present, also for a scalar (an empty shape), as Tensor::AsProtoField does
    dims = out.tensor_shape.dim
    for size in arr.shape:
        dims.add().size = size
    if enum == DT_STRING:
        out.string_val.extend(_as_bytes(v) for v in arr.reshape(-1).tolist())
        return out
    if not _LITTLE or arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    out.tensor_content = np.ascontiguousarray(arr).tobytes()
    return out


def tensor_shape(proto) -> tuple[int, ...]:
    """The shape of a TensorProto; unknown rank or negative dims are an error for a value tensor."""
    if proto.tensor_shape.unknown_rank:
        raise CodecError("Tensor has unknown rank; a value tensor needs a fully defined shape")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(s < 0 for s in shape):
        raise CodecError(f"Tensor has a negative dimension in shape {list(shape)}")
    return shape


MAX_TENSOR_BYTES = 1 << 31  # 2 GiB: protobuf's own message limit; also bounds TF's "repeat the last value" rule


def element_count(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Elements in ``shape`` (exact Python integers: no int64 wrap-around), refusing tensors over 2 GiB so a
    tiny proto with a huge shape cannot make the decoder allocate terabytes. Zero dimensions are skipped in
    the size check, because numpy refuses shapes like (0, 2**40, 2**40) too."""
    span = math.prod(d for d in shape if d) * max(dtype.itemsize, 1)
    if span > MAX_TENSOR_BYTES:
        raise CodecError(f"Tensor of shape {list(shape)} spans {span} bytes, more than the {MAX_TENSOR_BYTES} bytes limit")
    return math.prod(shape)


def tensor_proto_to_ndarray(proto) -> np.ndarray:
    """numpy array holding the values of a TensorProto (``CodecError`` when the proto is inconsistent)."""
    dtype = enum_to_dtype(proto.dtype)
    shape = tensor_shape(proto)
    count = element_count(shape, dtype)
    if proto.tensor_content:
        if proto.dtype == DT_STRING:
            raise CodecError("DT_STRING tensors cannot use tensor_content")
        expected = count * dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise CodecError(
                f"tensor_content has {len(proto.tensor_content)} bytes, but shape {list(shape)} of "
                f"{DTYPE_NAMES[proto.dtype]} needs {expected}"
            )
        if _LITTLE:  # the wire's byte order is the machine's: a view, no copy
            return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
        return np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    return _from_typed_values(proto, dtype, shape, count)


def _from_typed_values(proto, dtype: np.dtype, shape: tuple[int, ...], count: int) -> np.ndarray:
    field = _VAL_FIELD[int(proto.dtype)]
    values = getattr(proto, field)
    n = len(values)
    if proto.dtype in (DT_COMPLEX64, DT_COMPLEX128):
        n //= 2
    if n > count:
        raise CodecError(f"Tensor has {n} values in {field}, but shape {list(shape)} holds {count}")
    if proto.dtype == DT_STRING:
        flat = np.empty(count, dtype=object)
        if n:
            flat[:n] = list(values)
            flat[n:] = values[-1]
        else:
            flat[:] = b""
        return flat.reshape(shape)
    if proto.dtype in (DT_HALF, DT_BFLOAT16):
        arr = np.asarray(values, dtype=np.uint16).view(dtype)
    elif proto.dtype in (DT_COMPLEX64, DT_COMPLEX128):
        raw = np.asarray(values, dtype=np.float32 if proto.dtype == DT_COMPLEX64 else np.float64)
        arr = raw.view(dtype)
    else:
        arr = np.asarray(values, dtype=dtype)
    if n == count:
        return arr.reshape(shape)
    if n == 0:
        return np.zeros(shape, dtype=dtype)
    return np.concatenate([arr, np.full(count - n, arr[-1], dtype=dtype)]).reshape(shape)
