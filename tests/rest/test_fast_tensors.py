"""The simdjson fast path never disagrees with the general decoder: same arrays bit for bit, and every body the
general path refuses (or that the fast path does not cover) goes back to it (``None``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients import rest_codec
from clients.codecs import CodecError
from serving.rest import fast_tensors

DTYPES = ["float32", "float64", "int32", "int64", "int8", "uint8", "int16", "uint32"]


def general(raw: bytes, dtypes: dict[str, str]):
    try:
        body = rest_codec.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("signature_name", ""), str):
            return "error"
        return rest_codec.decode_predict_request(body, dtypes)
    except CodecError:
        return "error"


def fast(raw: bytes, dtypes: dict[str, str]):
    parsed = fast_tensors.parse(raw, min_bytes=0)  # every size: the small bodies exercise the same rules
    if parsed is None:
        return None
    with parsed:
        return parsed.tensors(dtypes)


def assert_agrees(raw: bytes, dtypes: dict[str, str]) -> bool:
    """True when the fast path took the body (and agreed); False when it handed it back."""
    got = fast(raw, dtypes)
    want = general(raw, dtypes)
    if got is None:
        return False
    assert want != "error", f"fast path accepted a body TF Serving refuses: {raw[:200]!r}"
    (inputs, fmt), (want_inputs, want_fmt) = got, want
    assert fmt == want_fmt and inputs.keys() == want_inputs.keys()
    for name, array in inputs.items():
        expected = want_inputs[name]
        assert array.dtype == expected.dtype and array.shape == expected.shape
        assert array.tobytes() == expected.tobytes()  # bit for bit: -0.0, rounding to float32
    return True


def test_an_image_body_takes_the_fast_path_and_matches() -> None:
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    for body in ({"instances": x.tolist()}, {"inputs": x.tolist()}, {"inputs": {"image": x.tolist()}},
                 {"signature_name": "serving_default", "instances": x.tolist()}):
        assert assert_agrees(json.dumps(body).encode(), {"image": "float32"})


@pytest.mark.parametrize("text", [
    '{"instances": [[1, 2], [3]]}',  # ragged
    '{"instances": [[1, 2], [3, [4]]]}',  # ragged, same count
    '{"instances": [[1, 2], [3], [4, 5, 6]]}',  # ragged, same element count as a dense 3x2
    '{"instances": [[1, true], [3, 4]]}',
    '{"instances": [[1, "2"], [3, 4]]}',
    '{"instances": [[1, null], [3, 4]]}',
    '{"instances": [[1, {"b64": "AA=="}], [3, 4]]}',
    '{"instances": [NaN, 1]}',
    '{"instances": [Infinity, 1]}',
    '{"instances": [1e400]}',
    '{"instances": [123456789012345678901234567890]}',
    '{"instances": [16777217]}',  # an integer float32 cannot hold exactly: TF Serving refuses it
    '{"instances": [1e39]}',  # beyond float32
    '{"instances": [1, 2], "inputs": [1]}',
    '{"instances": [1], "instances": [2]}',
    '{"signature_name": 5, "instances": [1]}',
    '{"signature_name": "[,]", "instances": [[1, 2], [3]]}',
    '{"instances": [1, 2], "other": [[1, 2]]}',
    '{"instances": []}', '{"instances": [[]]}', '[1, 2]', '{}', '{"instances": 5}', "",
])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_bodies_the_fast_path_must_not_take(text: str, dtype: str) -> None:
    raw = text.encode()
    assert fast(raw, {"x": dtype}) is None or general(raw, {"x": dtype}) != "error"
    assert_agrees(raw, {"x": dtype})


def test_small_bodies_are_left_to_the_general_decoder() -> None:
    small = b'{"instances": [[1, 2]]}'
    assert fast_tensors.parse(small) is None
    assert fast_tensors.parse(small + b" " * fast_tensors.MIN_BYTES) is not None


def test_integer_dtypes_take_integers_only_within_range() -> None:
    assert assert_agrees(b'{"instances": [[1, 2], [3, -4]]}', {"ids": "int32"})
    assert not assert_agrees(b'{"instances": [[1.0, 2], [3, 4]]}', {"ids": "int32"})
    assert not assert_agrees(b'{"instances": [300]}', {"ids": "uint8"})
    assert not assert_agrees(b'{"instances": [-1]}', {"ids": "uint8"})
    assert not assert_agrees(b'{"instances": [1, 2]}', {"a": "float32", "b": "float32"})  # two inputs
    assert not assert_agrees(b'{"instances": [true]}', {"flag": "bool"})


def test_a_parser_left_busy_by_an_abandoned_body_is_replaced() -> None:
    abandoned = fast_tensors.parse(b'{"instances": [1, 2]}', min_bytes=0)
    assert abandoned is not None  # never closed: its document still references the thread's parser
    assert fast(b'{"instances": [3, 4]}', {"x": "float32"})[0]["x"].tolist() == [3, 4]
    abandoned.close()


_leaf = st.one_of(
    st.integers(-(1 << 30), 1 << 30), st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(-1e6, 1e6), st.sampled_from([0, -0.0, 16777216, 16777217, 1e38, 3.5e38, True, "a", None]),
)


def _dense(draw, shape: list[int]):
    if not shape:
        return draw(_leaf)
    return [_dense(draw, shape[1:]) for _ in range(shape[0])]


@st.composite
def bodies(draw):
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    value = _dense(draw, shape)
    if draw(st.booleans()) and isinstance(value, list) and len(value) > 1:  # make it ragged
        value[-1] = value[-1][:-1] if isinstance(value[-1], list) and value[-1] else [value[-1], value[-1]]
    key = draw(st.sampled_from(["instances", "inputs", "named"]))
    body = {"instances": value} if key == "instances" else {"inputs": value if key == "inputs" else {"x": value}}
    return json.dumps(body).encode()


@settings(max_examples=400, deadline=None)
@given(bodies(), st.sampled_from(DTYPES))
def test_fast_path_agrees_with_the_general_decoder(raw: bytes, dtype: str) -> None:
    assert_agrees(raw, {"x": dtype})
