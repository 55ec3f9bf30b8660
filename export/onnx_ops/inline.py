"""Inline the function calls that TensorFlow leaves in a frozen graph, so tf2onnx sees plain ops.

tf2onnx freezes a signature with grappler's function optimizer, which inlines every ``PartitionedCall`` /
``StatefulPartitionedCall`` except those marked for XLA compilation (``_XlaMustCompile``) or ``_noinline``.
Keras 3 on the TF backend wraps some kernels in ``tf.function(jit_compile=True)`` (grouped convolutions on CPU,
hence ConvNeXt's depthwise stages; 3-D ``channels_first`` convolutions), and those calls reach tf2onnx as
``StatefulPartitionedCall`` nodes it cannot convert. XLA compilation is a placement hint, not semantics: the
function body computes the same values without it, so the marks are dropped and grappler runs once more.
"""
from __future__ import annotations

CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
# attributes that stop grappler's function inlining (and only that)
NO_INLINE_ATTRS = ("_XlaMustCompile", "_XlaCompile", "_XlaScope", "_XlaInternalScope", "_noinline")
MAX_PASSES = 4  # nesting depth handled; each pass inlines one level of calls


def call_nodes(graph_def) -> list:
    """The top-level function-call nodes that tf2onnx would leave unconverted."""
    return [n for n in graph_def.node if n.op in CALL_OPS]


def _strip(attr_map) -> None:
    for key in NO_INLINE_ATTRS:
        if key in attr_map:
            del attr_map[key]


def _clear_marks(graph_def) -> None:
    for node in graph_def.node:
        _strip(node.attr)
    for fdef in graph_def.library.function:
        _strip(fdef.attr)
        for node in fdef.node_def:
            _strip(node.attr)


def inline_functions(graph_def, inputs: list[str], outputs: list[str]):
    """Return ``graph_def`` with its remaining function calls inlined (the same object when there are none)."""
    import tensorflow as tf
    from tf2onnx import tf_loader

    for _ in range(MAX_PASSES):
        if not call_nodes(graph_def):
            break
        _clear_marks(graph_def)
        with tf.Graph().as_default():  # grappler's meta-graph export needs graph mode
            graph_def = tf_loader.tf_optimize(inputs, outputs, graph_def)
    return graph_def
