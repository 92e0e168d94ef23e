"""Converters for element-wise ops: activations, binary arithmetic and vector-unit ops.

An ``Add`` of a constant bias to a ``linear`` or ``conv`` output is folded into that layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from isosched.io.onnx.common import node_base, numel
from isosched.io.onnx.context import Ctx, acts_of, first_act, generic_node

__all__ = [
    "ACTIVATIONS",
    "BINARY_ADD",
    "BINARY_MUL",
    "VECTOR_COST",
    "activation",
    "binary",
    "fold_bias_into",
    "vector_op",
    "where",
]


ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Gelu": "gelu",
    "Erf": "erf",
    "HardSigmoid": "hardsigmoid",
    "HardSwish": "hardswish",
    "Clip": "clip",
    "LeakyRelu": "leakyrelu",
    "Silu": "silu",
    "Swish": "silu",
    "Elu": "elu",
    "Selu": "selu",
    "Celu": "celu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Mish": "mish",
    "ThresholdedRelu": "thresholdedrelu",
    "PRelu": "prelu",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
    "Neg": "neg",
    "Abs": "abs",
    "Sin": "sin",
    "Cos": "cos",
    "Tan": "tan",
    "Floor": "floor",
    "Ceil": "ceil",
    "Round": "round",
    "Sign": "sign",
    "IsNaN": "isnan",
    "IsInf": "isinf",
    "Not": "not",
    "Shrink": "shrink",
    "QuantizeLinear": "quantize",
    "DequantizeLinear": "dequantize",
}


def activation(ctx: Ctx, node: Any) -> None:
    """Unary element-wise ops as ``activation``."""
    x = first_act(ctx, node)
    kind = ACTIVATIONS.get(node.op_type, node.op_type.lower())
    wel = 0
    if node.op_type == "PRelu" and len(node.input) > 1:
        wel = numel(ctx.full_shape(node.input[1]) or ())
    full = ctx.out_full(node)
    act = ctx.emit(
        node_base(node),
        "activation",
        {"kind": kind},
        [x],
        full,
        kind=node.op_type,
        weight_elems=wel,
    )
    ctx.bind(node.output[0], act)


BINARY_ADD = {"Add", "Sub", "Sum"}


BINARY_MUL = {"Mul", "Div"}


def fold_bias_into(ctx: Ctx, x_name: str, bias: str, out_full: Sequence[int]) -> bool:
    """Give the ``linear`` or ``conv`` layer producing ``x_name`` the constant ``bias``.

    Only when that layer has no bias yet, its output is read once (by this node) and the bias
    has one value per output feature or channel; ``out_full`` must be the producer's shape.
    """
    x = ctx.acts.get(x_name)
    if x is None or ctx.uses[x_name] != 1 or x_name in ctx.graph_outputs:
        return False
    src = ctx.layer_by_id.get(x.layer)
    bshape = ctx.full_shape(bias)
    if src is None or bshape is None or src.get("bias") or tuple(x.full) != tuple(out_full):
        return False
    dims = [d for d in bshape if d != 1]
    if src["op"] == "linear":
        ok = dims == [src["out_features"]] and bshape[-1] == src["out_features"]
    elif src["op"] in ("conv", "conv_transpose"):
        rank = len(x.full)
        ok = (
            dims == [src["out_channels"]]
            and len(bshape) >= rank - 1
            and bshape[-(rank - 1)] == src["out_channels"]
        )
    else:
        return False
    if ok:
        src["bias"] = True
    return ok


def _try_fold_bias(ctx: Ctx, node: Any, x_name: str, other: str) -> bool:
    """Fold ``Add(linear or conv output, constant bias)`` into the producing layer's bias."""
    if node.op_type != "Add":
        return False
    if fold_bias_into(ctx, x_name, other, ctx.out_full(node)):
        ctx.bind(node.output[0], ctx.acts[x_name])
        return True
    return False


def binary(ctx: Ctx, node: Any) -> None:
    """Binary element-wise ops as ``add``/``mul``, or ``activation`` with a constant operand."""
    base = node_base(node)
    full = ctx.out_full(node)
    acts = acts_of(ctx, node)
    op = node.op_type
    if len(acts) == len([i for i in node.input if i]) and len(acts) >= 2:
        ir_op = "add" if op in BINARY_ADD else "mul" if op in BINARY_MUL else None
        if ir_op is None:
            act = ctx.generic(base, op, acts, full)
        else:
            act = ctx.emit(base, ir_op, {}, acts, full, kind=op)
        ctx.bind(node.output[0], act)
        return
    if len(acts) == 1:
        x = acts[0]
        x_name = next(i for i in node.input if ctx.is_act(i))
        others = [i for i in node.input if i and not ctx.is_act(i)]
        if len(others) == 1 and _try_fold_bias(ctx, node, x_name, others[0]):
            return
        act = ctx.emit(base, "activation", {"kind": op.lower()}, [x], full, kind=op)
    else:
        act = ctx.generic(base, op, acts, full)
    ctx.bind(node.output[0], act)


def where(ctx: Ctx, node: Any) -> None:
    """``Where`` as ``activation`` when it reads one activation."""
    acts = acts_of(ctx, node)
    full = ctx.out_full(node)
    if len(acts) == 1:
        act = ctx.emit(node_base(node), "activation", {"kind": "where"}, acts, full, kind="Where")
    else:
        act = ctx.generic(node_base(node), "Where", acts, full)
    ctx.bind(node.output[0], act)


#: Element operations per output element of vector-only ops without an IR op of their own.
VECTOR_COST = {"LRN": 7, "MeanVarianceNormalization": 4, "LpNormalization": 3}


def vector_op(ctx: Ctx, node: Any) -> None:
    """Vector-unit ops with no IR equivalent: ``generic`` with an element-op estimate."""
    full = ctx.out_full(node)
    generic_node(ctx, node, vector_ops=VECTOR_COST.get(node.op_type, 1) * numel(full))
