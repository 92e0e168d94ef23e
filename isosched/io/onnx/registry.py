"""The converter registry: which converter handles which ONNX op type.

Ops without a converter become ``generic`` layers with an :class:`UnknownOpWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any

from isosched.io.onnx.common import node_label
from isosched.io.onnx.context import Converter, Ctx, generic_node
from isosched.io.onnx.convert_contrib import CONTRIB_CONVERTERS
from isosched.io.onnx.convert_control import CONTROL_CONVERTERS
from isosched.io.onnx.convert_conv import conv_like, conv_transpose, pool
from isosched.io.onnx.convert_elementwise import (
    ACTIVATIONS,
    BINARY_ADD,
    BINARY_MUL,
    VECTOR_COST,
    activation,
    binary,
    vector_op,
    where,
)
from isosched.io.onnx.convert_linear import attention, einsum, gemm, matmul_like, rnn
from isosched.io.onnx.convert_norm import NORM_KIND, norm, reduce, softmax
from isosched.io.onnx.convert_shape import (
    concat,
    expand_like,
    gather,
    identity,
    reshape_like,
    resize,
    shape_of,
    slice_,
    split,
    static_of,
    transpose,
)

__all__ = ["CONTRIB_CONVERTERS", "CONVERTERS", "UnknownOpWarning", "converter_for", "mark_unknown"]


class UnknownOpWarning(UserWarning):
    """An ONNX operator has no converter and was imported as a ``generic`` layer."""


def mark_unknown(ctx: Ctx, node: Any) -> None:
    """An op without converter: ``generic`` layer, warned about once per op type."""
    key = f"{node.domain + '::' if node.domain else ''}{node.op_type}"
    ctx.unmapped[key] += 1
    if key not in ctx.warned:
        ctx.warned.add(key)
        warnings.warn(
            f"ONNX op {key} has no converter; imported as a generic layer with unknown work "
            f"(0 MACs counted; first at {node_label(node)})",
            UnknownOpWarning,
            stacklevel=4,
        )
    ctx.flag_compute(f"{key} has no converter: its work is unknown (0 MACs counted)")
    generic_node(ctx, node)


def converter_for(node: Any) -> Converter | None:
    """The converter of a node's op in its domain, if there is one."""
    if node.domain in ("", "ai.onnx"):
        return CONVERTERS.get(node.op_type) or CONTROL_CONVERTERS.get(node.op_type)
    if node.domain == "com.microsoft":
        return CONTRIB_CONVERTERS.get(node.op_type)
    return None


_GENERIC_VECTOR = frozenset(
    [
        "Pow",
        "Max",
        "Min",
        "Mean",
        "Mod",
        "And",
        "Or",
        "Xor",
        "Equal",
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
        "BitShift",
    ]
)


_REDUCE_OPS = [
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    "ArgMax",
    "ArgMin",
]


#: Converter per ONNX op type (default domain).
CONVERTERS: dict[str, Converter] = {
    "Conv": conv_like(0, 1, 2),
    "ConvInteger": conv_like(0, 1, None),
    "QLinearConv": conv_like(0, 3, 8),
    "ConvTranspose": conv_transpose,
    "Gemm": gemm,
    "MatMul": matmul_like(0, 1),
    "MatMulInteger": matmul_like(0, 1),
    "QLinearMatMul": matmul_like(0, 3),
    "Einsum": einsum,
    "LSTM": rnn,
    "GRU": rnn,
    "RNN": rnn,
    "Attention": attention,
    **dict.fromkeys(ACTIVATIONS, activation),
    **dict.fromkeys(BINARY_ADD | BINARY_MUL | _GENERIC_VECTOR, binary),
    "Where": where,
    "Softmax": softmax,
    "LogSoftmax": softmax,
    "Hardmax": softmax,
    **dict.fromkeys(NORM_KIND, norm),
    "MaxPool": pool,
    "AveragePool": pool,
    "GlobalAveragePool": pool,
    "GlobalMaxPool": pool,
    **dict.fromkeys(_REDUCE_OPS, reduce),
    "Concat": concat,
    "Split": split,
    "Slice": slice_,
    "Gather": gather,
    "Resize": resize,
    "Upsample": resize,
    **dict.fromkeys(
        ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "DepthToSpace", "SpaceToDepth"],
        reshape_like,
    ),
    "Transpose": transpose,
    **dict.fromkeys(["Identity", "Dropout", "Cast", "CastLike"], identity),
    **dict.fromkeys(["Expand", "Tile", "Pad"], expand_like),
    **dict.fromkeys(VECTOR_COST, vector_op),
    "Shape": shape_of,
    "Size": shape_of,
    **dict.fromkeys(["EyeLike", "RandomNormalLike", "RandomUniformLike"], static_of),
}
