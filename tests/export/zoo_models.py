"""Model-zoo builders: the models users bring to TF Serving, at sizes a 2-core CI box exports in seconds.

keras.applications families use ``weights=None`` (no download) at small input sizes; the rest are the Keras 3
idioms the converter must handle (exact gelu + MultiHeadAttention with a variable sequence length,
``keras.ops.argmax`` in a dict output). Every builder seeds Keras so a rerun exports the same weights.
Preprocessing models (strings, lookups, uint8, mixed precision) come from ``tests.export.models``.
"""
from __future__ import annotations

import keras
import numpy as np

SEED = 11


def _seed() -> None:
    keras.utils.set_random_seed(SEED)
    np.random.seed(SEED)


def _application(cls, size: int, **kwargs) -> keras.Model:
    """An untrained application at ``size`` px with a 10-class softmax head and a stable input key ``image``."""
    _seed()
    image = keras.Input((size, size, 3), name="image")
    base = cls(weights=None, include_top=False, input_tensor=image, pooling="avg", **kwargs)
    return keras.Model(image, keras.layers.Dense(10, activation="softmax", name="probs")(base.output))


def mobilenet_v2() -> keras.Model:
    return _application(keras.applications.MobileNetV2, 96, alpha=0.35)


def mobilenet_v3_small() -> keras.Model:
    return _application(keras.applications.MobileNetV3Small, 64, minimalistic=False, include_preprocessing=False)


def efficientnet_b0() -> keras.Model:
    return _application(keras.applications.EfficientNetB0, 64)


def densenet121() -> keras.Model:
    return _application(keras.applications.DenseNet121, 32)


def convnext_tiny() -> keras.Model:
    """Exact gelu (``Erfc``), grouped 7x7 convolutions (``jit_compile`` function calls) and LayerScale."""
    return _application(keras.applications.ConvNeXtTiny, 32, include_preprocessing=False)


def resnet50() -> keras.Model:
    return _application(keras.applications.ResNet50, 32)


def gelu_transformer(vocab: int = 64, width: int = 32) -> keras.Model:
    """A Transformer encoder block on token ids of any length: Embedding, MultiHeadAttention, LayerNorm and an
    exact-gelu feed-forward (``approximate=False``, Keras' default), mean-pooled into 4 logits."""
    _seed()
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab, width)(tokens)
    attended = keras.layers.MultiHeadAttention(num_heads=4, key_dim=width // 4)(x, x)
    x = keras.layers.LayerNormalization(epsilon=1e-6)(x + attended)
    ff = keras.layers.Dense(width * 2, activation="gelu")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6)(x + keras.layers.Dense(width)(ff))
    pooled = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(4, name="logits")(pooled))


def argmax_dict() -> keras.Model:
    """Dict outputs ``probs`` and ``label``; ``keras.ops.argmax`` of floats lowers to a sign-bit ``Bitcast``."""
    _seed()
    features = keras.Input((12,), name="features")
    hidden = keras.layers.Dense(16, activation="relu")(features)
    probs = keras.layers.Dense(5, activation="softmax", name="probs")(hidden)
    label = keras.ops.argmax(probs, axis=-1)
    return keras.Model(features, {"probs": probs, "label": label})
