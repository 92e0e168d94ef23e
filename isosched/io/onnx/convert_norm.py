"""Converters for normalisations and reductions: softmax, ``*Normalization``, ``Reduce*``."""

from __future__ import annotations

from typing import Any

from isosched.graph.ops import SOFTMAX_OPS
from isosched.io.onnx.common import attrs, drop_batch, ints, neg_axis, node_base, numel
from isosched.io.onnx.context import Ctx, first_act

__all__ = ["NORM_KIND", "norm", "reduce", "softmax"]


def softmax(ctx: Ctx, node: Any) -> None:
    """``Softmax``, ``LogSoftmax`` and ``Hardmax`` as ``softmax``."""
    x = first_act(ctx, node)
    a = attrs(node)
    default = -1 if ctx.opsets.get("ai.onnx", 13) >= 13 else 1
    axis = neg_axis(int(a.get("axis", default)), len(x.full))
    full = ctx.out_full(node)
    # over the batch axis (which the IR drops) the rule refuses the axis: a generic layer with
    # the same work stands in, and the import notes it
    act = ctx.emit(
        node_base(node),
        "softmax",
        {"axis": axis},
        [x],
        full,
        kind=node.op_type,
        vector_ops=SOFTMAX_OPS * numel(drop_batch(full)),
    )
    ctx.bind(node.output[0], act)


NORM_KIND = {
    "BatchNormalization": "batch",
    "InstanceNormalization": "instance",
    "GroupNormalization": "group",
    "LayerNormalization": "layer",
    "RMSNormalization": "rms",
    "SimplifiedLayerNormalization": "rms",
    "SkipSimplifiedLayerNormalization": "rms",
}


def norm(ctx: Ctx, node: Any) -> None:
    """The ``*Normalization`` ops as ``norm``."""
    x = first_act(ctx, node)
    kind = NORM_KIND[node.op_type]
    rank = len(x.full)
    if kind in ("batch", "instance", "group"):
        axis = neg_axis(1, rank) if rank >= 2 else -1
    else:
        axis = neg_axis(int(attrs(node).get("axis", -1)), rank)
    base = node_base(node)
    act = ctx.emit(
        base,
        "norm",
        {"kind": kind, "axis": axis},
        [x],
        ctx.out_full(node),
        kind=node.op_type,
        vector_ops=4 * numel(x.full),
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def reduce(ctx: Ctx, node: Any) -> None:
    """Spatial ``ReduceMean``/``ReduceMax`` as a global ``pool``; other reductions ``generic``."""
    x = first_act(ctx, node)
    a, base, full = attrs(node), node_base(node), ctx.out_full(node)
    axes: list[int] | None = None
    if "axes" in a:
        axes = ints(a["axes"], [])
    elif len(node.input) > 1 and node.input[1]:
        value = ctx.const(node.input[1])
        axes = [int(v) for v in value.ravel()] if value is not None else None
    rank = len(x.full)
    norm_axes = sorted(ax + rank if ax < 0 else ax for ax in axes) if axes is not None else None
    kind = {"ReduceMean": "avg", "ReduceMax": "max"}.get(node.op_type)
    if kind and rank == 4 and norm_axes == [2, 3] and x.full[0] == 1:
        pooled = (x.full[0], x.full[1], 1, 1)
        act = ctx.emit(base, "pool", {"kind": kind, "global": True}, [x], pooled, kind=node.op_type)
        if tuple(full) != pooled:
            act = ctx.emit(
                f"{base}_squeeze",
                "reshape",
                {"shape": list(drop_batch(full))},
                [act],
                full,
                kind="Squeeze",
            )
    else:
        act = ctx.generic(base, node.op_type, [x], full, vector_ops=numel(x.full))
    ctx.bind(node.output[0], act)
