"""Output shapes of onnxruntime's contrib operators (``com.microsoft``), which ONNX cannot infer.

Each rule maps a node and the shapes known so far to its output shapes (``None`` where a rule
cannot tell); :func:`contrib_shapes` returns ``None`` for ops without a rule. The rules follow
the operator documentation of onnxruntime (``docs/ContribOperators.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from isosched.io.onnx.common import Shape, attrs, ints, str_attr

__all__ = ["attention_sizes", "contrib_shapes", "mha_sizes", "pool_out_size"]

Rule = Callable[[Any, Mapping[str, Shape | None]], list[Shape | None] | None]


def _s(shapes: Mapping[str, Shape | None], node: Any, i: int) -> Shape | None:
    if i >= len(node.input) or not node.input[i]:
        return None
    return shapes.get(node.input[i])


def _broadcast(*shapes: Shape | None) -> Shape | None:
    if any(s is None for s in shapes):
        return None
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s or ()) for s in shapes]))
    except ValueError:
        return None


def _matmul_shape(a: Shape | None, b: Shape | None, ta: bool, tb: bool) -> Shape | None:
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    m, k = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    kb, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if k != kb:
        return None
    batch = _broadcast(a[:-2], b[:-2])
    return None if batch is None else (*batch, m, n)


def _same_as(i: int, extra: int = 0) -> Rule:
    def rule(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
        x = _s(shapes, node, i)
        return None if x is None else [x] * (1 + extra)

    return rule


def _fused_matmul(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    a = attrs(node)
    if int(a.get("transBatchA", 0)) or int(a.get("transBatchB", 0)):
        return None
    out = _matmul_shape(
        _s(shapes, node, 0), _s(shapes, node, 1), bool(a.get("transA", 0)), bool(a.get("transB", 0))
    )
    return None if out is None else [out]


def attention_sizes(node: Any, shapes: Mapping[str, Shape | None]) -> tuple[int, int, int] | None:
    """Hidden sizes of Q, K and V of a ``com.microsoft::Attention`` node."""
    q = ints(attrs(node).get("qkv_hidden_sizes"), [])
    if len(q) == 3:
        return q[0], q[1], q[2]
    w = _s(shapes, node, 1)
    if w is None or len(w) != 2 or w[1] % 3:
        return None
    return w[1] // 3, w[1] // 3, w[1] // 3


def _attention(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    x, sizes = _s(shapes, node, 0), attention_sizes(node, shapes)
    if x is None or sizes is None or len(x) != 3:
        return None
    return [(x[0], x[1], sizes[2])]


def mha_sizes(
    node: Any, shapes: Mapping[str, Shape | None]
) -> tuple[int, int, int, int, int, int] | None:
    """``(batch, S, L, D_qk, D_v, heads)`` of a ``com.microsoft::MultiHeadAttention`` node.

    Query ``[B, S, D]`` with key and value ``[B, L, D]`` or ``[B, N, L, H]``, or packed
    ``[B, S, N, 3, H]`` (no key) or ``[B, L, N, 2, H]`` (key with value absent).
    """
    heads = int(attrs(node).get("num_heads", 0))
    q, k, v = _s(shapes, node, 0), _s(shapes, node, 1), _s(shapes, node, 2)
    if q is None or heads < 1:
        return None
    if len(q) == 5 and k is None:  # packed q, k, v
        return q[0], q[1], q[1], q[2] * q[4], q[2] * q[4], heads
    if len(q) != 3 or k is None:
        return None
    if len(k) == 5 and v is None:  # packed k, v
        return q[0], q[1], k[1], q[2], k[2] * k[4], heads
    if v is None:
        return None
    if len(k) == 3 and len(v) == 3:
        return q[0], q[1], k[1], q[2], v[2], heads
    if len(k) == 4 and len(v) == 4:
        return q[0], q[1], k[2], q[2], v[1] * v[3], heads
    return None


def _mha(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    sizes = mha_sizes(node, shapes)
    if sizes is None:
        return None
    b, s, _l, _dqk, dv, _h = sizes
    return [(b, s, dv)]


def _skip_norm(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    x = _s(shapes, node, 0)
    if x is None:
        return None
    stat = (*x[:-1], 1)
    return [x, stat, stat, x]


def _qlinear_binary(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    out = _broadcast(_s(shapes, node, 0), _s(shapes, node, 3))
    return None if out is None else [out]


def _qlinear_global_pool(
    node: Any, shapes: Mapping[str, Shape | None]
) -> list[Shape | None] | None:
    x = _s(shapes, node, 0)
    if x is None or len(x) < 3:
        return None
    if int(attrs(node).get("channels_last", 0)):
        return [(x[0], *([1] * (len(x) - 2)), x[-1])]
    return [(x[0], x[1], *([1] * (len(x) - 2)))]


def pool_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil_mode: bool) -> int:
    """Output length of a sliding window along one axis, as ONNX and PyTorch define it.

    With ``ceil_mode`` the last window may hang over the end, but must start inside the input
    or its begin padding.
    """
    span = size + pb + pe - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + pb:
        out -= 1
    return out


def _qlinear_pool(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    x = _s(shapes, node, 0)
    a = attrs(node)
    ks = ints(a.get("kernel_shape"), [])
    if x is None or not ks or len(x) != len(ks) + 2 or int(a.get("channels_last", 0)):
        return None
    n = len(ks)
    ss = ints(a.get("strides"), [1] * n)
    pads = ints(a.get("pads"), [0] * (2 * n))
    if str_attr(a.get("auto_pad"), "NOTSET") not in ("NOTSET", ""):
        return None
    ceil = bool(a.get("ceil_mode", 0))
    spatial = [
        pool_out_size(x[2 + i], ks[i], ss[i], 1, pads[i], pads[i + n], ceil) for i in range(n)
    ]
    return [(x[0], x[1], *spatial)]


def _qlinear_concat(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    parts = [_s(shapes, node, i) for i in range(2, len(node.input), 3)]
    if not parts or any(p is None for p in parts):
        return None
    known = [p for p in parts if p is not None]
    axis = int(attrs(node).get("axis", 0))
    rank = len(known[0])
    ax = axis + rank if axis < 0 else axis
    if not 0 <= ax < rank or any(len(p) != rank for p in known):
        return None
    out = list(known[0])
    out[ax] = sum(p[ax] for p in known)
    return [tuple(out)]


def _qgemm(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    a = attrs(node)
    out = _matmul_shape(
        _s(shapes, node, 0), _s(shapes, node, 3), bool(a.get("transA", 0)), bool(a.get("transB", 0))
    )
    return None if out is None else [out]


def _matmul_ab(bi: int) -> Rule:
    def rule(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
        out = _matmul_shape(_s(shapes, node, 0), _s(shapes, node, bi), False, False)
        return None if out is None else [out]

    return rule


def _matmul_nbits(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    x, n = _s(shapes, node, 0), int(attrs(node).get("N", 0))
    return None if x is None or n < 1 else [(*x[:-1], n)]


def _embed_layer_norm(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    ids, table = _s(shapes, node, 0), _s(shapes, node, 2)
    if ids is None or table is None or len(ids) != 2 or len(table) != 2:
        return None
    out = (ids[0], ids[1], table[1])
    return [out, (ids[0],), out]


_RULES: dict[str, Rule] = {
    "FusedMatMul": _fused_matmul,
    "Attention": _attention,
    "MultiHeadAttention": _mha,
    "BiasGelu": _same_as(0),
    "Gelu": _same_as(0),
    "FastGelu": _same_as(0),
    "QuickGelu": _same_as(0),
    "BiasAdd": _same_as(0),
    "BiasSoftmax": _same_as(0),
    "RotaryEmbedding": _same_as(0),
    "SkipLayerNormalization": _skip_norm,
    "EmbedLayerNormalization": _embed_layer_norm,
    "SkipSimplifiedLayerNormalization": _skip_norm,
    "SimplifiedLayerNormalization": _skip_norm,
    "LayerNormalization": _skip_norm,
    "QLinearAdd": _qlinear_binary,
    "QLinearMul": _qlinear_binary,
    "QLinearSigmoid": _same_as(0),
    "QLinearLeakyRelu": _same_as(0),
    "QLinearSoftmax": _same_as(0),
    "QLinearGlobalAveragePool": _qlinear_global_pool,
    "QLinearAveragePool": _qlinear_pool,
    "QLinearConcat": _qlinear_concat,
    "QGemm": _qgemm,
    "DynamicQuantizeMatMul": _matmul_ab(1),
    "MatMulIntegerToFloat": _matmul_ab(1),
    "MatMulInteger16": _matmul_ab(1),
    "MatMulNBits": _matmul_nbits,
}


#: Ops onnxruntime (or a later ONNX opset) puts in the default domain that have a rule here.
_DEFAULT_DOMAIN = frozenset(
    {"SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "LayerNormalization"}
)


def contrib_shapes(node: Any, shapes: Mapping[str, Shape | None]) -> list[Shape | None] | None:
    """Output shapes of a contrib op, or ``None`` when the op has no rule."""
    if node.domain not in ("com.microsoft", "ai.onnx.contrib") and not (
        not node.domain and node.op_type in _DEFAULT_DOMAIN
    ):
        return None
    rule = _RULES.get(node.op_type)
    if rule is None:
        return None
    try:
        out = rule(node, shapes)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if out is not None and any(s is not None and math.prod(s) < 0 for s in out):
        return None
    return out
