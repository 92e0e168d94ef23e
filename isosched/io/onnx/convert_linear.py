"""Converters for matrix-multiply ops: ``Gemm``, ``MatMul``, ``Einsum``, RNNs and attention."""

from __future__ import annotations

from typing import Any

from isosched.io.onnx.common import Act, Shape, attrs, node_base, numel, str_attr
from isosched.io.onnx.context import Converter, Ctx, acts_of, generic_node

__all__ = ["attention", "einsum", "gemm", "matmul_like", "rnn"]


def tied_matmul(
    ctx: Ctx,
    base: str,
    x: Act,
    owner: str,
    wshape: Shape,
    full: Shape,
    *,
    transpose_b: bool,
    kind: str,
    macs: int,
) -> Act:
    """A product with a weight an earlier layer holds (tied weights), counted once.

    As in the zoo's GPT-2: the weight enters through a zero-work ``generic`` layer of kind
    ``tied_weight`` that reads the owning layer and holds no parameters, and the product is a
    ``matmul`` of two activations.
    """
    ctx.note(f"{base}: weight tied to layer {owner!r}, counted there once")
    table = ctx.generic(
        f"{base}_tied_weight", "tied_weight", [Act(owner, (), ())], wshape, vector_ops=0
    )
    return ctx.emit(
        base,
        "matmul",
        {"transpose_b": transpose_b},
        [x, table],
        full,
        kind=kind,
        macs=macs,
    )


def gemm(ctx: Ctx, node: Any) -> None:
    """``Gemm`` as ``linear`` (constant ``B``) or ``matmul`` (two activations)."""
    base, a = node_base(node), attrs(node)
    full = ctx.out_full(node)
    ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
    an, bn = node.input[0], node.input[1]
    cn = node.input[2] if len(node.input) > 2 else ""
    ashape, bshape = ctx.full_shape(an), ctx.full_shape(bn)
    k = (ashape[0] if ta else ashape[-1]) if ashape else 0
    macs = numel(full) * k
    owner = ctx.tied(bn) if not ctx.is_act(bn) else None
    if ctx.is_act(an) and owner is not None and not ta and bshape and len(bshape) == 2:
        act = tied_matmul(
            ctx,
            base,
            ctx.acts[an],
            owner,
            bshape,
            full,
            transpose_b=bool(tb),
            kind="Gemm",
            macs=macs,
        )
    elif ctx.is_act(an) and not ctx.is_act(bn) and not ta and bshape and len(bshape) == 2:
        n = bshape[0] if tb else bshape[1]
        bias = bool(cn) and not ctx.is_act(cn)
        wel = numel(bshape) + (n if bias else 0)
        inputs = [ctx.acts[an]]
        why = None
        if ctx.is_act(cn):
            inputs.append(ctx.acts[cn])
            why = "bias computed at run time"
        act = ctx.emit(
            base,
            "linear",
            {"out_features": int(n), "bias": bias},
            inputs,
            full,
            kind="Gemm",
            macs=macs,
            weight_elems=wel,
            why=why,
        )
        ctx.own_weight(bn, act.layer)
    elif ctx.is_act(an) and ctx.is_act(bn) and not ta:
        inputs = [ctx.acts[an], ctx.acts[bn]] + ([ctx.acts[cn]] if ctx.is_act(cn) else [])
        act = ctx.emit(
            base,
            "matmul",
            {"transpose_b": bool(tb)},
            inputs,
            full,
            kind="Gemm",
            macs=macs,
            why="bias computed at run time" if ctx.is_act(cn) else None,
        )
    else:
        act = ctx.generic(base, "Gemm", acts_of(ctx, node), full, macs=macs)
    ctx.bind(node.output[0], act)


def matmul_like(ai: int, bi: int) -> Converter:
    """Converter for a matrix multiply with operands at these positions."""

    def convert(ctx: Ctx, node: Any) -> None:
        _matmul(ctx, node, ai, bi)

    return convert


