"""The converter's Keras 3 coverage, op class by op class, on small graphs: each converts, and ONNX Runtime (the
server's backend, contrib ops registered) agrees with the SavedModel on inputs chosen to break a wrong lowering.
An unconvertible graph fails with one ``OnnxConversionError`` line naming the op, and tf2onnx prints nothing.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import onnx_export
from export.errors import OnnxConversionError

from .conftest import run_export


class Lgamma(keras.layers.Layer):
    """``tf.math.lgamma``: a TensorFlow op tf2onnx has no handler for."""

    def call(self, x):
        return tf.math.lgamma(x)


class FloatBits(keras.layers.Layer):
    """A float-to-int ``Bitcast`` that is not the sign-bit test: no ONNX form exists."""

    def call(self, x):
        return tf.cast(tf.bitcast(x, tf.int32), tf.float32)


def _convert(model: keras.Model, tmp_path: Path) -> Path:
    saved = tmp_path / "sm"
    model.export(str(saved), verbose=False)
    sig = tf.saved_model.load(str(saved)).signatures["serving_default"]
    onnx_export.convert(saved, saved / onnx_export.ONNX_FILE, expected_inputs=list(sig.structured_input_signature[1]),
                        expected_outputs=list(sig.structured_outputs))
    return saved


def _both(saved: Path, inputs: dict[str, np.ndarray]) -> tuple[dict, dict]:
    from serving.backends.onnxruntime import OnnxRuntimeBackend
    from serving.backends.tensorflow import TensorFlowBackend

    tf_backend, ort_backend = TensorFlowBackend.load(saved), OnnxRuntimeBackend.load(saved)
    try:
        return (tf_backend.predict("serving_default", inputs), ort_backend.predict("serving_default", inputs))
    finally:
        tf_backend.unload()
        ort_backend.unload()


def test_sign_bit_argmax_argmin_and_exact_gelu_match_tensorflow(tmp_path: Path) -> None:
    """signbit's Bitcast/BitwiseAnd (and argmax/argmin built on it) and gelu's Erfc, on -0.0, 0.0, +-inf,
    denormals and values far into erfc's tails."""
    x = keras.Input((8,), name="x")
    model = keras.Model(x, {
        "sign": keras.ops.cast(keras.ops.signbit(x), "int32"),
        "amax": keras.ops.argmax(x, axis=-1), "amin": keras.ops.argmin(x, axis=-1),
        "gelu": keras.activations.gelu(x, approximate=False),
    })
    saved = _convert(model, tmp_path)
    tiny = np.finfo(np.float32).smallest_subnormal
    rows = np.array([
        [-0.0, 0.0, -1.0, 1.0, -np.inf, np.inf, -tiny, tiny],
        [0.0, -0.0, -0.0, 0.0, -3.0, -3.0, 2.5, -7.0],   # ties: TF's -0.0 < 0.0 order
        [-0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, 0.0],
        [-9.0, -5.5, -2.0, -0.5, 0.5, 2.0, 5.5, 9.0],
    ], np.float32)
    want, got = _both(saved, {"x": rows})
    for key in ("sign", "amax", "amin"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    finite = np.isfinite(rows)
    np.testing.assert_allclose(got["gelu"][finite], want["gelu"][finite], rtol=1e-5, atol=1e-6)


def test_jit_compiled_grouped_convolution_is_inlined(tmp_path: Path) -> None:
    """Keras runs grouped convolutions through ``tf.function(jit_compile=True)`` on CPU: a nested call."""
    x = keras.Input((9, 9, 8), name="image")
    model = keras.Model(x, {"y": keras.layers.Conv2D(8, 3, groups=4, padding="same")(x)})
    saved = _convert(model, tmp_path)
    import onnx

    ops = {n.op_type for n in onnx.load(str(saved / onnx_export.ONNX_FILE)).graph.node}
    assert "StatefulPartitionedCall" not in ops and "Conv" in ops
    rows = np.random.default_rng(0).normal(size=(2, 9, 9, 8)).astype(np.float32)
    want, got = _both(saved, {"image": rows})
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-5)


