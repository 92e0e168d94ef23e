"""Converters for sliding-window ops: convolutions and pooling.

ONNX paddings (explicit, asymmetric or ``auto_pad``) are mapped to the symmetric padding of
the IR that reproduces ONNX's output size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from isosched.io.onnx.common import Shape, attrs, ints, node_base, numel, str_attr
from isosched.io.onnx.context import Converter, Ctx, first_act, generic_node

__all__ = ["conv_like", "conv_transpose", "pool"]


def _weight_shape(ctx: Ctx, name: str) -> Shape | None:
    return ctx.full_shape(name) if name else None


def _pick_pad(size: int, k: int, s: int, d: int, pb: int, pe: int, want: int) -> int | None:
    """A symmetric padding that reproduces ONNX's output size along one axis."""
    cands = [pb, pe, (pb + pe) // 2, (pb + pe + 1) // 2, max(pb, pe), max(pb, pe) + 1]
    for p in dict.fromkeys(cands):
        if p < 0:
            continue
        span = size + 2 * p - d * (k - 1) - 1
        if span < 0:
            continue
        if span // s + 1 == want:
            return p
    return None


def _auto_pads(
    auto_pad: str, ins: Sequence[int], ks: Sequence[int], ss: Sequence[int], ds: Sequence[int]
) -> list[int] | None:
    """Begin and end pads for ``auto_pad`` SAME_UPPER/SAME_LOWER/VALID (None: explicit)."""
    if auto_pad in ("", "NOTSET"):
        return None
    n = len(ins)
    if auto_pad == "VALID":
        return [0] * (2 * n)
    begins, ends = [], []
    for i in range(n):
        out = -(-ins[i] // ss[i])
        total = max((out - 1) * ss[i] + ds[i] * (ks[i] - 1) + 1 - ins[i], 0)
        small, big = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else big)
        ends.append(big if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def conv_like(x: int, w: int, b: int | None) -> Converter:
    """Converter for a convolution with input, weight and bias at these operand positions."""

    def convert(ctx: Ctx, node: Any) -> None:
        _conv(ctx, node, x, w, b)

    return convert


def _conv(ctx: Ctx, node: Any, xi: int, wi: int, bi: int | None) -> None:
    base, a = node_base(node), attrs(node)
    full = ctx.out_full(node)
    x_name = node.input[xi]
    w_name = node.input[wi] if len(node.input) > wi else ""
    wshape = _weight_shape(ctx, w_name)
    has_bias = bi is not None and len(node.input) > bi and bool(node.input[bi])
    x = ctx.acts.get(x_name)
    if x is None:
        generic_node(ctx, node)
        return
    groups = int(a.get("group", 1))
    per_out = numel(wshape[1:]) if wshape else 0
    macs = numel(full) * per_out
    wel = numel(wshape) + (full[1] if has_bias and len(full) > 1 else 0) if wshape else 0
    inputs = [x]
    why: str | None = None
    if ctx.is_act(w_name):
        inputs.append(ctx.acts[w_name])
        why = "weights computed at run time"
    if wshape is None:
        why = why or "weight shape unknown"
        ctx.bind(node.output[0], ctx.generic(base, node.op_type, inputs, full))
        ctx.note(f"{base}: {node.op_type} as generic ({why})")
        return
    spatial = len(x.full) - 2
    if spatial != 2:
        why = why or f"{spatial}-d convolution"
    params: dict[str, Any] = {}
    if why is None:
        ks = ints(a.get("kernel_shape"), wshape[2:])
        ss = ints(a.get("strides"), [1, 1])
        ds = ints(a.get("dilations"), [1, 1])
        pads = _auto_pads(str_attr(a.get("auto_pad"), "NOTSET"), x.full[2:], ks, ss, ds)
        if pads is None:
            pads = ints(a.get("pads"), [0, 0, 0, 0])
        if len(full) != 4:
            why = f"output rank {len(full)}"
        elif (len(ks), len(ss), len(ds), len(pads)) != (2, 2, 2, 4):
            why = f"kernel_shape {ks}, strides {ss}, dilations {ds}, pads {pads} do not fit 2-d"
        else:
            pad = [
                _pick_pad(x.full[2 + i], ks[i], ss[i], ds[i], pads[i], pads[i + 2], full[2 + i])
                for i in range(2)
            ]
            if pads[0] != pads[2] or pads[1] != pads[3]:
                ctx.note(f"{base}: asymmetric pads {pads} mapped to symmetric {pad}")
            if pad[0] is None or pad[1] is None:
                why = f"pads {pads} do not fit a symmetric padding"
            else:
                params = {
                    "out_channels": int(full[1]),
                    "kernel": [int(ks[0]), int(ks[1])],
                    "stride": [int(ss[0]), int(ss[1])],
                    "padding": [int(pad[0]), int(pad[1])],
                    "dilation": [int(ds[0]), int(ds[1])],
                    "groups": groups,
                    "bias": has_bias,
                }
    act = ctx.emit(
        base, "conv", params, inputs, full, kind=node.op_type, macs=macs, weight_elems=wel, why=why
    )
    ctx.bind(node.output[0], act)


def conv_transpose(ctx: Ctx, node: Any) -> None:
    """``ConvTranspose`` as ``conv_transpose``."""
    base, a = node_base(node), attrs(node)
    full = ctx.out_full(node)
    x = ctx.acts.get(node.input[0])
    wshape = _weight_shape(ctx, node.input[1]) if len(node.input) > 1 else None
    if x is None or wshape is None:
        generic_node(ctx, node)
        return
    groups = int(a.get("group", 1))
    has_bias = len(node.input) > 2 and bool(node.input[2])
    macs = numel(x.full) * numel(wshape[1:])
    wel = numel(wshape) + (full[1] if has_bias and len(full) > 1 else 0)
    why: str | None = None
    params: dict[str, Any] = {}
    inputs = [x]
    if ctx.is_act(node.input[1]):
        inputs.append(ctx.acts[node.input[1]])
        why = "weights computed at run time"
    elif len(x.full) != 4 or len(full) != 4:
        why = f"{len(x.full) - 2}-d transposed convolution"
    else:
        ks = ints(a.get("kernel_shape"), wshape[2:])
        ss = ints(a.get("strides"), [1, 1])
        ds = ints(a.get("dilations"), [1, 1])
        pads = ints(a.get("pads"), [0, 0, 0, 0])
        if ds != [1, 1]:
            why = f"dilations {ds}"
        else:
            pad: list[int] = []
            opad: list[int] = []
            for i in range(2):
                h, want = x.full[2 + i], full[2 + i]
                for p in dict.fromkeys([pads[i], pads[i + 2], (pads[i] + pads[i + 2]) // 2]):
                    op_ = want - ((h - 1) * ss[i] - 2 * p + ks[i])
                    if p >= 0 and op_ >= 0:
                        pad.append(p)
                        opad.append(op_)
                        break
            if len(pad) != 2:
                why = f"pads {pads} do not fit"
            else:
                params = {
                    "out_channels": int(full[1]),
                    "kernel": [int(ks[0]), int(ks[1])],
                    "stride": [int(ss[0]), int(ss[1])],
                    "padding": pad,
                    "output_padding": opad,
                    "groups": groups,
                    "bias": has_bias,
                }
    act = ctx.emit(
        base,
        "conv_transpose",
        params,
        inputs,
        full,
        kind=node.op_type,
        macs=macs,
        weight_elems=wel,
        why=why,
    )
    ctx.bind(node.output[0], act)


def pool(ctx: Ctx, node: Any) -> None:
    """``MaxPool``, ``AveragePool`` and their global forms as ``pool``."""
    x = first_act(ctx, node)
    a, base, full = attrs(node), node_base(node), ctx.out_full(node)
    kind = "max" if "Max" in node.op_type else "avg"
    if node.op_type.startswith("Global"):
        act = ctx.emit(base, "pool", {"kind": kind, "global": True}, [x], full, kind=node.op_type)
        ctx.bind(node.output[0], act)
        return
    why: str | None = None
    params: dict[str, Any] = {}
    ks = ints(a.get("kernel_shape"), [])
    ss = ints(a.get("strides"), [1] * len(ks))
    ds = ints(a.get("dilations"), [1] * len(ks))
    if len(ks) != 2 or len(x.full) != 4 or len(full) != 4:
        why = f"{len(ks)}-d pooling"
    elif ds != [1, 1]:
        why = f"dilations {ds}"
    else:
        pads = _auto_pads(str_attr(a.get("auto_pad"), "NOTSET"), x.full[2:], ks, ss, ds)
        if pads is None:
            pads = ints(a.get("pads"), [0, 0, 0, 0])
        pad = [
            _pick_pad(x.full[2 + i], ks[i], ss[i], 1, pads[i], pads[i + 2], full[2 + i])
            for i in range(2)
        ]
        if pad[0] is None or pad[1] is None:
            why = f"pads {pads} (ceil_mode {a.get('ceil_mode', 0)}) do not fit"
        else:
            if pads[0] != pads[2] or pads[1] != pads[3] or a.get("ceil_mode", 0):
                ctx.note(f"{base}: pads {pads} ceil_mode {a.get('ceil_mode', 0)} mapped to {pad}")
            params = {
                "kind": kind,
                "kernel": [ks[0], ks[1]],
                "stride": [ss[0], ss[1]],
                "padding": [pad[0], pad[1]],
            }
    act = ctx.emit(
        base,
        "pool",
        params,
        [x],
        full,
        kind=node.op_type,
        vector_ops=numel(full) * numel(ks),
        why=why,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)
