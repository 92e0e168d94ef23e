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
        ctx.flag_compute(f"{node.op_type} weight shape unknown: MACs not counted")
        ctx.bind(node.output[0], ctx.generic(base, node.op_type, inputs, full))
        ctx.note(f"{base}: {node.op_type} as generic ({why})")
        return
    if why is None and w_name and ctx.tied(w_name):
        why = "weights tied to an earlier layer's (counted there)"
        wel = 0
    n = len(x.full) - 2
    params: dict[str, Any] = {}
    if why is None and not 1 <= n <= 3:
        why = f"{n}-d convolution"
    if why is None:
        ks = ints(a.get("kernel_shape"), wshape[2:])
        ss = ints(a.get("strides"), [1] * n)
        ds = ints(a.get("dilations"), [1] * n)
        pads = _auto_pads(str_attr(a.get("auto_pad"), "NOTSET"), x.full[2:], ks, ss, ds)
        if pads is None:
            pads = ints(a.get("pads"), [0] * (2 * n))
        if len(full) != n + 2:
            why = f"output rank {len(full)}"
        elif (len(ks), len(ss), len(ds), len(pads)) != (n, n, n, 2 * n):
            why = f"kernel_shape {ks}, strides {ss}, dilations {ds}, pads {pads} do not fit {n}-d"
        else:
            pad = [
                _pick_pad(x.full[2 + i], ks[i], ss[i], ds[i], pads[i], pads[i + n], full[2 + i])
                for i in range(n)
            ]
            if pads[:n] != pads[n:]:
                # MACs count every output position times the kernel (padding included), so a
                # symmetric padding giving the same output size prices the layer exactly.
                ctx.note(f"{base}: asymmetric pads {pads} mapped to symmetric {pad}")
            if any(p is None for p in pad):
                why = f"pads {pads} do not fit a symmetric padding"
            else:
                params = {
                    "out_channels": int(full[1]),
                    "kernel": _field(ks),
                    "stride": _field(ss),
                    "padding": _field([int(p or 0) for p in pad]),
                    "dilation": _field(ds),
                    "groups": groups,
                    "bias": has_bias,
                }
    act = ctx.emit(
        base, "conv", params, inputs, full, kind=node.op_type, macs=macs, weight_elems=wel, why=why
    )
    if w_name and not ctx.is_act(w_name):
        ctx.own_weight(w_name, act.layer)
    ctx.bind(node.output[0], act)


def _field(values: Sequence[int]) -> list[int]:
    """A window field of the IR: one value per spatial axis."""
    return [int(v) for v in values]


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
    """``MaxPool``, ``AveragePool``, ``LpPool`` and their global forms as 1-, 2- or 3-D ``pool``.

    Asymmetric and ``ceil_mode`` paddings are kept (``padding``, ``padding_end``,
    ``ceil_mode``); the IR clips every window to the input.
    """
    x = first_act(ctx, node)
    a, base, full = attrs(node), node_base(node), ctx.out_full(node)
    kind = "max" if "Max" in node.op_type else "avg"
    if node.op_type.startswith("Global"):
        act = ctx.emit(base, "pool", {"kind": kind, "global": True}, [x], full, kind=node.op_type)
        ctx.bind(node.output[0], act)
        ctx.bind_extra_outputs(node, base, act)
        return
    why: str | None = None
    params: dict[str, Any] = {}
    ks = ints(a.get("kernel_shape"), [])
    n = len(ks)
    ss = ints(a.get("strides"), [1] * n)
    ds = ints(a.get("dilations"), [1] * n)
    if not 1 <= n <= 3 or len(x.full) != n + 2 or len(full) != n + 2:
        why = f"{n}-d pooling of a rank-{len(x.full)} tensor"
    elif ds != [1] * n:
        why = f"dilations {ds}"
    else:
        pads = _auto_pads(str_attr(a.get("auto_pad"), "NOTSET"), x.full[2:], ks, ss, ds)
        if pads is None:
            pads = ints(a.get("pads"), [0] * (2 * n))
        params = {"kind": kind, "kernel": _field(ks), "stride": _field(ss)}
        if any(pads):
            params["padding"] = _field(pads[:n])
        if pads[:n] != pads[n:]:
            params["padding_end"] = _field(pads[n:])
        if int(a.get("ceil_mode", 0)):
            params["ceil_mode"] = True
    # fallback work (dilated windows): every output element reads its whole window
    windows = numel(full) * numel(ks) if why else 0
    act = ctx.emit(
        base,
        "pool",
        params,
        [x],
        full,
        kind=node.op_type,
        vector_ops=windows,
        why=why,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)
