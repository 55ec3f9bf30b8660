"""Keras models the rollout tests export for real (through ``export.pipeline``), one known answer each.

``stable``: y = 2x + 1; ``good``: y = 3x - 1 (a legitimate new version); ``slow``: y = 3x - 1 plus a
zero-weighted branch that multiplies by one 1024 x 1024 matrix 40 times, so every call costs 20-50x the tiny
models' whole request time (a few MB of weights, not hundreds) while the answer, and so export parity,
stays exact. All take ``x: float32[None, 1]`` and answer
``y: float32[None, 1]``, so their signatures are compatible; ``wide`` takes two features and is not.
"""
from __future__ import annotations


def _affine(weight: float, bias: float, width: int = 1, heavy: bool = False):
    import keras
    import numpy as np

    inputs = keras.Input(shape=(width,), name="x", dtype="float32")
    dense = keras.layers.Dense(1, name="y_affine")
    out = dense(inputs)
    dense.set_weights([np.full((width, 1), weight, dtype="float32"), np.array([bias], dtype="float32")])
    if heavy:
        h = _Repeated(1024, 200, name="heavy")(keras.layers.Dense(1024, name="heavy_in")(inputs))
        zero = keras.layers.Dense(1, name="heavy_out", kernel_initializer="zeros", bias_initializer="zeros")
        out = keras.layers.Add(name="y")([out, zero(h)])
    else:
        out = keras.layers.Identity(name="y")(out)
    return keras.Model(inputs, out, name="tiny")


def _repeated_layer():
    import keras

    class Repeated(keras.layers.Layer):
        """``h = tanh(h @ K)``, ``times`` times with one ``units x units`` kernel: compute without file size."""

        def __init__(self, units: int, times: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.units, self.times = units, times

        def build(self, input_shape) -> None:
            self.kernel = self.add_weight(shape=(self.units, self.units), initializer="orthogonal", name="kernel")

        def call(self, h):
            for _ in range(self.times):
                h = keras.ops.tanh(keras.ops.matmul(h, self.kernel))
            return h

    return Repeated


def _Repeated(units: int, times: int, name: str):  # noqa: N802 (reads as the layer class it builds)
    return _repeated_layer()(units, times, name=name)


def build_stable():
    return _affine(2.0, 1.0)


def build_good():
    return _affine(3.0, -1.0)


def build_slow():
    return _affine(3.0, -1.0, heavy=True)


def build_wide():
    return _affine(1.0, 0.0, width=2)
