"""The fast path of a ``:predict`` body: simdjson parses it and copies a numeric tensor straight into a buffer.

The general decoder (``clients.rest_codec``: orjson, then numpy over Python lists) builds one Python float per
number: for a 96x96x3 image that is 2.6 ms of the loop's time, against 0.4 ms here. This path covers the
common large body -- one numeric tensor for a single-input signature, as ``"instances": [...]``,
``"inputs": [...]`` or ``"inputs": {"name": [...]}`` -- and hands everything else back (``None``) to the
general decoder, which is the reference for TF Serving's semantics and error messages. It never answers an
error itself and never accepts a body the general path would refuse, so results are identical:

* simdjson parses strict JSON only. NaN/Infinity literals, numbers beyond a double or beyond 64-bit
  integers, bad UTF-8 and syntax errors make ``parse`` return None (the general path knows TF Serving's
  answer to each).
* The array must be *rectangular and purely numeric*. simdjson's ``as_buffer`` flattens ragged arrays
  without complaint, so the check is done on the text: deleting every character a JSON number or
  whitespace can hold leaves brackets and commas only, and that skeleton must contain the skeleton of a
  dense array of the discovered shape, where the body holds no other array. A string, ``true``/``null``,
  an object or a ragged row leaves other characters or another skeleton, and goes to the general path.
* Values must fit the signature dtype exactly as json_tensor.cc requires: for float32 (float64) every
  magnitude below 2**24 (2**53), so an integer literal cannot lose precision and no value can overflow;
  integer dtypes take integer literals only (simdjson refuses a fraction or exponent as an integer) within
  the dtype's range. Anything else goes to the general path, which accepts or refuses it exactly.
* Duplicate keys, both ``instances`` and ``inputs``, a non-string ``signature_name``, empty dimensions and
  more than 32 dimensions all go to the general path.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

try:
    import simdjson
except ImportError:  # pragma: no cover - pysimdjson is a pinned server dependency; without it every body takes the general path
    simdjson = None

_NUMBER_AND_SPACE = b"0123456789.eE+- \t\r\n"
# Below this a body holds a few hundred numbers at most, and orjson + numpy (~3 µs) beat this path's fixed
# cost (about ten numpy calls, ~10 µs): ``parse`` leaves small bodies to the general decoder.
MIN_BYTES = 2048
_MAX_RANK = 32
_FLOAT_EXACT = {"float32": float((1 << 24) - 1), "float64": float((1 << 53) - 1)}  # rest_codec._FLOAT_MAX_INT
_INTEGERS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"}
_local = threading.local()


def _parser():
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def _skeleton(shape: list[int]) -> bytes:
    """The brackets and commas of a dense JSON array of ``shape`` (no dimension is 0)."""
    inner = b"[" + b"," * (shape[-1] - 1) + b"]"
    for size in reversed(shape[:-1]):
        inner = b"[" + b",".join([inner] * size) + b"]"
    return inner


class FastBody:
    """A parsed body: ``signature_name`` (str) and ``tensors(dtypes)``. Holds simdjson's document until
    ``close()``; use it as a context manager on the thread that parsed it."""

    def __init__(self, raw: bytes, doc, signature_name: str, key: str) -> None:
        self._raw = raw
        self._doc = doc
        self.signature_name = signature_name
        self._key = key  # "instances" or "inputs"

    def __enter__(self) -> FastBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop simdjson's objects so this thread's parser can parse the next body."""
        self._doc = None

    def tensors(self, dtypes: Mapping[str, str]) -> tuple[dict[str, np.ndarray], str] | None:
        """``(inputs, "row" | "columnar")`` as ``rest_codec.decode_predict_request`` would return them, or
        None when this body is not one the fast path covers."""
        if self._doc is None or len(dtypes) != 1:
            return None
        ((name, dtype),) = dtypes.items()
        if dtype not in _FLOAT_EXACT and dtype not in _INTEGERS:
            return None
        value = self._doc[self._key]
        fmt = "row" if self._key == "instances" else "columnar"
        if isinstance(value, simdjson.Object):
            if fmt == "row" or len(value) != 1 or name not in value:
                return None
            value = value[name]
        array = _dense(self._raw, value, dtype)
        return None if array is None else ({name: array}, fmt)


def _dense(raw: bytes, value, dtype: str) -> np.ndarray | None:
    if not isinstance(value, simdjson.Array):
        return None
    shape = []
    item = value
    while isinstance(item, simdjson.Array):
        size = len(item)
        if not size or len(shape) == _MAX_RANK:
            return None
        shape.append(size)
        item = item[0]
    skeleton = raw.translate(None, _NUMBER_AND_SPACE)
    expected = _skeleton(shape)
    if skeleton.count(b"[") != expected.count(b"[") or expected not in skeleton:
        return None  # ragged, not purely numeric, or not the body's only array
    try:
        if dtype in _FLOAT_EXACT:
            flat = np.frombuffer(value.as_buffer(of_type="d"), dtype=np.float64)
            if flat.size and float(np.abs(flat).max()) > _FLOAT_EXACT[dtype]:
                return None
        else:
            flat = np.frombuffer(value.as_buffer(of_type="i"), dtype=np.int64)
            info = np.iinfo(np.dtype(dtype))
            if flat.size and (flat.min() < info.min or flat.max() > info.max):
                return None
    except (TypeError, ValueError, RuntimeError):  # a leaf of another type, or an integer beyond int64
        return None
    if flat.size != int(np.prod(shape)):
        return None
    return flat.reshape(shape).astype(dtype, copy=False)


def parse(raw: bytes, min_bytes: int = MIN_BYTES) -> FastBody | None:
    """The body as a ``FastBody``, or None when the general decoder must handle it (see the module docstring)."""
    if simdjson is None or not raw or len(raw) < min_bytes:
        return None
    try:
        try:
            doc = _parser().parse(raw)
        except RuntimeError:  # the last body's objects are still alive somewhere: use a fresh parser
            _local.parser = None
            doc = _parser().parse(raw)
    except (ValueError, RuntimeError, UnicodeDecodeError, TypeError):
        return None
    if not isinstance(doc, simdjson.Object):
        return None
    keys = list(doc.keys())
    if len(set(keys)) != len(keys) or ("instances" in keys) == ("inputs" in keys):
        return None
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        return None
    return FastBody(raw, doc, signature_name, "instances" if "instances" in keys else "inputs")
