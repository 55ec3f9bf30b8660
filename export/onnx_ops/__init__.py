"""What tf2onnx 1.17 needs to convert ordinary Keras 3 graphs, kept in our code (site-packages is never patched).

    inline      function calls left in the frozen graph (``jit_compile`` kernels) are inlined
    handlers    ``@tf_op`` handlers: Erfc, Bitcast, lookups other than string<->int64 (registered on import)
    rewriters   graph rewrites before the handlers: the float sign-bit test of ``keras.ops.signbit``/``argmax``
    strings     onnxruntime-extensions' ``ai.onnx.contrib`` domain for string ops, when it is installed
    logs        tf2onnx's log records captured and summarized as one line

``graph_optimizers`` is tf2onnx's optimizer list without ``einsum_optimizer``: it rewrites each ``Einsum``
(every MultiHeadAttention has four) by timing candidate decompositions in NumPy, which took 23 of the 34 s of
converting a one-block Transformer, while ONNX Runtime runs ``Einsum`` natively.
"""
from __future__ import annotations

from . import handlers  # noqa: F401 (registers the op handlers with tf2onnx)
from .inline import inline_functions
from .rewriters import REWRITERS
from .strings import extra_opsets

SLOW_OPTIMIZERS = ("einsum_optimizer",)


def graph_optimizers() -> dict:
    """tf2onnx's post-conversion ONNX optimizers, in their order, minus ``SLOW_OPTIMIZERS``."""
    from tf2onnx import optimizer

    return {k: v for k, v in optimizer._get_optimizers().items() if k not in SLOW_OPTIMIZERS}


__all__ = ["REWRITERS", "extra_opsets", "graph_optimizers", "inline_functions"]
