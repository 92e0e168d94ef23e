"""Converters for layout ops: concat, split, slice, gather, resize, reshape and the like.

``Shape`` and ``Size`` of an activation become constants, since shapes are static here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from isosched.io.onnx.common import (
    Act,
    Shape,
    attrs,
    drop_batch,
    ints,
    neg_axis,
    node_base,
    numel,
    str_attr,
)
from isosched.io.onnx.context import Ctx, acts_of, first_act

__all__ = [
    "concat",
    "expand_like",
    "gather",
    "identity",
    "reshape_like",
    "resize",
    "shape_of",
    "slice_",
    "split",
    "static_of",
    "transpose",
]


def concat(ctx: Ctx, node: Any) -> None:
    """``Concat`` as ``concat``."""
    acts = acts_of(ctx, node)
    full = ctx.out_full(node)
    rank = len(full)
    axis = neg_axis(int(attrs(node).get("axis", 0)), rank)
    nonempty = [i for i in node.input if i and numel(ctx.full_shape(i) or (1,)) > 0]
    why = None if len(acts) == len(nonempty) else "constant operands"
    act = ctx.emit(
        node_base(node),
        "concat",
        {"axis": axis},
        acts,
        full,
        kind="Concat",
        vector_ops=0,
        why=why,
    )
    ctx.bind(node.output[0], act)


def split(ctx: Ctx, node: Any) -> None:
    """``Split`` as one ``split`` layer per output."""
    x = first_act(ctx, node)
    a, base = attrs(node), node_base(node)
    rank = len(x.full)
    axis = int(a.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    start = 0
    for k, out in enumerate(node.output):
        full = ctx.out_full(node, k)
        size = int(full[axis]) if 0 <= axis < len(full) else 0
        if out:
            act = ctx.emit(
                f"{base}_{k}",
                "split",
                {"axis": neg_axis(axis, rank), "start": start, "size": size},
                [x],
                full,
                kind="Split",
                vector_ops=0,
            )
            ctx.bind(out, act)
        start += size


def _slices(
    ctx: Ctx,
    node: Any,
    x: Act,
    cuts: Sequence[tuple[int, int, int] | tuple[int, int, int, int]],
    full: Shape,
    kind: str,
) -> Act:
    """Chain one ``split`` layer per cut ``(axis, start, size[, step])``; the last yields ``full``.

    Cuts that keep a whole axis are skipped; with none left, ``x`` itself is returned.
    """
    base = node_base(node)
    cur = x
    shape = list(x.full)
    cuts = [c for c in cuts if not (c[1] == 0 and c[2] == x.full[c[0]])]
    for n, cut in enumerate(cuts):
        axis, start, size = cut[0], cut[1], cut[2]
        step = cut[3] if len(cut) > 3 else 1
        shape[axis] = size
        step_full = tuple(shape) if n < len(cuts) - 1 else full
        params: dict[str, Any] = {"axis": neg_axis(axis, len(shape)), "start": start, "size": size}
        if step != 1:
            params["step"] = step
        cur = ctx.emit(
            base if n == 0 else f"{base}_{n + 1}",
            "split",
            params,
            [cur],
            step_full,
            kind=kind,
            vector_ops=0,
        )
    return cur


def slice_(ctx: Ctx, node: Any) -> None:
    """``Slice`` as a chain of ``split`` layers."""
    x = first_act(ctx, node)
    full = ctx.out_full(node)
    a = attrs(node)
    rank = len(x.full)
    if ctx.opsets.get("ai.onnx", 13) < 10:
        starts, ends = ints(a.get("starts"), []), ints(a.get("ends"), [])
        axes = ints(a.get("axes"), range(len(starts)))
        steps = [1] * len(starts)
    else:
        vals = [ctx.const(n) if n else None for n in list(node.input[1:5]) + [""] * 4][:4]
        if (
            vals[0] is None
            or vals[1] is None
            or any(n and v is None for n, v in zip(node.input[3:5], vals[2:], strict=False))
        ):
            act = ctx.generic(node_base(node), "Slice", [x], full, vector_ops=0)
            ctx.note(f"{act.layer}: Slice with run-time bounds")
            ctx.bind(node.output[0], act)
            return
        starts = [int(v) for v in np.asarray(vals[0]).ravel()]
        ends = [int(v) for v in np.asarray(vals[1]).ravel()]
        axes = (
            [int(v) for v in np.asarray(vals[2]).ravel()]
            if vals[2] is not None
            else list(range(len(starts)))
        )
        steps = (
            [int(v) for v in np.asarray(vals[3]).ravel()]
            if vals[3] is not None
            else [1] * len(starts)
        )
    cuts: list[tuple[int, int, int, int]] = []
    ok = True
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=False):
        ax = ax + rank if ax < 0 else ax
        if not 0 <= ax < rank or st == 0:
            ok = False
            break
        lo, hi, step = slice(s, e, st).indices(x.full[ax])
        size = len(range(lo, hi, step))
        if size == x.full[ax] and step == 1:
            continue
        if step < 1 or size <= 0:
            ok = False
            break
        cuts.append((ax, lo, size, step))
    if not ok:
        act = ctx.generic(node_base(node), "Slice", [x], full, vector_ops=0)
        ctx.note(f"{act.layer}: reversed or empty slice")
    elif not cuts:
        act = ctx.emit(node_base(node), "identity", {}, [x], full, kind="Slice")
    else:
        act = _slices(ctx, node, x, cuts, full, "Slice")
    ctx.bind(node.output[0], act)


def gather(ctx: Ctx, node: Any) -> None:
    """``Gather`` as ``embedding`` (constant table) or as a slice (constant contiguous indices)."""
    base, full = node_base(node), ctx.out_full(node)
    dn, idx = node.input[0], node.input[1]
    axis = int(attrs(node).get("axis", 0))
    if not ctx.is_act(dn) and ctx.is_act(idx):
        table = ctx.full_shape(dn)
        owner = ctx.tied(dn)
        if table is not None and owner is not None:
            ctx.note(f"{base}: table tied to layer {owner!r}, counted there once")
            act = ctx.generic(base, "Gather", [ctx.acts[idx], Act(owner, (), ())], full)
        elif table is not None and len(table) == 2 and axis in (0, -2):
            act = ctx.emit(
                base,
                "embedding",
                {"num_embeddings": int(table[0]), "dim": int(table[1])},
                [ctx.acts[idx]],
                full,
                kind="Gather",
                weight_elems=numel(table),
            )
            ctx.own_weight(dn, act.layer)
        else:
            act = ctx.generic(base, "Gather", [ctx.acts[idx]], full)
        ctx.bind(node.output[0], act)
        return
    x = ctx.acts.get(dn)
    index = ctx.const(idx)
    if x is not None and index is not None and index.size >= 1:
        rank = len(x.full)
        ax = axis + rank if axis < 0 else axis
        flat = [int(v) + (x.full[ax] if int(v) < 0 else 0) for v in index.ravel()]
        contiguous = flat == list(range(flat[0], flat[0] + len(flat)))
        if 0 <= ax < rank and contiguous and 0 <= flat[0] < x.full[ax]:
            sliced = list(x.full)
            sliced[ax] = len(flat)
            if index.ndim == 1 and tuple(sliced) == tuple(full):
                act = _slices(ctx, node, x, [(ax, flat[0], len(flat))], full, "Gather")
            else:
                part = _slices(ctx, node, x, [(ax, flat[0], len(flat))], tuple(sliced), "Gather")
                act = ctx.emit(
                    f"{base}_reshape",
                    "reshape",
                    {"shape": list(drop_batch(full))},
                    [part],
                    full,
                    kind="Gather",
                    fallback="reshape",
                )
            ctx.bind(node.output[0], act)
            return
    act = ctx.generic(base, node.op_type, acts_of(ctx, node), full, vector_ops=0)
    ctx.note(f"{act.layer}: {node.op_type} not expressible as embedding or slice")
    ctx.bind(node.output[0], act)


def resize(ctx: Ctx, node: Any) -> None:
    """``Resize`` and ``Upsample`` as ``resize``."""
    x = first_act(ctx, node)
    full = ctx.out_full(node)
    mode = str_attr(attrs(node).get("mode"), "nearest")[:32]
    why = None
    params: dict[str, Any] = {"mode": mode}
    if len(full) != 4 or len(x.full) != 4 or full[:2] != x.full[:2]:
        why = "not a 2-d spatial resize"
    else:
        params["size"] = [int(full[2]), int(full[3])]
    act = ctx.emit(node_base(node), "resize", params, [x], full, kind=node.op_type, why=why)
    ctx.bind(node.output[0], act)


def reshape_like(ctx: Ctx, node: Any) -> None:
    """``Reshape``, ``Flatten``, ``Squeeze`` and the like as ``reshape`` or ``flatten``."""
    x = first_act(ctx, node)
    full = ctx.out_full(node)
    base = node_base(node)
    if node.op_type == "Flatten" and len(x.full) >= 2 and x.full[0] == 1:
        axis = int(attrs(node).get("axis", 1))
        axis = axis + len(x.full) if axis < 0 else axis
        if axis >= 1 and len(x.ir) == len(x.full) - 1:
            act = ctx.emit(
                base,
                "flatten",
                {"start": axis - 1},
                [x],
                full,
                kind="Flatten",
                fallback="reshape",
            )
            ctx.bind(node.output[0], act)
            return
    act = ctx.emit(
        base,
        "reshape",
        {"shape": list(drop_batch(full))},
        [x],
        full,
        kind=node.op_type,
        vector_ops=0,
    )
    ctx.bind(node.output[0], act)


def transpose(ctx: Ctx, node: Any) -> None:
    """``Transpose`` as ``transpose``."""
    x = first_act(ctx, node)
    full = ctx.out_full(node)
    rank = len(x.full)
    perm = ints(attrs(node).get("perm"), list(range(rank - 1, -1, -1)))
    dropped = len(x.ir) == rank - 1 and len(drop_batch(full)) == rank - 1
    if dropped and perm and perm[0] == 0:
        ir_perm = [p - 1 for p in perm[1:]]
    elif len(x.ir) == rank:
        ir_perm = perm
    else:
        ir_perm = []
    act = ctx.emit(
        node_base(node),
        "transpose",
        {"perm": ir_perm},
        [x],
        full,
        kind="Transpose",
        fallback="reshape",
        why=None if ir_perm else "permutes the batch dimension",
    )
    ctx.bind(node.output[0], act)


def identity(ctx: Ctx, node: Any) -> None:
    """``Identity``, ``Dropout`` and casts as ``identity``."""
    x = first_act(ctx, node)
    base = node_base(node)
    act = ctx.emit(base, "identity", {}, [x], ctx.out_full(node), kind=node.op_type)
    ctx.bind(node.output[0], act)
    for out in node.output[1:]:  # Dropout's mask: not an activation at inference
        if out:
            ctx.statics.add(out)


def expand_like(ctx: Ctx, node: Any) -> None:
    """``Expand``, ``Tile`` and ``Pad`` as ``identity`` when shape-preserving, else ``generic``."""
    x = first_act(ctx, node)
    full = ctx.out_full(node)
    base = node_base(node)
    if tuple(full) == x.full:
        act = ctx.emit(base, "identity", {}, [x], full, kind=node.op_type)
    else:
        act = ctx.generic(base, node.op_type, acts_of(ctx, node), full, vector_ops=0)
    ctx.bind(node.output[0], act)


def shape_of(ctx: Ctx, node: Any) -> None:
    """``Shape``/``Size`` of an activation: a constant, since shapes are static here."""
    x = first_act(ctx, node)
    a = attrs(node)
    if node.op_type == "Size":
        ctx.consts[node.output[0]] = np.array(numel(x.full), dtype=np.int64)
        return
    dims = list(x.full)
    start = int(a.get("start", 0))
    end = a.get("end")
    ctx.consts[node.output[0]] = np.array(
        dims[start:] if end is None else dims[start : int(end)], dtype=np.int64
    )


def static_of(ctx: Ctx, node: Any) -> None:
    """Ops whose output depends only on their input's shape (``*Like`` generators)."""
    for out in node.output:
        if out:
            ctx.statics.add(out)
