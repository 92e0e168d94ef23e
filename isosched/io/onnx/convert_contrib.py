"""Converters for onnxruntime's compute-carrying contrib ops (domain ``com.microsoft``).

Each op is priced by what it computes (see ``docs/models.md``): a fused op becomes the layers it
fuses (``Attention`` = QKV projection + attention core; ``SkipLayerNormalization`` = residual
add + norm), and quantized ``QLinear*`` ops the float op they quantize (the scales and zero
points are parameters of a few bytes). Many reuse the standard converters through a *view*: a
node of the standard op reading only the data operands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx

from isosched.io.onnx.common import attrs, node_base, numel
from isosched.io.onnx.context import Converter, Ctx, acts_of, first_act
from isosched.io.onnx.contrib import attention_sizes, mha_sizes
from isosched.io.onnx.convert_conv import pool
from isosched.io.onnx.convert_elementwise import activation, binary, fold_bias_into
from isosched.io.onnx.convert_linear import gemm, matmul_like
from isosched.io.onnx.convert_norm import norm, softmax
from isosched.io.onnx.convert_shape import concat

__all__ = ["CONTRIB_CONVERTERS"]


def view(node: Any, op_type: str, inputs: Sequence[str], keep: Sequence[str] = ()) -> Any:
    """A node of a standard op with the same name and outputs, reading ``inputs``.

    Attributes named in ``keep`` are copied.
    """
    out = onnx.helper.make_node(op_type, list(inputs), list(node.output), name=node.name)
    out.attribute.extend(a for a in node.attribute if a.name in keep)
    return out


def _input(node: Any, i: int) -> str:
    return node.input[i] if i < len(node.input) else ""


def fused_matmul(ctx: Ctx, node: Any) -> None:
    """``FusedMatMul``: ``alpha · op(A) @ op(B)``, as ``linear`` or ``matmul``."""
    a = attrs(node)
    an, bn = node.input[0], node.input[1]
    ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
    if ta or int(a.get("transBatchA", 0)) or int(a.get("transBatchB", 0)):
        ashape = ctx.full_shape(an)
        full = ctx.out_full(node)
        if ashape is None or len(ashape) < 2:
            ctx.flag_compute("FusedMatMul operand shape unknown")
            k = 0
        else:
            k = ashape[-2] if ta else ashape[-1]
        act = ctx.generic(
            node_base(node), "FusedMatMul", acts_of(ctx, node), full, macs=numel(full) * k
        )
        ctx.bind(node.output[0], act)
        return
    if tb:
        gemm(ctx, view(node, "Gemm", [an, bn], keep=("transB",)))
    else:
        matmul_like(0, 1)(ctx, view(node, "MatMul", [an, bn]))


def ms_attention(ctx: Ctx, node: Any) -> None:
    """``Attention``: QKV projection (``linear``) and the attention core (``attention``).

    MACs: ``S·H·(Dq+Dk+Dv)`` for the projection, ``S·L·Dq + S·L·Dv`` for ``QKᵀ`` and ``AV``,
    with ``L`` the key length (past included).
    """
    base, a = node_base(node), attrs(node)
    heads = int(a.get("num_heads", 1))
    full = ctx.out_full(node)
    x = first_act(ctx, node)
    wn, bn = node.input[1], _input(node, 2)
    sizes = attention_sizes(node, ctx.shapes) if not ctx.is_act(wn) else None
    wshape = ctx.full_shape(wn)
    past = ctx.full_shape(_input(node, 4)) if _input(node, 4) else None
    if sizes is None or wshape is None or len(x.full) != 3:
        ctx.flag_compute("Attention weights or input of unknown shape")
        act = ctx.generic(base, "Attention", acts_of(ctx, node), full)
        ctx.bind(node.output[0], act)
        ctx.bind_extra_outputs(node, base, act)
        return
    dq, dk, dv = sizes
    s, hidden = x.full[1], x.full[2]
    kv_len = s + (past[3] if past is not None and len(past) == 5 else 0)
    proj_out = dq + dk + dv
    has_bias = bool(bn) and not ctx.is_act(bn)
    qkv = ctx.emit(
        f"{base}_qkv",
        "linear",
        {"out_features": proj_out, "bias": has_bias},
        [x],
        (x.full[0], s, proj_out),
        kind="Attention",
        macs=s * hidden * proj_out,
        weight_elems=numel(wshape) + (proj_out if has_bias else 0),
    )
    core_macs = s * kv_len * dq + s * kv_len * dv
    why = None
    if not (dq == dk == dv) or kv_len != s:
        why = "unequal Q/K/V widths or a past key/value"
    act = ctx.emit(
        base,
        "attention",
        {"heads": heads, "causal": bool(a.get("unidirectional", 0))},
        [qkv],
        full,
        kind="Attention",
        macs=core_macs,
        vector_ops=5 * heads * s * kv_len,
        why=why,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def multi_head_attention(ctx: Ctx, node: Any) -> None:
    """``MultiHeadAttention`` on projected Q, K, V: ``S·L·D_qk + S·L·D_v`` MACs."""
    base, a = node_base(node), attrs(node)
    full = ctx.out_full(node)
    sizes = mha_sizes(node, ctx.shapes)
    acts = [ctx.acts[n] for n in node.input[:3] if ctx.is_act(n)]
    if sizes is None:
        ctx.flag_compute("MultiHeadAttention operands of unknown shape")
        act = ctx.generic(base, "MultiHeadAttention", acts_of(ctx, node), full)
        ctx.bind(node.output[0], act)
        ctx.bind_extra_outputs(node, base, act)
        return
    _b, s, kv_len, dqk, dv, heads = sizes
    past = ctx.full_shape(_input(node, 6)) if _input(node, 6) else None
    if past is not None and len(past) == 4:
        kv_len += past[2]
    macs = s * kv_len * (dqk + dv)
    why = None
    extra = [i for i in node.input[3:] if i]
    if len(acts) != 3 or dqk != dv or extra:
        why = "packed operands, bias, mask or cache not expressible as the IR attention op"
    act = ctx.emit(
        base,
        "attention",
        {"heads": heads, "causal": bool(a.get("unidirectional", 0))},
        acts if why is None else acts_of(ctx, node),
        full,
        kind="MultiHeadAttention",
        macs=macs,
        vector_ops=5 * heads * s * kv_len,
        why=why,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def gelu_like(ctx: Ctx, node: Any) -> None:
    """``BiasGelu``, ``Gelu``, ``FastGelu``, ``QuickGelu`` as a ``gelu`` activation.

    A bias joins the layer that produced the input when it can (as onnxruntime took it from
    there); otherwise the op is a ``generic`` layer holding it, at two vector operations per
    element.
    """
    x_name = node.input[0]
    bias = _input(node, 1)
    if bias and not ctx.is_act(bias) and not fold_bias_into(ctx, x_name, bias, ctx.out_full(node)):
        x = first_act(ctx, node)
        full = ctx.out_full(node)
        ctx.note(f"{node_base(node)}: {node.op_type} bias kept in a generic layer")
        act = ctx.generic(
            node_base(node),
            node.op_type,
            [x],
            full,
            vector_ops=2 * numel(full),
            weight_elems=numel(ctx.full_shape(bias) or ()),
        )
        ctx.bind(node.output[0], act)
        return
    activation(ctx, view(node, "Gelu", [x_name]))


def skip_layer_norm(ctx: Ctx, node: Any) -> None:
    """``Skip[Simplified]LayerNormalization``: residual ``add`` then ``norm``.

    Outputs: 0 the normalised sum, 3 the sum itself (mean and inverse deviation, 1 and 2, are
    zero-work side outputs).
    """
    base = node_base(node)
    x_name, skip = node.input[0], node.input[1]
    bias = _input(node, 4)
    if bias and not ctx.is_act(bias):
        fold_bias_into(ctx, x_name, bias, ctx.full_shape(x_name) or ())
    full = ctx.out_full(node)
    acts = [ctx.acts[n] for n in (x_name, skip) if ctx.is_act(n)]
    summed = acts[0]
    if len(acts) == 2:
        summed = ctx.emit(f"{base}_add", "add", {}, acts, full, kind=node.op_type)
    kind = "rms" if "Simplified" in node.op_type else "layer"
    out = ctx.emit(
        base,
        "norm",
        {"kind": kind, "axis": -1},
        [summed],
        full,
        kind=node.op_type,
        vector_ops=5 * numel(full),
    )
    ctx.bind(node.output[0], out)
    for k, name in enumerate(node.output[1:], start=1):
        if not name or (ctx.uses[name] == 0 and name not in ctx.graph_outputs):
            continue
        if k == 3:
            ctx.bind(name, summed)
        else:
            ctx.bind(
                name,
                ctx.generic(
                    f"{base}_out{k}", node.op_type, [out], ctx.out_full(node, k), vector_ops=0
                ),
            )


def embed_layer_norm(ctx: Ctx, node: Any) -> None:
    """``EmbedLayerNormalization`` as ``embedding``, a ``generic`` sum, then ``norm``.

    The word table is the ``embedding``; the position and segment tables are added by a
    ``generic`` layer that holds them (two vector operations per element); output 2 is that
    sum, output 1 (the mask index) a zero-work layer.
    """
    base = node_base(node)
    ids = ctx.acts.get(node.input[0])
    table = ctx.full_shape(_input(node, 2))
    full = ctx.out_full(node)
    if ids is None or table is None or len(table) != 2:
        ctx.flag_compute("EmbedLayerNormalization with an embedding table of unknown shape")
        act = ctx.generic(base, node.op_type, acts_of(ctx, node), full)
        ctx.bind(node.output[0], act)
        ctx.bind_extra_outputs(node, base, act)
        return
    word = ctx.emit(
        f"{base}_word",
        "embedding",
        {"num_embeddings": int(table[0]), "dim": int(table[1])},
        [ids],
        full,
        kind=node.op_type,
        weight_elems=numel(table),
    )
    ctx.own_weight(node.input[2], word.layer)
    extra = sum(numel(ctx.full_shape(_input(node, i)) or ()) for i in (3, 4) if _input(node, i))
    others = [ctx.acts[n] for n in (_input(node, 1), _input(node, 8)) if n and ctx.is_act(n)]
    summed = ctx.generic(
        f"{base}_add",
        node.op_type,
        [word, *others],
        full,
        vector_ops=2 * numel(full),
        weight_elems=extra,
    )
    out = ctx.emit(
        base,
        "norm",
        {"kind": "layer", "axis": -1},
        [summed],
        full,
        kind=node.op_type,
        vector_ops=5 * numel(full),
    )
    ctx.bind(node.output[0], out)
    for k, name in enumerate(node.output[1:], start=1):
        if not name or (ctx.uses[name] == 0 and name not in ctx.graph_outputs):
            continue
        if k == 2:
            ctx.bind(name, summed)
        else:
            mask = ctx.generic(
                f"{base}_out{k}", node.op_type, [out], ctx.out_full(node, k), vector_ops=0
            )
            ctx.bind(name, mask)


def _qlinear(op: str, data: Sequence[int], keep: Sequence[str], conv: Converter) -> Converter:
    def convert(ctx: Ctx, node: Any) -> None:
        conv(ctx, view(node, op, [_input(node, i) for i in data], keep=keep))

    return convert


def qlinear_concat(ctx: Ctx, node: Any) -> None:
    """``QLinearConcat``: inputs come in (tensor, scale, zero point) triples after Y's."""
    concat(ctx, view(node, "Concat", list(node.input[2::3]), keep=("axis",)))


