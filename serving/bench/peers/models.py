"""The two Keras models of ``make bench-peers`` besides the digits MLP, as ``module:function`` sources for
``python -m export`` (so every runtime serves the very ``model.onnx`` our exporter wrote and parity-checked).

Weights are random (``weights=None``): speed does not depend on them, and no download is needed.
"""
from __future__ import annotations


def mobilenet_v2_96():
    """MobileNetV2 at 96×96×3 (keras.applications, 1000 classes): a real convolutional network whose
    batch-1 REST body is ~150 kB of JSON, i.e. a large request."""
    import keras

    image = keras.Input(shape=(96, 96, 3), name="image")  # a stable input name for every protocol's request
    return keras.applications.MobileNetV2(input_tensor=image, weights=None)


def mlp_2048():
    """784 → 2048 → 2048 → 10: a model call that dominates the per-request work, where batching must pay."""
    import keras

    pixels = keras.Input(shape=(784,), name="pixels")
    x = keras.layers.Dense(2048, activation="relu", name="hidden1")(pixels)
    x = keras.layers.Dense(2048, activation="relu", name="hidden2")(x)
    probs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    return keras.Model(pixels, probs, name="mlp_2048")
