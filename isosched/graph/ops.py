"""Shape inference and work counts for every layer operator of the graph IR.

Tensors are described without the batch dimension (batch is 1): convolutional tensors are
``[C, H, W]``, sequence tensors ``[S, D]``. Each rule maps the op's parameters and its input
shapes to the output shape, the number of multiply-accumulates (MACs), the number of weight
elements and the number of vector (non-MAC) element operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from isosched.errors import GraphError

__all__ = ["OP_RULES", "COMPUTE_OPS", "SOFTMAX_OPS", "OpResult", "Shape", "infer_op"]

Shape = tuple[int, ...]
#: Vector ops per element of a softmax (max, subtract, exp, sum, divide).
SOFTMAX_OPS = 5


@dataclass(frozen=True, slots=True)
class OpResult:
    """What one layer produces and how much work it takes.

    Attributes
    ----------
    shape : tuple of int
        Output tensor shape, batch excluded.
    macs : int
        Multiply-accumulate operations.
    weight_elems : int
        Parameter elements (weights and biases).
    vector_ops : int
        Element operations done outside the MAC array (pooling, norms, activations, ...).
    """

    shape: Shape
    macs: int = 0
    weight_elems: int = 0
    vector_ops: int = 0


Rule = Callable[[Mapping[str, Any], Sequence[Shape]], OpResult]

#: Ops whose work runs on the MAC array (the rest runs on the vector unit or moves no data).
COMPUTE_OPS = frozenset({"conv", "conv_transpose", "linear", "matmul", "attention"})


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise GraphError(f"{name} must be an integer or a pair, got {list(value)}")
    return int(value[0]), int(value[1])


def _window(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """A window field as one value per spatial axis (``n`` of them)."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise GraphError(f"{name} must be an integer or {n} values, got {list(value)}")
    return tuple(int(v) for v in value)


def _spatial(shape: Shape, op: str) -> int:
    """Spatial axes of a ``[C, L]``, ``[C, H, W]`` or ``[C, D, H, W]`` tensor."""
    if not 2 <= len(shape) <= 4:
        raise GraphError(
            f"{op} needs a [C, L], [C, H, W] or [C, D, H, W] input, got shape {list(shape)}"
        )
    return len(shape) - 1


def _one_input(ins: Sequence[Shape], op: str) -> Shape:
    if len(ins) != 1:
        raise GraphError(f"{op} takes exactly one input, got {len(ins)}")
    return ins[0]


