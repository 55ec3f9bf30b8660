"""Keras models the rollout tests export for real (through ``export.pipeline``), one known answer each.

``stable``: y = 2x + 1; ``good``: y = 3x - 1 (a legitimate new version); ``slow``: y = 3x - 1 plus a
zero-weighted branch of three 2048-wide dense layers, so every call costs ~10-50x the tiny models' compute
while the answer (and so export parity) stays exact. All take ``x: float32[None, 1]`` and answer
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
        h = inputs
        for i in range(3):
            h = keras.layers.Dense(2048, activation="relu", name=f"heavy_{i}")(h)
        zero = keras.layers.Dense(1, name="heavy_out", kernel_initializer="zeros", bias_initializer="zeros")
        out = keras.layers.Add(name="y")([out, zero(h)])
    else:
        out = keras.layers.Identity(name="y")(out)
    return keras.Model(inputs, out, name="tiny")


def build_stable():
    return _affine(2.0, 1.0)


def build_good():
    return _affine(3.0, -1.0)


def build_slow():
    return _affine(3.0, -1.0, heavy=True)


def build_wide():
    return _affine(1.0, 0.0, width=2)
