"""tf2onnx op handlers for TensorFlow ops that Keras 3 graphs use and tf2onnx 1.17 does not convert.

Registered with tf2onnx's own ``@tf_op`` decorator when this module is imported (a registry entry per op and
opset, so importing twice is harmless). Each handler lowers one TensorFlow op to standard ONNX (or ``ai.onnx.ml``)
ops that ONNX Runtime's default build executes:

- ``Erfc`` (exact ``gelu``: ``0.5 * x * erfc(-x / sqrt(2))``) as ``1 - Erf(x)``;
- ``Bitcast`` between integer types of one width (a reinterpretation that ONNX ``Cast`` performs bit for bit);
  the float-to-int ``Bitcast`` of Keras' ``signbit`` is rewritten away earlier (see ``rewriters``);
- ``LookupTableFindV2`` on tables other than string<->int64 (``IntegerLookup``'s int64->int64,
  string->string, int64->float...) as ``ai.onnx.ml.LabelEncoder`` (ml opset 2); string<->int64 tables keep
  tf2onnx's ``CategoryMapper``;
- ``StringLower``/``StringUpper`` as ``StringNormalizer`` in the locale that matches TensorFlow's encoding;
- ``StringSplitV2`` (onnxruntime-extensions' ``StringSplit``) with TensorFlow's whitespace rule for ``sep=''``.
- ``StringToHashBucketFast`` refused (the contrib op hashes differently from TensorFlow).
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto
from tf2onnx import constants, utils
from tf2onnx.custom_opsets.onnx_ml import LookupTableFind as _TfLookupTableFind
from tf2onnx.custom_opsets.string_ops import StringLower as _TfStringLower
from tf2onnx.custom_opsets.string_ops import StringOps as _TfStringSplit
from tf2onnx.handler import tf_op

_INTEGER_WIDTH = {
    TensorProto.INT8: 8, TensorProto.UINT8: 8, TensorProto.INT16: 16, TensorProto.UINT16: 16,
    TensorProto.INT32: 32, TensorProto.UINT32: 32, TensorProto.INT64: 64, TensorProto.UINT64: 64,
}
# LabelEncoder (ai.onnx.ml opset 2) attribute suffix per key/value type
_LABEL_ENCODER_SUFFIX = {TensorProto.INT64: "int64s", TensorProto.STRING: "strings", TensorProto.FLOAT: "floats"}


def _replace_with(ctx, node, op_type: str, inputs: list[str], **kwargs):
    """Swap ``node`` for a new ``op_type`` node that keeps its name, outputs, shapes and dtypes."""
    shapes, dtypes, outputs, name = node.output_shapes, node.output_dtypes, node.output, node.name
    ctx.remove_node(name)
    return ctx.make_node(op_type, inputs, outputs=outputs, name=name, shapes=shapes, dtypes=dtypes, **kwargs)


@tf_op("Erfc")
class Erfc:
    @classmethod
    def version_9(cls, ctx, node, **kwargs):
        x = node.input[0]
        np_dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(x))
        erf = ctx.make_node("Erf", [x], shapes=[ctx.get_shape(x)], dtypes=[ctx.get_dtype(x)])
        one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=np_dtype))
        _replace_with(ctx, node, "Sub", [one.output[0], erf.output[0]])


@tf_op("Bitcast")
class Bitcast:
    @classmethod
    def version_1(cls, ctx, node, **kwargs):
        src, dst = ctx.get_dtype(node.input[0]), ctx.get_dtype(node.output[0])
        width = _INTEGER_WIDTH.get(src)
        utils.make_sure(
            width is not None and width == _INTEGER_WIDTH.get(dst),
            "Bitcast from %s to %s has no ONNX equivalent (only integer types of one width are reinterpreted)",
            TensorProto.DataType.Name(src), TensorProto.DataType.Name(dst))
        _replace_with(ctx, node, "Cast", [node.input[0]], attr={"to": dst})


@tf_op("LookupTableFindV2")
class LookupTableFind:
    @classmethod
    def version_8(cls, ctx, node, initialized_tables, **kwargs):
        key_type, value_type = ctx.get_dtype(node.input[1]), ctx.get_dtype(node.output[0])
        if {key_type, value_type} == {TensorProto.STRING, TensorProto.INT64}:
            return _TfLookupTableFind.version_8(ctx, node, initialized_tables=initialized_tables, **kwargs)
        table_node = node.inputs[0]
        while table_node.type == "Identity":
            table_node = table_node.inputs[0]
        shared_name = table_node.get_attr_value("shared_name")
        utils.make_sure(shared_name in initialized_tables, "lookup table %s of %s is not initialized from constants",
                        shared_name, node.name)
        enc_key, enc_value = _encoder_type(key_type), _encoder_type(value_type)
        utils.make_sure(enc_key is not None and enc_value is not None,
                        "lookup table %s -> %s has no ONNX LabelEncoder form", TensorProto.DataType.Name(key_type),
                        TensorProto.DataType.Name(value_type))
        default = node.inputs[2]
        utils.make_sure(default.is_const(), "the default value of table lookup %s must be a constant", node.name)
        keys, values = initialized_tables[shared_name]
        key_suffix, value_suffix = _LABEL_ENCODER_SUFFIX[enc_key], _LABEL_ENCODER_SUFFIX[enc_value]
        attr = {f"keys_{key_suffix}": _as_attr(keys, enc_key), f"values_{value_suffix}": _as_attr(values, enc_value),
                f"default_{value_suffix[:-1]}": _as_attr([default.get_tensor_value(as_list=True)], enc_value)[0]}
        keys_in = node.input[1]
        if key_type != enc_key:
            keys_in = ctx.make_node("Cast", [keys_in], attr={"to": enc_key}).output[0]
        if value_type == enc_value:
            _replace_with(ctx, node, "LabelEncoder", [keys_in], attr=attr, domain=constants.AI_ONNX_ML_DOMAIN)
        else:
            shape = node.output_shapes[0]
            encoded = ctx.make_node("LabelEncoder", [keys_in], attr=attr, domain=constants.AI_ONNX_ML_DOMAIN,
                                    shapes=[shape], dtypes=[enc_value])
            _replace_with(ctx, node, "Cast", [encoded.output[0]], attr={"to": value_type})
        if not ctx.find_output_consumers(table_node.output[0]):
            ctx.remove_node(table_node.name)


def _encoder_type(onnx_type: int) -> int | None:
    """The LabelEncoder type that carries ``onnx_type`` exactly (integers widen to int64, float stays float)."""
    if onnx_type in _INTEGER_WIDTH and onnx_type != TensorProto.UINT64:
        return TensorProto.INT64
    return onnx_type if onnx_type in (TensorProto.STRING, TensorProto.FLOAT) else None


def _as_attr(items, onnx_type: int) -> list:
    """Table keys/values as the Python values an ONNX attribute of that type holds."""
    if onnx_type == TensorProto.STRING:
        return [v if isinstance(v, bytes) else str(v).encode() for v in items]
    if onnx_type == TensorProto.FLOAT:
        return [float(v) for v in items]
    return [int(v) for v in items]


@tf_op(["StringLower", "StringUpper"])
class StringCase:
    """tf2onnx's ``StringNormalizer`` with the locale TensorFlow's op actually uses.

    ``tf.strings.lower`` with the default ``encoding=''`` (what ``TextVectorization`` calls) changes ASCII letters
    only, which is ``StringNormalizer`` in the always-present "C" locale; tf2onnx's fixed ``en_US.UTF-8`` fails to
    load on hosts without that locale installed (most containers) and would also change non-ASCII letters.
    """

    @classmethod
    def version_10(cls, ctx, node, **kwargs):
        encoding = node.get_attr_value("encoding", b"") or b""
        _TfStringLower.version_10(ctx, node, **kwargs)
        if not encoding:
            node.set_attr("locale", "C")


# absl::ascii_isspace, what StringSplitV2 with an empty separator splits on
_ASCII_WHITESPACE = " \t\n\v\f\r"


@tf_op("StringSplitV2", domain=constants.CONTRIB_OPS_DOMAIN)
class StringSplitV2:
    """``tf.strings.split`` as ``ai.onnx.contrib.StringSplit``, whose delimiter is a set of characters.

    TensorFlow's empty separator (the default, ``TextVectorization``'s ``split="whitespace"``) splits on runs of
    ASCII whitespace and drops empty tokens: the whitespace characters as the set, with ``skip_empty``. tf2onnx
    passes the empty string through, which splits into single characters. A one-character separator keeps
    empty tokens (tf2onnx's mapping); a longer one is a substring in TensorFlow but a set here, so it is refused.
    """

    @classmethod
    def version_1(cls, ctx, node, **kwargs):
        sep_node = node.inputs[1]
        utils.make_sure(sep_node.is_const(), "StringSplitV2 %s needs a constant separator", node.name)
        utils.make_sure(node.get_attr_value("maxsplit", -1) == -1, "StringSplitV2 %s with maxsplit is not supported",
                        node.name)
        sep = sep_node.get_tensor_value()
        sep = sep.decode() if isinstance(sep, bytes) else str(sep)
        if sep:
            utils.make_sure(len(sep) == 1, "StringSplitV2 %s: a multi-character separator %r is not supported",
                            node.name, sep)
            return _TfStringSplit.version_1(ctx, node, **kwargs)
        node.type = "StringSplit"
        node.domain = constants.CONTRIB_OPS_DOMAIN
        for name in list(node.attr.keys()):
            del node.attr[name]
        delimiter = ctx.make_const(utils.make_name("whitespace"), np.array([_ASCII_WHITESPACE], object))
        skip_empty = ctx.make_const(utils.make_name("skip_empty"), np.array([True], bool))
        ctx.replace_inputs(node, [node.input[0], delimiter.output[0], skip_empty.output[0]])


@tf_op("StringToHashBucketFast", domain=constants.CONTRIB_OPS_DOMAIN)
class StringToHashBucketFast:
    """Refused: onnxruntime-extensions' op of that name does not compute TensorFlow's buckets (measured on
    ``keras.layers.Hashing``: every bucket differed), and a wrong model must not reach the parity gate's luck."""

    @classmethod
    def version_1(cls, ctx, node, **kwargs):
        utils.make_sure(False, "StringToHashBucketFast (keras.layers.Hashing): onnxruntime-extensions' version "
                        "does not compute TensorFlow's Fingerprint64 buckets")