def _chw(shape: Shape, op: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise GraphError(f"{op} needs a [C, H, W] input, got shape {list(shape)}")
    return shape[0], shape[1], shape[2]


def _conv(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "conv")
    n = _spatial(x, "conv")
    c_in, sizes = x[0], x[1:]
    c_out, groups = int(p["out_channels"]), int(p.get("groups", 1))
    ks = _window(p["kernel"], n, "kernel")
    ss = _window(p.get("stride", 1), n, "stride")
    ps = _window(p.get("padding", 0), n, "padding")
    ds = _window(p.get("dilation", 1), n, "dilation")
    if c_in % groups or c_out % groups:
        raise GraphError(f"groups={groups} must divide in ({c_in}) and out ({c_out}) channels")
    out = tuple((sizes[i] + 2 * ps[i] - ds[i] * (ks[i] - 1) - 1) // ss[i] + 1 for i in range(n))
    if any(o <= 0 for o in out):
        raise GraphError(
            f"conv output would be empty ({'x'.join(map(str, out))}) for a "
            f"{'x'.join(map(str, sizes))} input"
        )
    per_out = (c_in // groups) * math.prod(ks)
    weights = c_out * per_out + (c_out if p.get("bias", False) else 0)
    return OpResult((c_out, *out), c_out * math.prod(out) * per_out, weights)


def _conv_transpose(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    c_in, h, w = _chw(_one_input(ins, "conv_transpose"), "conv_transpose")
    c_out, groups = int(p["out_channels"]), int(p.get("groups", 1))
    kh, kw = _pair(p["kernel"], "kernel")
    sh, sw = _pair(p.get("stride", 1), "stride")
    ph, pw = _pair(p.get("padding", 0), "padding")
    oph, opw = _pair(p.get("output_padding", 0), "output_padding")
    if c_in % groups or c_out % groups:
        raise GraphError(f"groups={groups} must divide in ({c_in}) and out ({c_out}) channels")
    ho = (h - 1) * sh - 2 * ph + kh + oph
    wo = (w - 1) * sw - 2 * pw + kw + opw
    if ho <= 0 or wo <= 0:
        raise GraphError(f"conv_transpose output would be empty ({ho}x{wo})")
    per_in = (c_out // groups) * kh * kw
    weights = c_in * per_in + (c_out if p.get("bias", False) else 0)
    return OpResult((c_out, ho, wo), c_in * h * w * per_in, weights)


def _linear(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "linear")
    k, n = x[-1], int(p["out_features"])
    lead = _numel(x[:-1])
    weights = k * n + (n if p.get("bias", False) else 0)
    return OpResult((*x[:-1], n), lead * k * n, weights)


def _matmul(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    if len(ins) != 2:
        raise GraphError(f"matmul multiplies two activations, got {len(ins)} inputs")
    a, b = ins
    if len(a) < 2 or len(b) < 2:
        raise GraphError(f"matmul inputs need at least 2 dims, got {list(a)} and {list(b)}")
    kb, n = (b[-1], b[-2]) if p.get("transpose_b", False) else (b[-2], b[-1])
    m, k = a[-2], a[-1]
    if k != kb:
        raise GraphError(f"matmul inner dims differ: {list(a)} x {list(b)}")
    if a[:-2] != b[:-2]:
        raise GraphError(f"matmul batch dims differ: {list(a[:-2])} vs {list(b[:-2])}")
    lead = _numel(a[:-2])
    return OpResult((*a[:-2], m, n), lead * m * k * n)


def _attention(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    heads = int(p["heads"])
    if len(ins) == 1:
        s, d3 = ins[0][-2], ins[0][-1]
        if len(ins[0]) != 2 or d3 % 3:
            raise GraphError(f"packed attention needs [S, 3*D], got {list(ins[0])}")
        d, skv = d3 // 3, s
    elif len(ins) == 3:
        q, k, v = ins
        if len(q) != 2 or k != v or q[-1] != k[-1]:
            raise GraphError(f"attention needs q [S, D] and k, v [S_kv, D]; got {ins}")
        s, d, skv = q[0], q[1], k[0]
    else:
        raise GraphError(f"attention takes 1 (packed qkv) or 3 inputs, got {len(ins)}")
    if d % heads:
        raise GraphError(f"heads={heads} must divide the model width {d}")
    # QK^T and (softmax)V, each S x S_kv x D MACs; softmax about 5 vector ops per score.
    return OpResult((s, d), 2 * s * skv * d, 0, 5 * heads * s * skv)


def _clipped_window_sum(size: int, k: int, s: int, pad: int, out: int) -> int:
    """Input elements read along one axis by ``out`` windows, each clipped to the input."""
    total = 0
    for o in range(out):
        lo = o * s - pad
        total += max(0, min(lo + k, size) - max(lo, 0))
    return total


def _pool(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "pool")
    n = _spatial(x, "pool")
    c, sizes = x[0], x[1:]
    if p.get("global", False):
        return OpResult((c, *([1] * n)), 0, 0, _numel(x))
    ks = _window(p["kernel"], n, "kernel")
    ss = _window(p.get("stride") or p["kernel"], n, "stride")
    pb = _window(p.get("padding", 0), n, "padding")
    end = p.get("padding_end")
    pe = pb if end is None else _window(end, n, "padding_end")
    ceil = bool(p.get("ceil_mode", False))
    out: list[int] = []
    for i in range(n):
        span = sizes[i] + pb[i] + pe[i] - ks[i]
        if span < 0:
            raise GraphError(
                f"pool window {ks[i]} exceeds the padded input {sizes[i] + pb[i] + pe[i]}"
            )
        o = -(-span // ss[i]) + 1 if ceil else span // ss[i] + 1
        if ceil and (o - 1) * ss[i] >= sizes[i] + pb[i]:
            o -= 1  # the last window must start inside the input or its begin padding
        out.append(o)
    # Each output element reduces the input elements of its window that lie inside the input.
    reads = math.prod(_clipped_window_sum(sizes[i], ks[i], ss[i], pb[i], out[i]) for i in range(n))
    return OpResult((c, *out), 0, 0, c * reads)


def _elementwise(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    if len(ins) < 2:
        raise GraphError(f"elementwise ops take two or more inputs, got {len(ins)}")
    # NumPy broadcasting (dimensions aligned from the right), as ONNX and PyTorch define it; a
    # single-element operand (a scalar of any rank) never widens the result.
    shapes = [s for s in ins if _numel(s) != 1] or [ins[0]]
    rank = max(len(s) for s in shapes)
    out = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0} - {1}
        if len(dims) > 1:
            shown = " vs ".join(str(list(s)) for s in ins)
            raise GraphError(f"elementwise inputs differ in shape and do not broadcast: {shown}")
        out.append(dims.pop() if dims else 1)
    return OpResult(tuple(out), 0, 0, _numel(out) * (len(ins) - 1))


def _axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise GraphError(f"axis {axis} out of range for a rank-{rank} tensor")
    return a


def _concat(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    if not ins:
        raise GraphError("concat needs inputs")
    a = _axis(int(p.get("axis", 0)), len(ins[0]))
    for s in ins[1:]:
        if len(s) != len(ins[0]) or any(s[i] != ins[0][i] for i in range(len(s)) if i != a):
            raise GraphError(f"concat inputs differ off axis {a}: {list(ins[0])} vs {list(s)}")
    out = list(ins[0])
    out[a] = sum(s[a] for s in ins)
    return OpResult(tuple(out))


def _split(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "split")
    a = _axis(int(p.get("axis", 0)), len(x))
    start, size = int(p.get("start", 0)), int(p["size"])
    step = int(p.get("step") or 1)
    last = start + (size - 1) * step
    if start < 0 or size < 1 or step < 1 or last >= x[a]:
        raise GraphError(
            f"split of {size} elements from {start} by {step} exceeds axis {a} of size {x[a]}"
        )
    out = list(x)
    out[a] = size
    return OpResult(tuple(out))


def _norm(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "norm")
    kind = str(p.get("kind", "batch"))
    default_axis = 0 if kind in ("batch", "group", "instance") else -1
    a = _axis(int(p.get("axis", default_axis)), len(x))
    # Batch/layer/group norm carry a scale and a shift per channel; RMS norm only a scale.
    per_channel = 1 if kind == "rms" else 2
    # Inference batch norm is a folded scale and shift (2 ops per element); the others compute
    # statistics first (about 5 ops per element).
    per_element = 2 if kind == "batch" else 5
    return OpResult(x, 0, per_channel * x[a], per_element * _numel(x))


def _unary(cost: int) -> Rule:
    def rule(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
        x = _one_input(ins, "unary op")
        return OpResult(x, 0, 0, cost * _numel(x))

    return rule


def _softmax(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    _axis(int(p.get("axis", -1)), len(_one_input(ins, "softmax")))
    return _unary(SOFTMAX_OPS)(p, ins)


def _embedding(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "embedding")
    n, d = int(p["num_embeddings"]), int(p["dim"])
    return OpResult((*x, d), 0, n * d, _numel(x) * d)


def _resize(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    c, h, w = _chw(_one_input(ins, "resize"), "resize")
    if "size" in p and p["size"] is not None:
        ho, wo = _pair(p["size"], "size")
    else:
        fh, fw = _pair(p.get("scale", 2), "scale")
        ho, wo = h * fh, w * fw
    return OpResult((c, ho, wo), 0, 0, c * ho * wo)


def _reshape(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "reshape")
    target = [int(d) for d in p["shape"]]
    if target.count(-1) > 1:
        raise GraphError("reshape allows at most one -1 dimension")
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known <= 0 or _numel(x) % known:
            raise GraphError(f"cannot reshape {list(x)} into {target}")
        target[target.index(-1)] = _numel(x) // known
    if math.prod(target) != _numel(x):
        raise GraphError(f"cannot reshape {list(x)} ({_numel(x)} elements) into {target}")
    return OpResult(tuple(target))


def _flatten(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "flatten")
    start = _axis(int(p.get("start", 0)), len(x))
    return OpResult((*x[:start], _numel(x[start:])))


def _transpose(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    x = _one_input(ins, "transpose")
    perm = [int(i) for i in p["perm"]]
    if sorted(perm) != list(range(len(x))):
        raise GraphError(f"perm {perm} is not a permutation of {len(x)} axes")
    return OpResult(tuple(x[i] for i in perm))


def _identity(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    return OpResult(_one_input(ins, "identity"))


def _input(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    if ins:
        raise GraphError("an input layer takes no inputs")
    return OpResult(tuple(int(d) for d in p["shape"]))


def _generic(p: Mapping[str, Any], ins: Sequence[Shape]) -> OpResult:
    shape = tuple(int(d) for d in p["shape"])
    return OpResult(
        shape,
        int(p.get("macs", 0)),
        int(p.get("weight_elems", 0)),
        int(p.get("vector_ops", _numel(shape))),
    )


#: Rule per op name; aliases map to the same rule.
OP_RULES: dict[str, Rule] = {
    "input": _input,
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "linear": _linear,
    "matmul": _matmul,
    "attention": _attention,
    "pool": _pool,
    "add": _elementwise,
    "mul": _elementwise,
    "concat": _concat,
    "split": _split,
    "norm": _norm,
    "activation": _unary(1),
    "softmax": _softmax,
    "embedding": _embedding,
    "resize": _resize,
    "reshape": _reshape,
    "flatten": _flatten,
    "transpose": _transpose,
    "identity": _identity,
    "generic": _generic,
}


def infer_op(op: str, params: Mapping[str, Any], input_shapes: Sequence[Shape]) -> OpResult:
    """Infer one layer's output shape and work.

    Raises
    ------
    GraphError
        If the op is unknown or its parameters do not fit its inputs.
    """
    rule = OP_RULES.get(op)
    if rule is None:
        raise GraphError(f"unknown op {op!r}; known ops: {', '.join(sorted(OP_RULES))}")
    try:
        return rule(params, input_shapes)
    except KeyError as exc:
        raise GraphError(f"{op} is missing its {exc.args[0]!r} field") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, GraphError):
            raise
        raise GraphError(f"{op}: bad field value ({exc})") from None
