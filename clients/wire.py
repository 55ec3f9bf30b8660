"""TensorProto / PredictRequest / PredictResponse straight to and from protobuf wire bytes.

Why: going through message objects copies a big tensor three times (``tobytes``, into the message, then
``SerializeToString``, which upb does at a few hundred MB/s). Protobuf's wire format lets us write the few
header fields by hand and splice the array's own buffer in, so encoding costs one memcpy, and decoding
``tensor_content`` is zero-copy (``np.frombuffer`` over the received bytes). Anything unusual (typed ``*_val``
fields, unknown fields) falls back to the message path in ``clients.codecs``, so the result is always what
protobuf itself would decode. The output is byte-compatible with tensorflow-serving-api (tests check both
directions).
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

import numpy as np
from google.protobuf.message import DecodeError

from . import codecs
from .codecs import DT_STRING, CodecError

_LITTLE = sys.byteorder == "little"
_LEN, _VARINT = 2, 0


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 -> 10-byte two's complement, as protobuf writes it
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload_len: int) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(payload_len)


def _shape_bytes(shape: tuple[int, ...]) -> bytes:
    dims = []
    for size in shape:
        dim = b"\x08" + _varint(size) if size else b""  # Dim.size (field 1), omitted when 0 (proto3 default)
        dims.append(b"\x12" + _varint(len(dim)) + dim)  # TensorShapeProto.dim (field 2)
    return b"".join(dims)


def tensor_chunks(array: object) -> list[bytes | memoryview]:
    """A serialized TensorProto as chunks to ``b"".join`` (the array's buffer is one chunk, not copied yet)."""
    arr = np.asarray(array)
    enum = codecs.dtype_to_enum(arr.dtype)
    chunks: list[bytes | memoryview] = [b"\x08" + _varint(enum)]
    shape = _shape_bytes(arr.shape)  # written for a scalar too (an empty shape), as Tensor::AsProtoField does
    chunks.append(b"\x12" + _varint(len(shape)) + shape)
    if enum == DT_STRING:
        for value in arr.reshape(-1).tolist():
            data = codecs._as_bytes(value)
            chunks.append(b"\x42" + _varint(len(data)))
            chunks.append(data)
        return chunks
    if not _LITTLE or arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.size:
        arr = np.ascontiguousarray(arr)
        chunks.append(b"\x22" + _varint(arr.nbytes))  # tensor_content (field 4)
        chunks.append(memoryview(arr.reshape(-1).view(np.uint8)))  # bytes view (also for bfloat16)
    return chunks


def tensor_to_bytes(array: object) -> bytes:
    """numpy -> serialized ``tensorflow.TensorProto`` (one copy of the data)."""
    return b"".join(tensor_chunks(array))


def predict_request_to_bytes(head: bytes, inputs: Mapping[str, object]) -> bytes:
    """A serialized PredictRequest: ``head`` (model_spec, output_filter, ... serialized by protobuf) plus the
    ``inputs`` map entries written here (a map field is a repeated entry message; order does not matter)."""
    chunks: list[bytes | memoryview] = [head]
    for name, array in inputs.items():
        key = name.encode("utf-8")
        tensor = tensor_chunks(array)
        tensor_len = sum(len(c) for c in tensor)
        entry_head = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(tensor_len)
        chunks.append(_field(2, len(entry_head) + tensor_len))
        chunks.append(entry_head)
        chunks.extend(tensor)
    return b"".join(chunks)


# ---------------------------------------------------------------- decoding
def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CodecError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CodecError("malformed protobuf varint")


def _fields(buf: memoryview) -> Iterable[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) for every field; length-delimited values are zero-copy slices."""
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield number, wire, value
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise CodecError("truncated protobuf field")
            yield number, wire, buf[pos:pos + size]
            pos += size
        elif wire in (1, 5):  # fixed64 / fixed32 (only in fields we hand to protobuf)
            pos += 8 if wire == 1 else 4
            yield number, wire, 0
        else:
            raise CodecError(f"unsupported protobuf wire type {wire}")


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _shape_from(buf: memoryview) -> tuple[int, ...] | None:
    """Dim sizes, or None when the shape uses anything beyond plain sizes (names are ignored, as TF does)."""
    shape = []
    for number, wire, value in _fields(buf):
        if number == 2 and wire == _LEN:
            size = 0
            for n, w, v in _fields(value):
                if n == 1 and w == _VARINT:
                    size = _int64(v)
            shape.append(size)
        elif number == 3 and value:  # unknown_rank
            return None
    return tuple(shape)


def tensor_from_bytes(data: bytes | memoryview, message_class: type | None = None) -> np.ndarray:
    """Serialized TensorProto -> numpy. ``tensor_content`` is viewed in place (read-only, zero-copy); other
    encodings are parsed by ``message_class`` (default: the clients' private TensorProto) and ``codecs``."""
    buf = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    dtype_enum, shape, content, fallback = 0, (), None, False
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _VARINT:
            dtype_enum = value
        elif number == 2 and wire == _LEN:
            shape = _shape_from(value)
            fallback |= shape is None
        elif number == 4 and wire == _LEN:
            content = value
        elif number == 3:
            continue  # version_number: ignored by TF as well
        else:
            fallback = True
    if fallback or content is None or dtype_enum == DT_STRING:
        if message_class is None:
            from .messages import TensorProto as message_class
        try:
            proto = message_class.FromString(bytes(buf))
        except DecodeError as exc:
            raise CodecError(f"malformed TensorProto: {exc}") from None
        return codecs.tensor_proto_to_ndarray(proto)
    dtype = codecs.enum_to_dtype(dtype_enum)
    if any(s < 0 for s in shape):
        raise CodecError(f"Tensor has a negative dimension in shape {list(shape)}")
    expected = codecs.element_count(shape, dtype) * dtype.itemsize
    if len(content) != expected:
        raise CodecError(
            f"tensor_content has {len(content)} bytes, but shape {list(shape)} of "
            f"{codecs.DTYPE_NAMES[dtype_enum]} needs {expected}"
        )
    arr = np.frombuffer(content, dtype=dtype.newbyteorder("<"))
    return (arr if _LITTLE else arr.astype(dtype)).reshape(shape)


def predict_response_from_bytes(data: bytes) -> tuple[dict[str, np.ndarray], bytes]:
    """Serialized PredictResponse -> (outputs, serialized model_spec). Arrays view ``data`` without copying."""
    outputs: dict[str, np.ndarray] = {}
    spec = b""
    for number, wire, value in _fields(memoryview(data)):
        if number == 1 and wire == _LEN:
            key, tensor = "", memoryview(b"")
            for n, w, v in _fields(value):
                if n == 1 and w == _LEN:
                    try:
                        key = bytes(v).decode("utf-8")
                    except UnicodeDecodeError:
                        raise CodecError("PredictResponse output name is not UTF-8") from None
                elif n == 2 and w == _LEN:
                    tensor = v
            outputs[key] = tensor_from_bytes(tensor)
        elif number == 2 and wire == _LEN:
            spec = bytes(value)
    return outputs, spec


__all__ = [
    "predict_request_to_bytes", "predict_response_from_bytes", "tensor_chunks", "tensor_from_bytes",
    "tensor_to_bytes",
]