def test_integer_and_inverse_lookups_match_tensorflow(tmp_path: Path) -> None:
    """int64->int64 tables (IntegerLookup both ways) as LabelEncoder, string<->int64 as CategoryMapper."""
    ids = keras.Input((3,), dtype="int64", name="ids")
    words = keras.Input((2,), dtype="string", name="words")
    lookup = keras.layers.IntegerLookup(vocabulary=[3, 7, 11, 42], num_oov_indices=1)
    model = keras.Model({"ids": ids, "words": words}, {
        "index": lookup(ids),
        "back": keras.layers.IntegerLookup(vocabulary=[3, 7, 11, 42], invert=True)(lookup(ids)),
        "word_id": keras.layers.StringLookup(vocabulary=["red", "green"])(words),
    })
    saved = _convert(model, tmp_path)
    inputs = {"ids": np.array([[3, 42, 5], [-1, 11, 7]], np.int64),
              "words": np.array([[b"red", b"zz"], [b"green", b""]])}
    want, got = _both(saved, inputs)
    for key in ("index", "back", "word_id"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_text_vectorization_standardize_and_split_match_tensorflow(tmp_path: Path) -> None:
    """lowercase (ASCII only, as TF's default encoding), punctuation regex, whitespace runs of any kind."""
    vectorize = keras.layers.TextVectorization(output_sequence_length=7)
    vectorize.adapt(["the cat sat on the mat", "a dog ran far away", "éclair café"])
    text = keras.Input((), dtype="string", name="text")
    saved = _convert(keras.Model(text, {"ids": vectorize(text)}), tmp_path)
    rows = np.array([s.encode() for s in [
        "The CAT, sat!", "  a\tdog\n\nran   far  ", "", "ÉCLAIR café?", "unknown words only here now x y z",
    ]])
    want, got = _both(saved, {"text": rows})
    np.testing.assert_array_equal(got["ids"], want["ids"])


def test_unsupported_op_fails_in_one_line_naming_it(tmp_path: Path, capfd) -> None:
    x = keras.Input((4,), name="x")
    with pytest.raises(OnnxConversionError) as info:
        _convert(keras.Model(x, Lgamma(name="y")(x)), tmp_path)
    message = str(info.value)
    assert "\n" not in message and "unsupported TensorFlow ops: Lgamma" in message and "opset 17" in message
    out, err = capfd.readouterr()
    assert "tf2onnx" not in out + err and "Traceback" not in out + err


def test_handler_failure_fails_in_one_line_naming_the_op(tmp_path: Path, capfd) -> None:
    x = keras.Input((4,), name="x")
    with pytest.raises(OnnxConversionError, match=r"Bitcast node .* failed: Bitcast from FLOAT to INT32") as info:
        _convert(keras.Model(x, FloatBits(name="y")(x)), tmp_path)
    assert "\n" not in str(info.value)
    out, err = capfd.readouterr()
    assert "tf2onnx" not in out + err and "Traceback" not in out + err


def lgamma_model() -> keras.Model:
    x = keras.Input((4,), name="x")
    return keras.Model(x, Lgamma(name="y")(x))


def test_best_effort_export_records_the_one_line_reason(models_dir: Path) -> None:
    result, printed = run_export("tests.export.test_zoo_converter:lgamma_model", models_dir, "lgamma")
    onnx_state = result.metadata["onnx"]
    assert onnx_state["status"] == "failed" and "unsupported TensorFlow ops: Lgamma" in onnx_state["reason"]
    assert not (result.path / onnx_export.ONNX_FILE).exists()
    assert "ERROR:tf2onnx" not in printed and "Traceback" not in printed


def test_hashing_is_refused_not_converted_wrong(tmp_path: Path) -> None:
    """onnxruntime-extensions' StringToHashBucketFast gives other buckets than TensorFlow: a clean failure."""
    text = keras.Input((1,), dtype="string", name="s")
    with pytest.raises(OnnxConversionError, match="StringToHashBucketFast .*Fingerprint64") as info:
        _convert(keras.Model(text, {"h": keras.layers.Hashing(num_bins=97)(text)}), tmp_path)
    assert "\n" not in str(info.value)