def qlinear_global_pool(ctx: Ctx, node: Any) -> None:
    """``QLinearGlobalAveragePool`` (channels first) as a global ``pool``."""
    if int(attrs(node).get("channels_last", 0)):
        x = first_act(ctx, node)
        full = ctx.out_full(node)
        act = ctx.generic(node_base(node), node.op_type, [x], full, vector_ops=numel(x.full))
        ctx.bind(node.output[0], act)
        return
    pool(ctx, view(node, "GlobalAveragePool", [node.input[0]]))


def matmul_nbits(ctx: Ctx, node: Any) -> None:
    """``MatMulNBits``: ``A @ dequantize(B)`` with ``B`` of ``K × N``, as ``linear``."""
    a = attrs(node)
    x = first_act(ctx, node)
    k, n = int(a.get("K", 0)), int(a.get("N", 0))
    full = ctx.out_full(node)
    act = ctx.emit(
        node_base(node),
        "linear",
        {"out_features": n},
        [x],
        full,
        kind="MatMulNBits",
        macs=numel(full) * k,
        weight_elems=k * n,
    )
    ctx.bind(node.output[0], act)


_POOL_ATTRS = ("kernel_shape", "strides", "pads", "ceil_mode", "auto_pad", "dilations")


#: Converter per ``com.microsoft`` op type.
CONTRIB_CONVERTERS: dict[str, Converter] = {
    "FusedMatMul": fused_matmul,
    "Attention": ms_attention,
    "MultiHeadAttention": multi_head_attention,
    "BiasGelu": gelu_like,
    "Gelu": gelu_like,
    "FastGelu": gelu_like,
    "QuickGelu": gelu_like,
    "SkipLayerNormalization": skip_layer_norm,
    "EmbedLayerNormalization": embed_layer_norm,
    "SkipSimplifiedLayerNormalization": skip_layer_norm,
    "SimplifiedLayerNormalization": norm,
    "LayerNormalization": norm,
    "QLinearAdd": _qlinear("Add", (0, 3), (), binary),
    "QLinearMul": _qlinear("Mul", (0, 3), (), binary),
    "QLinearSigmoid": _qlinear("Sigmoid", (0,), (), activation),
    "QLinearLeakyRelu": _qlinear("LeakyRelu", (0,), ("alpha",), activation),
    "QLinearSoftmax": _qlinear("Softmax", (0,), ("axis",), softmax),
    "QLinearAveragePool": _qlinear("AveragePool", (0,), _POOL_ATTRS, pool),
    "QLinearGlobalAveragePool": qlinear_global_pool,
    "QLinearConcat": qlinear_concat,
    "QGemm": _qlinear("Gemm", (0, 3, 6), ("transA", "transB"), gemm),
    "DynamicQuantizeMatMul": _qlinear("MatMul", (0, 1), (), matmul_like(0, 1)),
    "MatMulIntegerToFloat": _qlinear("MatMul", (0, 1), (), matmul_like(0, 1)),
    "MatMulInteger16": _qlinear("MatMul", (0, 1), (), matmul_like(0, 1)),
    "MatMulNBits": matmul_nbits,
}
