"""tf2onnx graph rewriters (run on the TensorFlow-typed graph, before the op handlers) for Keras 3 idioms.

``keras.ops.signbit`` on the TF backend reads the sign bit through the float's bits,
``Less(BitwiseAnd(Bitcast<int>(x), INT_MIN), 0)``, and ``argmax``/``argmin`` of floats use it to order
``-0.0`` before ``0.0``. ONNX has no float-to-int bitcast, but the sign bit is also what decides
``x < 0 or 1 / x < 0`` (``1 / -0.0 = -inf``), so the pattern becomes that: exact for every value but NaN, whose
sign bit ONNX cannot read (a NaN then counts as non-negative).
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto
from tf2onnx import utils
from tf2onnx.graph_matcher import GraphMatcher, OpTypePattern

_FLOAT_TO_INT = {TensorProto.FLOAT16: np.int16, TensorProto.BFLOAT16: np.int16,
                 TensorProto.FLOAT: np.int32, TensorProto.DOUBLE: np.int64}


def _sign_bit_patterns() -> list[OpTypePattern]:
    masked = OpTypePattern("BitwiseAnd", name="and", inputs=[
        OpTypePattern("Bitcast", name="bitcast", inputs=[OpTypePattern("*", name="x")]),
        OpTypePattern("Const", name="mask"),
    ])
    return [OpTypePattern(op, name="test", inputs=[masked, OpTypePattern("Const", name="zero")])
            for op in ("Less", "NotEqual")]


def _is_sign_test(match, g) -> bool:
    int_type = _FLOAT_TO_INT.get(g.get_dtype(match.get_tensor("x")))
    if int_type is None or g.get_dtype(match.get_op("bitcast").output[0]) != utils.map_numpy_to_onnx_dtype(int_type):
        return False
    mask = match.get_op("mask").get_tensor_value(as_list=False)
    zero = match.get_op("zero").get_tensor_value(as_list=False)
    return mask.size == 1 and int(mask.flat[0]) == int(np.iinfo(int_type).min) and zero.size == 1 and not zero.any()


def rewrite_sign_bit(g, ops):
    """Replace the bit-level sign test of a float tensor by ``Or(Less(x, 0), Less(Reciprocal(x), 0))``."""
    for pattern in _sign_bit_patterns():
        for match in list(GraphMatcher(pattern, allow_reorder=True).match_ops(ops)):
            if not _is_sign_test(match, g):
                continue
            x, test = match.get_tensor("x"), match.get_op("test")
            shape, dtype = g.get_shape(x), g.get_dtype(x)
            zero = g.make_const(utils.make_name("sign_zero"), np.zeros((), utils.map_onnx_to_numpy_type(dtype)))
            negative = g.make_node("Less", [x, zero.output[0]], shapes=[shape], dtypes=[TensorProto.BOOL])
            inverse = g.make_node("Reciprocal", [x], shapes=[shape], dtypes=[dtype])
            negative_inverse = g.make_node("Less", [inverse.output[0], zero.output[0]], shapes=[shape],
                                           dtypes=[TensorProto.BOOL])
            sign = g.make_node("Or", [negative.output[0], negative_inverse.output[0]], shapes=[shape],
                               dtypes=[TensorProto.BOOL])
            ops.extend([zero, negative, inverse, negative_inverse, sign])
            g.replace_all_inputs(test.output[0], sign.output[0], ops=ops)
            g.safe_remove_nodes([test, match.get_op("and"), match.get_op("bitcast")])
            ops = [op for op in ops if g.get_node_by_name(op.name) is not None]
    return ops


REWRITERS = [rewrite_sign_bit]