def _matmul(ctx: Ctx, node: Any, ai: int, bi: int) -> None:
    base = node_base(node)
    full = ctx.out_full(node)
    an, bn = node.input[ai], node.input[bi]
    ashape, bshape = ctx.full_shape(an), ctx.full_shape(bn)
    k = ashape[-1] if ashape else 0
    macs = numel(full) * k
    if k == 0:
        ctx.flag_compute(f"{node.op_type} operand shape unknown: MACs not counted")
    owner = ctx.tied(bn) if not ctx.is_act(bn) else None
    if ctx.is_act(an) and owner is not None and bshape is not None and len(bshape) == 2:
        act = tied_matmul(
            ctx,
            base,
            ctx.acts[an],
            owner,
            bshape,
            full,
            transpose_b=False,
            kind=node.op_type,
            macs=macs,
        )
    elif ctx.is_act(an) and not ctx.is_act(bn) and bshape is not None and len(bshape) == 2:
        act = ctx.emit(
            base,
            "linear",
            {"out_features": int(bshape[1])},
            [ctx.acts[an]],
            full,
            kind=node.op_type,
            macs=macs,
            weight_elems=numel(bshape),
        )
        ctx.own_weight(bn, act.layer)
    elif ctx.is_act(an) and ctx.is_act(bn):
        act = ctx.emit(
            base,
            "matmul",
            {},
            [ctx.acts[an], ctx.acts[bn]],
            full,
            kind=node.op_type,
            macs=macs,
        )
    else:
        wel = numel(bshape) if bshape and not ctx.is_act(bn) else 0
        if ashape and not ctx.is_act(an):
            wel += numel(ashape)
        act = ctx.generic(base, node.op_type, acts_of(ctx, node), full, macs=macs, weight_elems=wel)
        ctx.note(f"{act.layer}: {node.op_type} with a constant left operand or a batched weight")
    ctx.bind(node.output[0], act)


def einsum(ctx: Ctx, node: Any) -> None:
    """``Einsum`` as ``generic`` with its MACs."""
    eq = str_attr(attrs(node).get("equation"), "").replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, name in zip(lhs, node.input, strict=False):
        shape = ctx.full_shape(name)
        letters = [c for c in term if c.isalpha()]
        if shape is None or "..." in term or len(letters) != len(shape):
            continue
        for c, d in zip(letters, shape, strict=True):
            sizes[c] = max(sizes.get(c, 1), int(d))
    macs = numel(sizes.values()) if len(lhs) > 1 else 0
    generic_node(ctx, node, macs=macs)


def rnn(ctx: Ctx, node: Any) -> None:
    """``LSTM``, ``GRU`` and ``RNN`` as ``generic`` with their MACs and weights."""
    a = attrs(node)
    x, w, r = (ctx.full_shape(n) for n in node.input[:3])
    macs = 0
    if x and w and r:
        layout = int(a.get("layout", 0))
        seq, batch = (x[0], x[1]) if layout == 0 else (x[1], x[0])
        macs = seq * batch * w[0] * w[1] * (w[2] + r[2])
    wel = sum(numel(s) for s in (w, r) if s)
    generic_node(ctx, node, macs=macs, weight_elems=wel)


def attention(ctx: Ctx, node: Any) -> None:
    """ONNX ``Attention`` (opset 23): q, k, v as ``[B, S, H*d]`` or ``[B, H, S, d]``."""
    a = attrs(node)
    base = node_base(node)
    full = ctx.out_full(node)
    q, k, v = [ctx.full_shape(n) if n else None for n in [*node.input[:3], "", "", ""][:3]]
    macs = 0
    heads = int(a.get("q_num_heads", 0))
    if q and k and v:
        if len(q) == 4:
            heads = q[1]
            macs = q[0] * q[1] * q[2] * k[2] * (q[3] + v[3])
        elif len(q) == 3 and heads:
            kv_heads = int(a.get("kv_num_heads", heads))
            macs = q[0] * heads * q[1] * k[1] * (k[2] + v[2]) // max(kv_heads, 1)
    inputs = [ctx.acts[n] for n in node.input[:3] if ctx.is_act(n)]
    why = None
    if q is None or len(q) != 3 or len(inputs) != 3 or not heads or any(node.input[3:]):
        why = "layout, mask or cache not expressible as the IR attention op"
    act = ctx.emit(
        base,
        "attention",
        {"heads": max(heads, 1), "causal": bool(a.get("is_causal", 0))},
        inputs,
        full,
        kind="Attention",
        macs=macs,
        why=why,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)
