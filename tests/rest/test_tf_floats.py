"""float32 outputs written as TF Serving writes them (clients.tf_floats, json_tensor.cc ``WriteDecimal<float>``).

The reference is TF Serving's algorithm spelled out (``%g``, read back as float32, else ``%.9g``, ``.0`` for
whole numbers); the vectorized path must give bit-for-bit the double a client parses from that text, and
orjson's writing of that double must be the reference text itself wherever TF Serving writes fixed notation.
"""
from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients import rest_codec
from clients.tf_floats import tf_float32_as_double, tf_float32_text

FLOAT32_BITS = st.integers(0, 2**32 - 1).map(lambda b: np.array([b], dtype=np.uint32).view(np.float32)[0])
MODEL_RANGE = st.floats(-1e6, 1e6, width=32, allow_nan=False) | st.floats(-(2.0**-10), 2.0**-10, width=32, allow_nan=False)


def _check(values: np.ndarray) -> None:
    for small in (0, 1 << 30):  # the vectorized path, then the per-element loop, on the same values
        _check_path(values, small)


def _check_path(values: np.ndarray, small: int) -> None:
    got = tf_float32_as_double(values, small=small)
    want = np.array([float(tf_float32_text(v)) for v in values.tolist()])
    assert got.shape == values.shape
    assert (np.isnan(got) == np.isnan(want)).all()  # NaN payloads may differ: both are written NaN
    number = ~np.isnan(want)
    assert got[number].view(np.uint64).tolist() == want[number].view(np.uint64).tolist()  # bit for bit, -0.0 too
    finite = np.isfinite(values)
    assert (got[finite].astype(np.float32) == values[finite]).all(), "every text reads back to the same float32"
    if not finite.any():
        return
    texts = orjson.dumps(got[finite], option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")
    for text, value in zip(texts, values[finite].tolist(), strict=True):
        ref = tf_float32_text(value)
        if "e" not in ref:
            assert text == ref, (value, text, ref)


@settings(max_examples=100, deadline=None)
@given(st.lists(FLOAT32_BITS, min_size=1, max_size=64))
def test_any_float32_bit_pattern_matches_tf_serving(values: list) -> None:
    _check(np.array(values, dtype=np.float32))


@settings(max_examples=100, deadline=None)
@given(st.lists(MODEL_RANGE, min_size=1, max_size=64))
def test_model_range_values_match_tf_serving(values: list) -> None:
    _check(np.array(values, dtype=np.float32))


def test_a_million_random_values_match_bit_for_bit() -> None:
    rng = np.random.default_rng(12)
    values = np.concatenate([
        rng.standard_normal(100_000), rng.uniform(0, 1, 100_000) ** 9, rng.uniform(-1e6, 1e6, 50_000),
        np.arange(-1000, 1000) / 8, [1e-9, 9.999999e-10, 999999.5, 1e6, 2**-20, 1e-45, 3.4028235e38],
    ]).astype(np.float32)
    got = tf_float32_as_double(values)
    sample = rng.choice(values.size, 5_000, replace=False)  # the reference is slow: check a sample exactly
    want = np.array([float(tf_float32_text(v)) for v in values[sample].tolist()])
    assert got[sample].view(np.uint64).tolist() == want.view(np.uint64).tolist()
    assert (got.astype(np.float32) == values).all()


def test_against_numpy_shortest_repr() -> None:
    """Where the shortest float32 text has at most 6 digits TF Serving writes it; with 7-8 digits it writes
    %.9g (more digits, same float32): that is json_tensor.cc, not a shortest-repr writer."""
    for value, text in [(0.2, "0.2"), (2.1, "2.1"), (3.0, "3.0"), (0.1, "0.1"), (1e-05, "1e-05"),
                        (1234567.0, "1234567.0"), (0.1234567, "0.123456702"), (2.0617282, "2.06172824"),
                        (16777216.0, "16777216.0"), (1e6, "1e+06"), (-0.0, "-0.0")]:
        assert tf_float32_text(value) == text
        assert float(text) == float(tf_float32_as_double(np.array([value], np.float32))[0])
        shortest = repr(np.float32(value)).removeprefix("np.float32(").removesuffix(")")
        assert np.float32(float(shortest)) == np.float32(float(text))


@pytest.mark.parametrize("outputs,fmt,expected", [
    ({"y": np.array([[0.2], [np.nan]], np.float32)}, "row", b'{"predictions":[[0.2],[NaN]]}'),
    ({"y": np.float32(0.2)}, "columnar", b'{"outputs":0.2}'),
    ({"b": np.array([[0.1], [np.inf]], np.float32), "a": np.array([1, 2], np.int64)}, "row",
     b'{"predictions":[{"a":1,"b":[0.1]},{"a":2,"b":[Infinity]}]}'),
    ({"f64": np.array([0.1, 1 / 3]), "f32": np.array([[[1 / 3]]], np.float32)}, "columnar",
     b'{"outputs":{"f32":[[[0.333333343]]],"f64":[0.1,0.3333333333333333]}}'),
    ({"h": np.array([0.5, -np.inf], np.float16), "t": np.array([True, False])}, "columnar",
     b'{"outputs":{"h":[0.5,-Infinity],"t":[true,false]}}'),
])
def test_predict_responses_nested_row_and_columnar(outputs: dict, fmt: str, expected: bytes) -> None:
    assert rest_codec.dumps_response(rest_codec.encode_predict_response(outputs, fmt)) == expected
