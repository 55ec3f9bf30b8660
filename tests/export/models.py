"""Tiny models covering every export case of the issue (built untrained: parity does not need training).

Functions here double as ``module:function`` export sources (``tests.export.models:subclassed``).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

VOCAB = 50


def sequential_cnn() -> keras.Model:
    return keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="probs"),
    ])


def functional_mlp() -> keras.Model:
    pixels = keras.Input((64,), name="pixels")
    hidden = keras.layers.Dense(16, activation="relu")(pixels)
    return keras.Model(pixels, keras.layers.Dense(10, activation="softmax", name="probs")(hidden))


def embedding_lstm() -> keras.Model:
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(VOCAB, 8)(tokens)
    x = keras.layers.LSTM(8)(x)
    return keras.Model(tokens, keras.layers.Dense(1, activation="sigmoid", name="score")(x))


def bidirectional_gru() -> keras.Model:
    frames = keras.Input((None, 6), name="frames")
    x = keras.layers.Bidirectional(keras.layers.GRU(5))(frames)
    return keras.Model(frames, keras.layers.Dense(3, name="logits")(x))


def two_inputs() -> keras.Model:
    image = keras.Input((4, 4, 1), name="image")
    meta = keras.Input((3,), name="meta")
    x = keras.layers.Concatenate()([keras.layers.Flatten()(image), meta])
    return keras.Model([image, meta], keras.layers.Dense(2, name="out")(x))


def two_outputs() -> keras.Model:
    features = keras.Input((5,), name="features")
    x = keras.layers.Dense(8, activation="relu")(features)
    return keras.Model(features, {
        "label_probs": keras.layers.Dense(3, activation="softmax")(x),
        "value": keras.layers.Dense(1)(x),
    })


class TwoTower(keras.Model):
    """A subclassed model (no Input layers): built by calling ``build``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.layers.Dense(6, activation="tanh")
        self.b = keras.layers.Dense(2)

    def build(self, input_shape):
        self.a.build(input_shape)
        self.b.build((*input_shape[:-1], 6))

    def call(self, inputs, training=False):
        return self.b(self.a(inputs))


def subclassed() -> keras.Model:
    model = TwoTower()
    model.build((None, 7))
    return model


def lambda_model() -> keras.Model:
    x = keras.Input((3,), name="x")
    return keras.Model(x, keras.layers.Dense(1)(keras.layers.Lambda(lambda t: t * 2.0)(x)))


class TraceDependent(keras.layers.Layer):
    """Computes a different function when traced (SavedModel/ONNX) than when run eagerly (Keras):
    a deterministic parity mismatch for testing the gate."""

    def call(self, inputs):
        return inputs + (0.0 if tf.executing_eagerly() else 0.5)


def divergent() -> keras.Model:
    x = keras.Input((4,), name="x")
    return keras.Model(x, TraceDependent(name="y")(keras.layers.Dense(2)(x)))


def seeded(fn) -> keras.Model:
    keras.utils.set_random_seed(7)
    np.random.seed(7)
    return fn()


# --- preprocessing-layer models (string / lookup inputs, the "TF Serving takes raw text" case) ---

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "good", "bad", "movie", "plot"]


def text_classifier(shape: tuple = (None,)) -> keras.Model:
    """TextVectorization on a tf.string input of shape ``(None,)`` or ``(None, 1)`` -> Embedding -> Dense."""
    vectorize = keras.layers.TextVectorization(max_tokens=40, output_sequence_length=6, name="vectorize")
    vectorize.adapt(tf.constant([" ".join(WORDS[i:i + 4]) for i in range(len(WORDS))]))
    text = keras.Input(shape=shape[1:], dtype="string", name="text")
    x = vectorize(text)
    x = keras.layers.Embedding(40, 8)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(text, keras.layers.Dense(2, activation="softmax", name="probs")(x))


def text_classifier_column() -> keras.Model:
    return text_classifier((None, 1))


def string_lookup() -> keras.Model:
    """StringLookup (one-hot) on a ``(None, 1)`` string column, then Dense."""
    colors = keras.Input(shape=(1,), dtype="string", name="color")
    onehot = keras.layers.StringLookup(vocabulary=["red", "green", "blue", "cyan"], output_mode="one_hot")(colors)
    return keras.Model(colors, keras.layers.Dense(3, name="scores")(onehot))


def integer_lookup_normalization() -> keras.Model:
    """IntegerLookup on an int64 id plus Normalization on a float feature (two inputs, two preprocessors)."""
    ids = keras.Input(shape=(1,), dtype="int64", name="store_id")
    amount = keras.Input(shape=(1,), name="amount")
    onehot = keras.layers.IntegerLookup(vocabulary=[3, 7, 11, 19, 42], output_mode="one_hot")(ids)
    norm = keras.layers.Normalization(mean=5.0, variance=4.0)(amount)
    x = keras.layers.Concatenate()([onehot, norm])
    return keras.Model({"store_id": ids, "amount": amount}, keras.layers.Dense(1, name="spend")(x))


def uint8_image() -> keras.Model:
    """A uint8 image input rescaled inside the model (the 0..255 range must be sampled, not 0..9)."""
    image = keras.Input((8, 8, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255.0)(keras.ops.cast(image, "float32"))
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax", name="probs")(x))


def mixed_float16() -> keras.Model:
    """Mixed precision: float16 compute, a float32 output layer (as the Keras guide recommends)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        x = keras.Input((6,), name="features")
        h = keras.layers.Dense(8, activation="relu")(x)
        out = keras.layers.Dense(2, dtype="float32", name="logits")(h)
        return keras.Model(x, out)
    finally:
        keras.config.set_dtype_policy(previous)


def constant_output() -> keras.Model:
    """Degenerate: the output does not depend on the input (zero kernel), so parity on it proves nothing."""
    x = keras.Input((4,), name="x")
    return keras.Model(x, keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer="ones", name="y")(x))


def auto_named() -> keras.Model:
    """Keras' build-order auto names on a two-input, two-output model (input_layer_N / output_N keys)."""
    a, b = keras.Input((3,)), keras.Input((2,))
    x = keras.layers.Concatenate()([a, b])
    return keras.Model([a, b], [keras.layers.Dense(1)(x), keras.layers.Dense(2)(x)])


class IncompleteGamma(keras.layers.Layer):
    """``tf.math.igamma``: a real TF op with no ONNX counterpart, so conversion genuinely fails."""

    def call(self, inputs):
        return tf.math.igamma(tf.nn.softplus(inputs) + 1.0, tf.ones_like(inputs) * 1.5)


def unconvertible() -> keras.Model:
    x = keras.Input((4,), name="x")
    return keras.Model(x, IncompleteGamma(name="p")(keras.layers.Dense(3)(x)))
