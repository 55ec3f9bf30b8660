"""Convert the written SavedModel to ``model.onnx`` with tf2onnx, in-process.

tf2onnx 1.17 has no ``convert.from_saved_model`` and its ``from_keras`` breaks on Keras 3 Sequential models,
so this does what ``python -m tf2onnx.convert --saved-model DIR --signature_def serving_default`` does (load
the signature's frozen graph with ``tf_loader.from_saved_model``, then ``_convert_common``) without paying a
second interpreter and TensorFlow import per export (the dominant cost of a subprocess conversion). The graph's
inputs and outputs are renamed to the signature keys (``tensors_to_rename``) and the leading (batch) dimension is
named ``batch``.

Keras 3 graphs need more than stock tf2onnx (``export.onnx_ops``): function calls left by ``jit_compile`` kernels
are inlined, op handlers cover ``Erfc``/``Bitcast``/non-string lookups, and a rewriter removes the float bit test of
``signbit``. String ops map to onnxruntime-extensions' ``ai.onnx.contrib`` domain when it is installed.

Every failure is one ``OnnxConversionError`` whose message names the unsupported ops; tf2onnx's log lines are
captured (never printed) and summarized into it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import onnx_ops
from .errors import OnnxConversionError
from .onnx_ops import strings
from .onnx_ops.logs import captured_tf2onnx_log

ONNX_FILE = "model.onnx"
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 18
BATCH_DIM = "batch"


def check_opset(opset: int) -> int:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxConversionError(f"opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET} "
                                  f"(default {DEFAULT_OPSET})")
    return opset


def _name_batch_dims(model_proto, signature_batched: set[str]) -> None:
    """Give dim 0 of every batched graph input/output the symbolic name ``batch`` (it stays dynamic)."""
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.name in signature_batched and dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


def _fill_output_shapes(model_proto) -> None:
    """Give graph outputs that tf2onnx left without a shape (a table lookup's result: TensorFlow's shape function
    does not know it) the shape ONNX inference derives; ``onnx.checker`` requires one on every graph output."""
    import onnx

    missing = [o for o in model_proto.graph.output if not o.type.tensor_type.HasField("shape")]
    if not missing:
        return
    try:
        inferred = {o.name: o for o in onnx.shape_inference.infer_shapes(model_proto).graph.output}
    except onnx.shape_inference.InferenceError:
        return  # the checker then names the output
    for output in missing:
        found = inferred.get(output.name)
        if found is not None and found.type.tensor_type.HasField("shape"):
            output.type.tensor_type.shape.CopyFrom(found.type.tensor_type.shape)


@contextmanager
def _no_graph_copies() -> Iterator[None]:
    """tf2onnx deep-copies the whole graph, weights included, before each of its ~40 optimizer passes so that it
    can roll a failing pass back (``TF2ONNX_CATCH_ERRORS``); on ConvNeXtTiny that is 2 of 5 minutes. Conversion
    runs without the copies first (``convert`` retries with them when that fails for no op-level reason)."""
    from tf2onnx import constants

    key = constants.ENV_TF2ONNX_CATCH_ERRORS
    saved = os.environ.get(key)
    os.environ[key] = "FALSE"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def _frozen_signature(saved_model_dir: Path, signature: str):
    """The signature's frozen, function-free GraphDef with its inputs, outputs, tables and renames."""
    from tf2onnx import tf_loader

    graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
        str(saved_model_dir), None, None, "serve", [signature], None, False,
        return_initialized_tables=True, return_tensors_to_rename=True,
    )
    return onnx_ops.inline_functions(graph_def, inputs, outputs), inputs, outputs, tables, renames


def convert(saved_model_dir: Path, out_path: Path, *, opset: int = DEFAULT_OPSET, signature: str = "serving_default",
            expected_inputs: list[str], expected_outputs: list[str]) -> Path:
    """Write ``out_path`` from the SavedModel's ``signature``; checks the graph's names against the signature.

    Raises ``OnnxConversionError`` (one line) for anything that keeps a valid ``model.onnx`` from being written.
    """
    import onnx
    import tensorflow as tf
    from tf2onnx.convert import _convert_common

    check_opset(opset)
    with captured_tf2onnx_log() as log:
        try:
            graph_def, inputs, outputs, tables, renames = _frozen_signature(saved_model_dir, signature)
            log.node_ops = {n.name: n.op for n in graph_def.node}
            options = dict(name=str(saved_model_dir), opset=opset, input_names=inputs, output_names=outputs,
                           tensors_to_rename=renames, initialized_tables=tables, extra_opset=onnx_ops.extra_opsets(),
                           custom_rewriter=list(onnx_ops.REWRITERS), optimizers=onnx_ops.graph_optimizers())
            with tf.device("/cpu:0"):
                try:
                    with _no_graph_copies():
                        model_proto, _ = _convert_common(graph_def, **options)
                except Exception:  # noqa: BLE001 - maybe an optimizer pass: once more, letting tf2onnx skip it
                    if log.unsupported or log.failed:
                        raise
                    model_proto, _ = _convert_common(graph_def, **options)
        except Exception as exc:  # noqa: BLE001 - tf2onnx raises anything from any handler; all mean "not convertible"
            raise OnnxConversionError(log.reason(opset, exc)) from exc
        if log.unsupported:  # tf2onnx keeps unconverted TF nodes and only logs them
            raise OnnxConversionError(log.reason(opset))
    got_in = [i.name for i in model_proto.graph.input]
    got_out = [o.name for o in model_proto.graph.output]
    if sorted(got_in) != sorted(expected_inputs) or sorted(got_out) != sorted(expected_outputs):
        raise OnnxConversionError(
            f"ONNX names differ from the signature: inputs {got_in} vs {expected_inputs}, "
            f"outputs {got_out} vs {expected_outputs}"
        )
    _fill_output_shapes(model_proto)
    _name_batch_dims(model_proto, set(expected_inputs) | set(expected_outputs))
    strings.drop_unused_contrib(model_proto)
    try:
        onnx.checker.check_model(model_proto)
    except onnx.checker.ValidationError as exc:
        raise OnnxConversionError(f"tf2onnx wrote an invalid ONNX model (opset {opset}): "
                                  f"{str(exc).strip().splitlines()[0]}") from exc
    onnx.save(model_proto, str(out_path))
    return Path(out_path)
