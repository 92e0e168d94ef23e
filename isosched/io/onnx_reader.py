"""Import ONNX models as ``isosched.graph/v1`` graph documents.

The reader maps every ONNX node that computes on activations to one (or a few) layers of the
graph IR and folds away what does not: weights, constants and shape arithmetic. Weights are
optional: a model may carry them as initializers, or as typed graph inputs with no data (the
weight-free exports in ``models/onnx/``); only their shapes are used.

Conventions
-----------
* The leading batch dimension is dropped (batch 1 is assumed): an ONNX tensor ``[1, C, H, W]``
  becomes ``[C, H, W]`` and ``[1, S, D]`` becomes ``[S, D]``. A tensor whose leading dimension is
  not 1 (a reshaped ``[heads, S, d]`` in attention) keeps all its dimensions.
* Each layer's parameters are checked against the IR's own shape rules
  (:func:`isosched.graph.ops.infer_op`) before it is emitted. When the faithful mapping does not
  reproduce ONNX's inferred output shape, the node becomes a ``generic`` layer with that shape
  and an estimate of its MACs, so that totals stay right; the reason is kept in
  ``meta["notes"]``.
* Operators without a converter become ``generic`` layers too, with an
  :class:`UnknownOpWarning`; the import never fails because of an unknown operator.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnx.inliner
import onnx.numpy_helper
import onnx.shape_inference
from onnx.reference import ReferenceEvaluator
from pydantic import TypeAdapter, ValidationError

from isosched.errors import GraphError
from isosched.graph.ops import OpResult, infer_op
from isosched.graph.schema import GRAPH_SCHEMA, MAX_TENSOR_ELEMENTS, LayerSpec

__all__ = ["CONVERTERS", "UnknownOpWarning", "onnx_to_graph_doc", "read_onnx"]

Shape = tuple[int, ...]
Array = npt.NDArray[Any]

#: Largest ONNX file read (protobuf's own limit for one message).
MAX_ONNX_BYTES = 2 * 1024**3
#: Largest initializer turned into a NumPy value for constant folding (larger ones are weights).
_MAX_CONST_ELEMS = 1 << 16
#: Largest result kept from folding a constant subgraph.
_MAX_FOLD_ELEMS = 1 << 22
#: Notes kept in the document's meta.
_MAX_NOTES = 200

_LAYER = TypeAdapter(LayerSpec)
_COMMON = frozenset({"id", "op", "inputs", "name"})
_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


class UnknownOpWarning(UserWarning):
    """An ONNX operator has no converter and was imported as a ``generic`` layer."""


# --------------------------------------------------------------------------------------------
# Values flowing through the graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Act:
    """An activation: the output of a layer.

    ``full`` is the ONNX shape (batch included); ``ir`` the shape of the producing layer.
    """

    layer: str
    full: Shape
    ir: Shape


def _numel(shape: Iterable[int]) -> int:
    return math.prod(shape)


def _drop_batch(full: Sequence[int]) -> Shape:
    """IR shape of an ONNX tensor: the leading batch dimension of 1 removed."""
    if len(full) >= 2 and full[0] == 1:
        return tuple(int(d) for d in full[1:])
    if not full:
        return (1,)
    return tuple(int(d) for d in full)


def _neg_axis(axis: int, rank: int) -> int:
    """The same axis counted from the end (valid both with and without the batch dim)."""
    return axis - rank if axis >= 0 else axis


def _attrs(node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        try:
            out[a.name] = onnx.helper.get_attribute_value(a)
        except Exception:
            continue
    return out


def _ints(value: Any, default: Sequence[int]) -> list[int]:
    if value is None:
        return list(default)
    return [int(v) for v in value]


def _str_attr(value: Any, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --------------------------------------------------------------------------------------------
# The conversion context
# --------------------------------------------------------------------------------------------


class _Ctx:
    """State of one conversion: tensor classification, emitted layers and notes."""

    def __init__(self, model: Any, shapes: dict[str, Shape | None]) -> None:
        self.model = model
        self.opsets = {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}
        self.shapes = shapes
        self.acts: dict[str, _Act] = {}
        self.consts: dict[str, Array] = {}
        self.statics: set[str] = set()
        self.layers: list[dict[str, Any]] = []
        self.layer_by_id: dict[str, dict[str, Any]] = {}
        self.ids: set[str] = set()
        self.notes: list[str] = []
        self.unmapped: Counter[str] = Counter()
        self.warned: set[str] = set()
        self.uses: Counter[str] = Counter()
        self.graph_outputs = {o.name for o in model.graph.output}
        for node in model.graph.node:
            for name in node.input:
                if name:
                    self.uses[name] += 1

    # -- bookkeeping ---------------------------------------------------------------------

    def note(self, msg: str) -> None:
        if len(self.notes) < _MAX_NOTES:
            self.notes.append(msg)

    def unique_id(self, base: str) -> str:
        cand = _ID_BAD.sub("_", base).strip("_.-")[:200] or "layer"
        lid, k = cand, 2
        while lid in self.ids:
            lid = f"{cand}_{k}"
            k += 1
        self.ids.add(lid)
        return lid

    def is_act(self, name: str) -> bool:
        return bool(name) and name in self.acts

    def full_shape(self, name: str) -> Shape | None:
        if name in self.acts:
            return self.acts[name].full
        if name in self.consts:
            return tuple(int(d) for d in self.consts[name].shape)
        return self.shapes.get(name)

    def const(self, name: str) -> Array | None:
        return self.consts.get(name) if name else None

    def out_full(self, node: Any, idx: int = 0) -> Shape:
        """ONNX output shape of a node, guessed from its first activation input if unknown."""
        name = node.output[idx]
        shape = self.shapes.get(name)
        if shape is not None:
            return shape
        for i in node.input:
            if self.is_act(i):
                self.note(f"{_node_label(node)}: output shape unknown, assumed equal to input")
                return self.acts[i].full
        self.note(f"{_node_label(node)}: output shape unknown, assumed [1]")
        return (1,)

    # -- emitting layers -----------------------------------------------------------------

    def emit(
        self,
        base: str,
        op: str,
        params: Mapping[str, Any],
        inputs: Sequence[_Act],
        full: Shape,
        *,
        kind: str,
        macs: int = 0,
        weight_elems: int = 0,
        vector_ops: int | None = None,
        fallback: str = "generic",
        why: str | None = None,
    ) -> _Act:
        """Add one layer, checked against the IR's rules; fall back when they disagree.

        Parameters
        ----------
        base : str
            Wanted layer id (made unique here).
        op, params : str, Mapping
            IR op and its fields.
        inputs : sequence of _Act
            Operands.
        full : tuple of int
            ONNX output shape (batch included); the layer must produce its IR shape.
        kind : str
            ONNX op type, used for a generic fallback.
        macs, weight_elems, vector_ops : int
            Work of a generic fallback.
        fallback : {"generic", "reshape"}
            What to emit when the mapping fails; ``reshape`` for pure layout ops.
        why : str, optional
            Force the fallback with this reason.
        """
        want = _drop_batch(full)
        in_ids = [a.layer for a in inputs]
        in_shapes = [a.ir for a in inputs]
        if why is None:
            doc: dict[str, Any] = {"id": "x", "op": op, **params}
            if in_ids:
                doc["inputs"] = in_ids
            res, why = self._check(doc, in_shapes)
            if why is None and res is not None and res.shape != want:
                why = f"{op} gives {list(res.shape)}, ONNX says {list(want)}"
            if why is None:
                return self.add(base, op, params, in_ids, full, want)
        self.note(f"{base}: {kind} as {fallback} ({why})")
        if fallback == "reshape" and len(inputs) == 1 and _numel(inputs[0].ir) == _numel(want):
            return self.add(base, "reshape", {"shape": list(want)}, in_ids, full, want)
        return self.generic(
            base, kind, inputs, full, macs=macs, weight_elems=weight_elems, vector_ops=vector_ops
        )

    def generic(
        self,
        base: str,
        kind: str,
        inputs: Sequence[_Act],
        full: Shape,
        *,
        macs: int = 0,
        weight_elems: int = 0,
        vector_ops: int | None = None,
    ) -> _Act:
        """Add a ``generic`` layer with an explicit shape and work."""
        want = _drop_batch(full)
        if len(want) > 8 or any(d < 1 for d in want):
            self.note(
                f"{base}: shape {list(want)} not representable, used [{max(1, _numel(want))}]"
            )
            want = (max(1, _numel(want)),)
        params: dict[str, Any] = {
            "kind": kind[:128],
            "shape": list(want),
            "macs": int(macs),
            "weight_elems": int(weight_elems),
        }
        if vector_ops is not None:
            params["vector_ops"] = int(vector_ops)
        return self.add(base, "generic", params, [a.layer for a in inputs], full, want)

    def _check(
        self, doc: dict[str, Any], in_shapes: Sequence[Shape]
    ) -> tuple[OpResult | None, str | None]:
        try:
            spec = _LAYER.validate_python(doc)
        except ValidationError as exc:
            err = exc.errors()[0]
            return None, f"{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}"
        params = {
            k: v
            for k, v in spec.model_dump(by_alias=True, exclude_none=True).items()
            if k not in _COMMON
        }
        try:
            res = infer_op(spec.op, params, list(in_shapes))
        except GraphError as exc:
            return None, str(exc)
        if _numel(res.shape) > MAX_TENSOR_ELEMENTS:
            return None, "output too large"
        return res, None

    def add(
        self,
        base: str,
        op: str,
        params: Mapping[str, Any],
        in_ids: Sequence[str],
        full: Shape,
        ir: Shape,
    ) -> _Act:
        lid = self.unique_id(base)
        doc: dict[str, Any] = {"id": lid, "op": op}
        if in_ids:
            doc["inputs"] = list(in_ids)
        doc.update(params)
        self.layers.append(doc)
        self.layer_by_id[lid] = doc
        return _Act(lid, tuple(full), tuple(ir))

    def bind(self, name: str, act: _Act) -> None:
        if name:
            self.acts[name] = act

    def bind_extra_outputs(self, node: Any, base: str, first: _Act) -> None:
        """Outputs past the first: zero-work ``generic`` layers reading the first one."""
        for k, out in enumerate(node.output[1:], start=1):
            if not out or (self.uses[out] == 0 and out not in self.graph_outputs):
                continue
            full = self.out_full(node, k)
            act = self.generic(f"{base}_out{k}", node.op_type, [first], full, vector_ops=0)
            self.bind(out, act)


def _node_label(node: Any) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def _node_base(node: Any) -> str:
    return str(node.name or (node.output[0] if node.output else node.op_type))


Converter = Callable[[_Ctx, Any], None]


# --------------------------------------------------------------------------------------------
# Converters
# --------------------------------------------------------------------------------------------


def _acts_of(ctx: _Ctx, node: Any) -> list[_Act]:
    return [ctx.acts[i] for i in node.input if ctx.is_act(i)]


def _first_act(ctx: _Ctx, node: Any) -> _Act:
    acts = _acts_of(ctx, node)
    if not acts:  # pragma: no cover - converters only run on nodes reading an activation
        raise GraphError(f"{_node_label(node)} reads no activation")
    return acts[0]


def _generic_node(
    ctx: _Ctx, node: Any, *, macs: int = 0, vector_ops: int | None = None, weight_elems: int = 0
) -> None:
    base = _node_base(node)
    act = ctx.generic(
        base,
        node.op_type,
        _acts_of(ctx, node),
        ctx.out_full(node),
        macs=macs,
        vector_ops=vector_ops,
        weight_elems=weight_elems,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def _weight_shape(ctx: _Ctx, name: str) -> Shape | None:
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


def _conv_like(x: int, w: int, b: int | None) -> Converter:
    def convert(ctx: _Ctx, node: Any) -> None:
        _conv(ctx, node, x, w, b)

    return convert


def _conv(ctx: _Ctx, node: Any, xi: int, wi: int, bi: int | None) -> None:
    base, a = _node_base(node), _attrs(node)
    full = ctx.out_full(node)
    x_name = node.input[xi]
    w_name = node.input[wi] if len(node.input) > wi else ""
    wshape = _weight_shape(ctx, w_name)
    has_bias = bi is not None and len(node.input) > bi and bool(node.input[bi])
    x = ctx.acts.get(x_name)
    if x is None:
        _generic_node(ctx, node)
        return
    groups = int(a.get("group", 1))
    per_out = _numel(wshape[1:]) if wshape else 0
    macs = _numel(full) * per_out
    wel = _numel(wshape) + (full[1] if has_bias and len(full) > 1 else 0) if wshape else 0
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
        ks = _ints(a.get("kernel_shape"), wshape[2:])
        ss = _ints(a.get("strides"), [1, 1])
        ds = _ints(a.get("dilations"), [1, 1])
        pads = _auto_pads(_str_attr(a.get("auto_pad"), "NOTSET"), x.full[2:], ks, ss, ds)
        if pads is None:
            pads = _ints(a.get("pads"), [0, 0, 0, 0])
        if len(full) != 4:
            why = f"output rank {len(full)}"
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


def _conv_transpose(ctx: _Ctx, node: Any) -> None:
    base, a = _node_base(node), _attrs(node)
    full = ctx.out_full(node)
    x = ctx.acts.get(node.input[0])
    wshape = _weight_shape(ctx, node.input[1]) if len(node.input) > 1 else None
    if x is None or wshape is None:
        _generic_node(ctx, node)
        return
    groups = int(a.get("group", 1))
    has_bias = len(node.input) > 2 and bool(node.input[2])
    macs = _numel(x.full) * _numel(wshape[1:])
    wel = _numel(wshape) + (full[1] if has_bias and len(full) > 1 else 0)
    why: str | None = None
    params: dict[str, Any] = {}
    inputs = [x]
    if ctx.is_act(node.input[1]):
        inputs.append(ctx.acts[node.input[1]])
        why = "weights computed at run time"
    elif len(x.full) != 4 or len(full) != 4:
        why = f"{len(x.full) - 2}-d transposed convolution"
    else:
        ks = _ints(a.get("kernel_shape"), wshape[2:])
        ss = _ints(a.get("strides"), [1, 1])
        ds = _ints(a.get("dilations"), [1, 1])
        pads = _ints(a.get("pads"), [0, 0, 0, 0])
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


def _gemm(ctx: _Ctx, node: Any) -> None:
    base, a = _node_base(node), _attrs(node)
    full = ctx.out_full(node)
    ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
    an, bn = node.input[0], node.input[1]
    cn = node.input[2] if len(node.input) > 2 else ""
    ashape, bshape = ctx.full_shape(an), ctx.full_shape(bn)
    k = (ashape[0] if ta else ashape[-1]) if ashape else 0
    macs = _numel(full) * k
    if ctx.is_act(an) and not ctx.is_act(bn) and not ta and bshape and len(bshape) == 2:
        n = bshape[0] if tb else bshape[1]
        bias = bool(cn) and not ctx.is_act(cn)
        wel = _numel(bshape) + (n if bias else 0)
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
        act = ctx.generic(base, "Gemm", _acts_of(ctx, node), full, macs=macs)
    ctx.bind(node.output[0], act)


def _matmul_like(ai: int, bi: int) -> Converter:
    def convert(ctx: _Ctx, node: Any) -> None:
        _matmul(ctx, node, ai, bi)

    return convert


def _matmul(ctx: _Ctx, node: Any, ai: int, bi: int) -> None:
    base = _node_base(node)
    full = ctx.out_full(node)
    an, bn = node.input[ai], node.input[bi]
    ashape, bshape = ctx.full_shape(an), ctx.full_shape(bn)
    k = ashape[-1] if ashape else 0
    macs = _numel(full) * k
    if ctx.is_act(an) and not ctx.is_act(bn) and bshape is not None and len(bshape) == 2:
        act = ctx.emit(
            base,
            "linear",
            {"out_features": int(bshape[1])},
            [ctx.acts[an]],
            full,
            kind=node.op_type,
            macs=macs,
            weight_elems=_numel(bshape),
        )
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
        wel = _numel(bshape) if bshape and not ctx.is_act(bn) else 0
        if ashape and not ctx.is_act(an):
            wel += _numel(ashape)
        act = ctx.generic(
            base, node.op_type, _acts_of(ctx, node), full, macs=macs, weight_elems=wel
        )
        ctx.note(f"{act.layer}: {node.op_type} with a constant left operand or a batched weight")
    ctx.bind(node.output[0], act)


def _einsum(ctx: _Ctx, node: Any) -> None:
    eq = _str_attr(_attrs(node).get("equation"), "").replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, name in zip(lhs, node.input, strict=False):
        shape = ctx.full_shape(name)
        letters = [c for c in term if c.isalpha()]
        if shape is None or "..." in term or len(letters) != len(shape):
            continue
        for c, d in zip(letters, shape, strict=True):
            sizes[c] = max(sizes.get(c, 1), int(d))
    macs = _numel(sizes.values()) if len(lhs) > 1 else 0
    _generic_node(ctx, node, macs=macs)


def _rnn(ctx: _Ctx, node: Any) -> None:
    a = _attrs(node)
    x, w, r = (ctx.full_shape(n) for n in node.input[:3])
    macs = 0
    if x and w and r:
        layout = int(a.get("layout", 0))
        seq, batch = (x[0], x[1]) if layout == 0 else (x[1], x[0])
        macs = seq * batch * w[0] * w[1] * (w[2] + r[2])
    wel = sum(_numel(s) for s in (w, r) if s)
    _generic_node(ctx, node, macs=macs, weight_elems=wel)


def _attention(ctx: _Ctx, node: Any) -> None:
    """ONNX ``Attention`` (opset 23): q, k, v as ``[B, S, H*d]`` or ``[B, H, S, d]``."""
    a = _attrs(node)
    base = _node_base(node)
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


_ACTIVATIONS = {
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


def _activation(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    kind = _ACTIVATIONS.get(node.op_type, node.op_type.lower())
    wel = 0
    if node.op_type == "PRelu" and len(node.input) > 1:
        wel = _numel(ctx.full_shape(node.input[1]) or ())
    full = ctx.out_full(node)
    act = ctx.emit(
        _node_base(node),
        "activation",
        {"kind": kind},
        [x],
        full,
        kind=node.op_type,
        weight_elems=wel,
    )
    ctx.bind(node.output[0], act)


_BINARY_ADD = {"Add", "Sub", "Sum"}
_BINARY_MUL = {"Mul", "Div"}


def _try_fold_bias(ctx: _Ctx, node: Any, x_name: str, other: str) -> bool:
    """Fold ``Add(linear or conv output, constant bias)`` into the producing layer's bias."""
    x = ctx.acts[x_name]
    if node.op_type != "Add" or ctx.uses[x_name] != 1 or x_name in ctx.graph_outputs:
        return False
    src = ctx.layer_by_id.get(x.layer)
    bshape = ctx.full_shape(other)
    if src is None or bshape is None or src.get("bias") or x.full != ctx.out_full(node):
        return False
    dims = [d for d in bshape if d != 1]
    if src["op"] == "linear":
        ok = dims == [src["out_features"]] and bshape[-1] == src["out_features"]
    elif src["op"] in ("conv", "conv_transpose"):
        ok = (
            dims == [src["out_channels"]] and len(bshape) >= 3 and bshape[-3] == src["out_channels"]
        )
    else:
        return False
    if ok:
        src["bias"] = True
        ctx.bind(node.output[0], x)
    return ok


def _binary(ctx: _Ctx, node: Any) -> None:
    base = _node_base(node)
    full = ctx.out_full(node)
    acts = _acts_of(ctx, node)
    op = node.op_type
    if len(acts) == len([i for i in node.input if i]) and len(acts) >= 2:
        ir_op = "add" if op in _BINARY_ADD else "mul" if op in _BINARY_MUL else None
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


def _where(ctx: _Ctx, node: Any) -> None:
    acts = _acts_of(ctx, node)
    full = ctx.out_full(node)
    if len(acts) == 1:
        act = ctx.emit(_node_base(node), "activation", {"kind": "where"}, acts, full, kind="Where")
    else:
        act = ctx.generic(_node_base(node), "Where", acts, full)
    ctx.bind(node.output[0], act)


def _softmax(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    a = _attrs(node)
    default = -1 if ctx.opsets.get("ai.onnx", 13) >= 13 else 1
    axis = _neg_axis(int(a.get("axis", default)), len(x.full))
    act = ctx.emit(
        _node_base(node), "softmax", {"axis": axis}, [x], ctx.out_full(node), kind=node.op_type
    )
    ctx.bind(node.output[0], act)


_NORM_KIND = {
    "BatchNormalization": "batch",
    "InstanceNormalization": "instance",
    "GroupNormalization": "group",
    "LayerNormalization": "layer",
    "RMSNormalization": "rms",
    "SimplifiedLayerNormalization": "rms",
    "SkipSimplifiedLayerNormalization": "rms",
}


def _norm(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    kind = _NORM_KIND[node.op_type]
    rank = len(x.full)
    if kind in ("batch", "instance", "group"):
        axis = _neg_axis(1, rank) if rank >= 2 else -1
    else:
        axis = _neg_axis(int(_attrs(node).get("axis", -1)), rank)
    base = _node_base(node)
    act = ctx.emit(
        base,
        "norm",
        {"kind": kind, "axis": axis},
        [x],
        ctx.out_full(node),
        kind=node.op_type,
        vector_ops=4 * _numel(x.full),
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def _pool(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    a, base, full = _attrs(node), _node_base(node), ctx.out_full(node)
    kind = "max" if "Max" in node.op_type else "avg"
    if node.op_type.startswith("Global"):
        act = ctx.emit(base, "pool", {"kind": kind, "global": True}, [x], full, kind=node.op_type)
        ctx.bind(node.output[0], act)
        return
    why: str | None = None
    params: dict[str, Any] = {}
    ks = _ints(a.get("kernel_shape"), [])
    ss = _ints(a.get("strides"), [1] * len(ks))
    ds = _ints(a.get("dilations"), [1] * len(ks))
    if len(ks) != 2 or len(x.full) != 4 or len(full) != 4:
        why = f"{len(ks)}-d pooling"
    elif ds != [1, 1]:
        why = f"dilations {ds}"
    else:
        pads = _auto_pads(_str_attr(a.get("auto_pad"), "NOTSET"), x.full[2:], ks, ss, ds)
        if pads is None:
            pads = _ints(a.get("pads"), [0, 0, 0, 0])
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
        vector_ops=_numel(full) * _numel(ks),
        why=why,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def _reduce(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    a, base, full = _attrs(node), _node_base(node), ctx.out_full(node)
    axes: list[int] | None = None
    if "axes" in a:
        axes = _ints(a["axes"], [])
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
                {"shape": list(_drop_batch(full))},
                [act],
                full,
                kind="Squeeze",
            )
    else:
        act = ctx.generic(base, node.op_type, [x], full, vector_ops=_numel(x.full))
    ctx.bind(node.output[0], act)


def _concat(ctx: _Ctx, node: Any) -> None:
    acts = _acts_of(ctx, node)
    full = ctx.out_full(node)
    rank = len(full)
    axis = _neg_axis(int(_attrs(node).get("axis", 0)), rank)
    nonempty = [i for i in node.input if i and _numel(ctx.full_shape(i) or (1,)) > 0]
    why = None if len(acts) == len(nonempty) else "constant operands"
    act = ctx.emit(
        _node_base(node),
        "concat",
        {"axis": axis},
        acts,
        full,
        kind="Concat",
        vector_ops=0,
        why=why,
    )
    ctx.bind(node.output[0], act)


def _split(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    a, base = _attrs(node), _node_base(node)
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
                {"axis": _neg_axis(axis, rank), "start": start, "size": size},
                [x],
                full,
                kind="Split",
                vector_ops=0,
            )
            ctx.bind(out, act)
        start += size


def _slices(
    ctx: _Ctx, node: Any, x: _Act, cuts: Sequence[tuple[int, int, int]], full: Shape, kind: str
) -> _Act:
    """Chain one ``split`` layer per cut ``(axis, start, size)``; the last yields ``full``.

    Cuts that keep a whole axis are skipped; with none left, ``x`` itself is returned.
    """
    base = _node_base(node)
    cur = x
    shape = list(x.full)
    cuts = [c for c in cuts if not (c[1] == 0 and c[2] == x.full[c[0]])]
    for n, (axis, start, size) in enumerate(cuts):
        shape[axis] = size
        step_full = tuple(shape) if n < len(cuts) - 1 else full
        cur = ctx.emit(
            base if n == 0 else f"{base}_{n + 1}",
            "split",
            {"axis": _neg_axis(axis, len(shape)), "start": start, "size": size},
            [cur],
            step_full,
            kind=kind,
            vector_ops=0,
        )
    return cur


def _slice(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    full = ctx.out_full(node)
    a = _attrs(node)
    rank = len(x.full)
    if ctx.opsets.get("ai.onnx", 13) < 10:
        starts, ends = _ints(a.get("starts"), []), _ints(a.get("ends"), [])
        axes = _ints(a.get("axes"), range(len(starts)))
        steps = [1] * len(starts)
    else:
        vals = [ctx.const(n) if n else None for n in list(node.input[1:5]) + [""] * 4][:4]
        if (
            vals[0] is None
            or vals[1] is None
            or any(n and v is None for n, v in zip(node.input[3:5], vals[2:], strict=False))
        ):
            act = ctx.generic(_node_base(node), "Slice", [x], full, vector_ops=0)
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
    cuts: list[tuple[int, int, int]] = []
    ok = True
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=False):
        ax = ax + rank if ax < 0 else ax
        if not 0 <= ax < rank:
            ok = False
            break
        lo, hi, step = slice(s, e, st).indices(x.full[ax])
        size = len(range(lo, hi, step))
        if size == x.full[ax]:
            continue
        if step != 1 or size <= 0:
            ok = False
            break
        cuts.append((ax, lo, size))
    if not ok:
        act = ctx.generic(_node_base(node), "Slice", [x], full, vector_ops=0)
        ctx.note(f"{act.layer}: strided slice")
    elif not cuts:
        act = ctx.emit(_node_base(node), "identity", {}, [x], full, kind="Slice")
    else:
        act = _slices(ctx, node, x, cuts, full, "Slice")
    ctx.bind(node.output[0], act)


def _gather(ctx: _Ctx, node: Any) -> None:
    base, full = _node_base(node), ctx.out_full(node)
    dn, idx = node.input[0], node.input[1]
    axis = int(_attrs(node).get("axis", 0))
    if not ctx.is_act(dn) and ctx.is_act(idx):
        table = ctx.full_shape(dn)
        if table is not None and len(table) == 2 and axis in (0, -2):
            act = ctx.emit(
                base,
                "embedding",
                {"num_embeddings": int(table[0]), "dim": int(table[1])},
                [ctx.acts[idx]],
                full,
                kind="Gather",
                weight_elems=_numel(table),
            )
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
                    {"shape": list(_drop_batch(full))},
                    [part],
                    full,
                    kind="Gather",
                    fallback="reshape",
                )
            ctx.bind(node.output[0], act)
            return
    act = ctx.generic(base, node.op_type, _acts_of(ctx, node), full, vector_ops=0)
    ctx.note(f"{act.layer}: {node.op_type} not expressible as embedding or slice")
    ctx.bind(node.output[0], act)


def _resize(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    full = ctx.out_full(node)
    mode = _str_attr(_attrs(node).get("mode"), "nearest")[:32]
    why = None
    params: dict[str, Any] = {"mode": mode}
    if len(full) != 4 or len(x.full) != 4 or full[:2] != x.full[:2]:
        why = "not a 2-d spatial resize"
    else:
        params["size"] = [int(full[2]), int(full[3])]
    act = ctx.emit(_node_base(node), "resize", params, [x], full, kind=node.op_type, why=why)
    ctx.bind(node.output[0], act)


def _reshape_like(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    full = ctx.out_full(node)
    base = _node_base(node)
    if node.op_type == "Flatten" and len(x.full) >= 2 and x.full[0] == 1:
        axis = int(_attrs(node).get("axis", 1))
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
        {"shape": list(_drop_batch(full))},
        [x],
        full,
        kind=node.op_type,
        vector_ops=0,
    )
    ctx.bind(node.output[0], act)


def _transpose(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    full = ctx.out_full(node)
    rank = len(x.full)
    perm = _ints(_attrs(node).get("perm"), list(range(rank - 1, -1, -1)))
    dropped = len(x.ir) == rank - 1 and len(_drop_batch(full)) == rank - 1
    if dropped and perm and perm[0] == 0:
        ir_perm = [p - 1 for p in perm[1:]]
    elif len(x.ir) == rank:
        ir_perm = perm
    else:
        ir_perm = []
    act = ctx.emit(
        _node_base(node),
        "transpose",
        {"perm": ir_perm},
        [x],
        full,
        kind="Transpose",
        fallback="reshape",
        why=None if ir_perm else "permutes the batch dimension",
    )
    ctx.bind(node.output[0], act)


def _identity(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    base = _node_base(node)
    act = ctx.emit(base, "identity", {}, [x], ctx.out_full(node), kind=node.op_type)
    ctx.bind(node.output[0], act)
    for out in node.output[1:]:  # Dropout's mask: not an activation at inference
        if out:
            ctx.statics.add(out)


def _expand_like(ctx: _Ctx, node: Any) -> None:
    x = _first_act(ctx, node)
    full = ctx.out_full(node)
    base = _node_base(node)
    if tuple(full) == x.full:
        act = ctx.emit(base, "identity", {}, [x], full, kind=node.op_type)
    else:
        act = ctx.generic(base, node.op_type, _acts_of(ctx, node), full, vector_ops=0)
    ctx.bind(node.output[0], act)


def _shape_of(ctx: _Ctx, node: Any) -> None:
    """``Shape``/``Size`` of an activation: a constant, since shapes are static here."""
    x = _first_act(ctx, node)
    a = _attrs(node)
    if node.op_type == "Size":
        ctx.consts[node.output[0]] = np.array(_numel(x.full), dtype=np.int64)
        return
    dims = list(x.full)
    start = int(a.get("start", 0))
    end = a.get("end")
    ctx.consts[node.output[0]] = np.array(
        dims[start:] if end is None else dims[start : int(end)], dtype=np.int64
    )


def _static_of(ctx: _Ctx, node: Any) -> None:
    """Ops whose output depends only on their input's shape (``*Like`` generators)."""
    for out in node.output:
        if out:
            ctx.statics.add(out)


#: Element operations per output element of vector-only ops without an IR op of their own.
_VECTOR_COST = {"LRN": 7, "MeanVarianceNormalization": 4, "LpNormalization": 3}


def _vector_op(ctx: _Ctx, node: Any) -> None:
    """Vector-unit ops with no IR equivalent: ``generic`` with an element-op estimate."""
    full = ctx.out_full(node)
    _generic_node(ctx, node, vector_ops=_VECTOR_COST.get(node.op_type, 1) * _numel(full))


def _mark_unknown(ctx: _Ctx, node: Any) -> None:
    key = f"{node.domain + '::' if node.domain else ''}{node.op_type}"
    ctx.unmapped[key] += 1
    if key not in ctx.warned:
        ctx.warned.add(key)
        warnings.warn(
            f"ONNX op {key} has no converter; imported as a generic layer with no MACs "
            f"(first at {_node_label(node)})",
            UnknownOpWarning,
            stacklevel=4,
        )
    _generic_node(ctx, node)


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
    "Conv": _conv_like(0, 1, 2),
    "ConvInteger": _conv_like(0, 1, None),
    "QLinearConv": _conv_like(0, 3, 8),
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul_like(0, 1),
    "MatMulInteger": _matmul_like(0, 1),
    "QLinearMatMul": _matmul_like(0, 3),
    "Einsum": _einsum,
    "LSTM": _rnn,
    "GRU": _rnn,
    "RNN": _rnn,
    "Attention": _attention,
    **dict.fromkeys(_ACTIVATIONS, _activation),
    **dict.fromkeys(_BINARY_ADD | _BINARY_MUL | _GENERIC_VECTOR, _binary),
    "Where": _where,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Hardmax": _softmax,
    **dict.fromkeys(_NORM_KIND, _norm),
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _pool,
    "GlobalMaxPool": _pool,
    **dict.fromkeys(_REDUCE_OPS, _reduce),
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
    "Resize": _resize,
    "Upsample": _resize,
    **dict.fromkeys(
        ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "DepthToSpace", "SpaceToDepth"],
        _reshape_like,
    ),
    "Transpose": _transpose,
    **dict.fromkeys(["Identity", "Dropout", "Cast", "CastLike"], _identity),
    **dict.fromkeys(["Expand", "Tile", "Pad"], _expand_like),
    **dict.fromkeys(_VECTOR_COST, _vector_op),
    "Shape": _shape_of,
    "Size": _shape_of,
    **dict.fromkeys(["EyeLike", "RandomNormalLike", "RandomUniformLike"], _static_of),
}

#: Ops producing no activation: folded when their inputs are known, else treated as weights.
_NON_DATA = frozenset({"Constant", "ConstantOfShape", "Range", "RandomNormal", "RandomUniform"})


# --------------------------------------------------------------------------------------------
# Weight detection, shape inference, constant folding
# --------------------------------------------------------------------------------------------

#: Operand positions that hold parameters, per op type.
_WEIGHT_OPERANDS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "ConvInteger": (1,),
    "QLinearConv": (3, 8),
    "Gemm": (1, 2),
    "BatchNormalization": (1, 2, 3, 4),
    "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2),
    "LayerNormalization": (1, 2),
    "RMSNormalization": (1,),
    "SimplifiedLayerNormalization": (1,),
    "PRelu": (1,),
    "LSTM": (1, 2, 3),
    "GRU": (1, 2, 3),
    "RNN": (1, 2, 3),
}
_PASS_THROUGH = frozenset(
    {
        "Transpose",
        "Cast",
        "CastLike",
        "Identity",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "DequantizeLinear",
        "Flatten",
    }
)


def _weight_inputs(graph: Any, shapes: Mapping[str, Shape | None], inits: set[str]) -> set[str]:
    """Graph inputs (without initializer) used as parameters rather than data."""
    producer = {o: n for n in graph.node for o in n.output if o}
    candidates = {i.name for i in graph.input} - inits

    def source(name: str) -> str | None:
        seen = 0
        while name and name not in candidates and seen < 16:
            node = producer.get(name)
            if node is None or node.op_type not in _PASS_THROUGH or not node.input:
                return None
            name = node.input[0]
            seen += 1
        return name if name in candidates else None

    def rank(name: str) -> int | None:
        s = shapes.get(name)
        return None if s is None else len(s)

    found: set[str] = set()
    for node in graph.node:
        op = node.op_type
        positions: list[int] = list(_WEIGHT_OPERANDS.get(op, ()))
        if op in ("MatMul", "MatMulInteger") and len(node.input) > 1:
            if rank(node.input[1]) in (1, 2):
                positions.append(1)
        elif op == "Gather" and len(node.input) > 1:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            table = shapes.get(node.input[0])
            if axis == 0 and table is not None and len(table) == 2 and table[0] > 1:
                positions.append(0)
        elif op in ("Add", "Sub", "Mul", "Div") and len(node.input) == 2:
            r0, r1 = rank(node.input[0]), rank(node.input[1])
            if r0 is not None and r1 is not None and r0 != r1:
                positions.append(0 if r0 < r1 else 1)
        for p in positions:
            if p < len(node.input):
                src = source(node.input[p])
                if src is not None:
                    found.add(src)
    return found


def _fix_dims(model: Any, dims: Mapping[str, int]) -> None:
    """Give symbolic input dimensions a value: leading ones are the batch (1)."""
    for vi in model.graph.input:
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                continue
            sym = d.dim_param
            if sym in dims:
                d.dim_value = int(dims[sym])
            elif k == 0:
                d.dim_value = 1
            else:
                raise GraphError(
                    f"graph input {vi.name!r} has symbolic dimension {sym or '?'!r} at axis {k}; "
                    "export the model with static shapes or pass dims={...}"
                )
    for vi in model.graph.output:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            tt.ClearField("shape")


def _shape_of_vi(vi: Any) -> Shape | None:
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _collect_shapes(model: Any) -> dict[str, Shape | None]:
    g = model.graph
    out: dict[str, Shape | None] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shape = _shape_of_vi(vi)
        if shape is not None or vi.name not in out:
            out[vi.name] = shape
    for t in g.initializer:
        out[t.name] = tuple(int(d) for d in t.dims)
    return out


def _copy(model: Any) -> Any:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _infer(model: Any) -> tuple[Any, dict[str, Shape | None]]:
    """Run ONNX shape inference, patching ops it cannot type (custom domains) as needed."""
    # Stale value_info (symbolic dims from an earlier pass) would shadow better results; keep
    # only what describes outputs of ops that shape inference cannot type.
    untyped = {
        o
        for n in model.graph.node
        if not onnx.defs.has(n.op_type, n.domain or "")
        for o in n.output
    }
    kept = [vi for vi in model.graph.value_info if vi.name in untyped]
    model = _copy(model)
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        warnings.warn(
            f"ONNX shape inference failed ({exc}); using shapes in the file", stacklevel=3
        )
        return model, _collect_shapes(model)
    for _ in range(8):
        shapes = _collect_shapes(inferred)
        patched = False
        for node in inferred.graph.node:
            if onnx.defs.has(node.op_type, node.domain or ""):
                continue
            src = next((i for i in node.input if i and shapes.get(i) is not None), None)
            for out in node.output:
                if out and shapes.get(out) is None and src is not None:
                    vi = next((v for v in inferred.graph.input if v.name == src), None) or next(
                        (v for v in inferred.graph.value_info if v.name == src), None
                    )
                    if vi is None:
                        continue
                    new = inferred.graph.value_info.add()
                    new.CopyFrom(vi)
                    new.name = out
                    shapes[out] = shapes[src]
                    patched = True
        if not patched:
            return inferred, shapes
        try:
            inferred = onnx.shape_inference.infer_shapes(inferred, data_prop=True)
        except Exception:
            return inferred, shapes
    return inferred, _collect_shapes(inferred)


def _to_array(t: Any) -> Array | None:
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    if _numel(t.dims) > _MAX_CONST_ELEMS:
        return None
    try:
        value = onnx.numpy_helper.to_array(t)
    except Exception:
        return None
    return value if value.size == _numel(t.dims) else None


_RANDOM = frozenset({"RandomNormal", "RandomUniform", "Multinomial", "Bernoulli"})


def _evaluate(node: Any, values: Mapping[str, Array], opsets: Sequence[Any]) -> list[Array] | None:
    """Run one node on constant inputs with ONNX's reference evaluator (None if impossible)."""
    names = [i for i in node.input if i]
    if node.op_type in _RANDOM or node.domain not in ("", "ai.onnx"):
        return None
    if not all(n in values for n in names):
        return None
    live = [o for o in node.output if o]
    if node.op_type == "GatherElements" and len(names) == 2:
        # onnx's reference implementation fails on some valid inputs.
        axis = next((int(a.i) for a in node.attribute if a.name == "axis"), 0)
        try:
            return [np.take_along_axis(values[names[0]], values[names[1]], axis=axis)]
        except (ValueError, IndexError):
            return None
    try:
        g = onnx.helper.make_graph(
            [node],
            "fold",
            [
                onnx.helper.make_tensor_value_info(
                    n, onnx.helper.np_dtype_to_tensor_dtype(values[n].dtype), None
                )
                for n in dict.fromkeys(names)
            ],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in live],
        )
        m = onnx.helper.make_model(g, opset_imports=list(opsets))
        outs = ReferenceEvaluator(m).run(None, {n: values[n] for n in names})
    except Exception:
        return None
    arrays = [np.asarray(v) for v in outs]
    if len(arrays) != len(live) or any(v.size > _MAX_FOLD_ELEMS for v in arrays):
        return None
    return arrays


def _fold(ctx: _Ctx, node: Any) -> None:
    """Evaluate a node whose inputs are all known constants; else mark its outputs static."""
    outs = _evaluate(node, ctx.consts, ctx.model.opset_import)
    live = [o for o in node.output if o]
    if outs is not None:
        for o, v in zip(live, outs, strict=True):
            ctx.consts[o] = v
        return
    ctx.statics.update(live)


def _elem_types(model: Any) -> dict[str, int]:
    g = model.graph
    out = {vi.name: vi.type.tensor_type.elem_type for vi in [*g.input, *g.value_info, *g.output]}
    out.update({t.name: t.data_type for t in g.initializer})
    return out


def _prefold(model: Any, shapes: Mapping[str, Shape | None]) -> tuple[Any, bool]:
    """Fold constant subgraphs into initializers so that shape inference can see through them.

    Folds nodes whose inputs are all constants, ``Shape``/``Size`` of tensors of known shape and
    ``CastLike`` of a constant. Nodes producing graph outputs are kept.
    """
    g = model.graph
    values: dict[str, Array] = {}
    for t in g.initializer:
        v = _to_array(t)
        if v is not None:
            values[t.name] = v
    types = _elem_types(model)
    outputs = {o.name for o in g.output}
    known = {i.name for i in g.input} | {t.name for t in g.initializer}
    kept: list[Any] = []
    folded: dict[str, Array] = {}
    for node in _toposort(g, known):
        live = [o for o in node.output if o]
        result: list[Array] | None = None
        if node.domain in ("", "ai.onnx") and not outputs.intersection(live):
            src = node.input[0] if node.input else ""
            src_shape = shapes.get(src) if src else None
            if node.op_type == "Shape" and src_shape is not None:
                a = _attrs(node)
                end = a.get("end")
                dims = list(src_shape)
                start = int(a.get("start", 0))
                result = [np.array(dims[start:] if end is None else dims[start : int(end)])]
                result[0] = result[0].astype(np.int64)
            elif node.op_type == "Size" and src_shape is not None:
                result = [np.array(_numel(src_shape), dtype=np.int64)]
            elif node.op_type == "CastLike" and src in values and len(node.input) > 1:
                to = types.get(node.input[1], 0)
                if to:
                    with contextlib.suppress(Exception):
                        dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
                        result = [values[src].astype(dtype)]
            else:
                result = _evaluate(node, values, model.opset_import)
        if result is None:
            kept.append(node)
            continue
        for o, v in zip(live, result, strict=True):
            values[o] = v
            folded[o] = v
    if not folded:
        return model, False
    needed = {i for n in kept for i in n.input if i in folded}
    new = _copy(model)
    del new.graph.node[:]
    new.graph.node.extend(kept)
    for name in sorted(needed):
        try:
            tensor = onnx.numpy_helper.from_array(folded[name], name)
        except Exception:
            return model, False
        new.graph.initializer.append(tensor)
        if model.ir_version < 4:  # initializers must also be graph inputs before IR v4
            new.graph.input.append(
                onnx.helper.make_tensor_value_info(name, tensor.data_type, tensor.dims)
            )
    return new, True


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _toposort(graph: Any, known: set[str]) -> list[Any]:
    nodes = list(graph.node)
    avail = set(known)
    producers = {o for n in nodes for o in n.output if o}
    for n in nodes:
        for i in n.input:
            if i and i not in avail and i not in producers:
                raise GraphError(f"{_node_label(n)} reads undefined tensor {i!r}")
    order: list[Any] = []
    pending = nodes
    while pending:
        rest = []
        for n in pending:
            if all(not i or i in avail for i in n.input):
                order.append(n)
                avail.update(o for o in n.output if o)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise GraphError(f"ONNX graph has a cycle through {_node_label(rest[0])}")
        pending = rest
    return order


def onnx_to_graph_doc(
    model: onnx.ModelProto, name: str, *, dims: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Convert an in-memory ONNX model to an ``isosched.graph/v1`` document.

    Parameters
    ----------
    model : onnx.ModelProto
        The model; it is not modified.
    name : str
        Graph name written to the document.
    dims : Mapping of str to int, optional
        Values for symbolic input dimensions other than a leading batch dimension (which is
        always taken as 1).

    Returns
    -------
    dict
        A graph document that :func:`isosched.graph.parse_graph` accepts.

    Raises
    ------
    GraphError
        If the model has no graph, no data input, an undefined tensor or a cycle, or a symbolic
        input dimension that ``dims`` does not give.

    Warns
    -----
    UnknownOpWarning
        Once per operator type without a converter (imported as a ``generic`` layer).
    """
    if not isinstance(model, onnx.ModelProto):
        raise GraphError(f"expected an onnx.ModelProto, got {type(model).__name__}")
    m = _copy(model)
    if not m.graph.node and not m.graph.input:
        raise GraphError("the ONNX model has no graph (no nodes and no inputs)")
    if m.functions:
        with contextlib.suppress(Exception):  # keep the calls: imported as generic layers
            m = onnx.inliner.inline_local_functions(m)
    _fix_dims(m, dims or {})
    m, shapes = _infer(m)
    for _ in range(8):
        m, changed = _prefold(m, shapes)
        if not changed:
            break
        m, shapes = _infer(m)
    graph = m.graph
    ctx = _Ctx(m, shapes)

    init_names = {t.name for t in graph.initializer}
    for t in graph.initializer:
        value = _to_array(t)
        if value is not None:
            ctx.consts[t.name] = value
        else:
            ctx.statics.add(t.name)
    weights = _weight_inputs(graph, shapes, init_names)
    data_inputs = []
    for vi in graph.input:
        if vi.name in init_names:
            continue
        if vi.name in weights:
            ctx.statics.add(vi.name)
            continue
        if ctx.uses[vi.name] == 0 and vi.name not in ctx.graph_outputs:
            ctx.note(f"graph input {vi.name!r} is not used; skipped")
            continue
        full = shapes.get(vi.name)
        if full is None:
            raise GraphError(f"graph input {vi.name!r} has no static tensor shape")
        ir = _drop_batch(full)
        if len(ir) > 8 or min(ir) < 1:
            raise GraphError(f"graph input {vi.name!r} has unsupported shape {list(full)}")
        data_inputs.append(vi.name)
        act = ctx.add(vi.name, "input", {"shape": list(ir)}, [], full, ir)
        ctx.bind(vi.name, act)
    if not data_inputs:
        raise GraphError("the ONNX model has no data input (every graph input is a weight)")

    for node in _toposort(graph, set(ctx.acts) | ctx.statics | set(ctx.consts)):
        reads_act = any(ctx.is_act(i) for i in node.input)
        if node.op_type in ("Shape", "Size") and reads_act and not node.domain:
            _shape_of(ctx, node)
            continue
        if not reads_act or (node.op_type in _NON_DATA and not node.domain):
            _fold(ctx, node)
            continue
        conv = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if conv is None:
            _mark_unknown(ctx, node)
        else:
            conv(ctx, node)
        for out in node.output:
            if out and out not in ctx.acts and out not in ctx.consts:
                ctx.statics.add(out)

    meta: dict[str, Any] = {
        "source": "onnx",
        "onnx_graph": graph.name or None,
        "producer": " ".join(p for p in (m.producer_name, m.producer_version) if p) or None,
        "opset": ctx.opsets.get("ai.onnx"),
        "onnx_nodes": len(model.graph.node),
        "batch": 1,
    }
    if ctx.unmapped:
        meta["unknown_ops"] = dict(sorted(ctx.unmapped.items()))
    if ctx.notes:
        meta["notes"] = ctx.notes
    return {
        "schema": GRAPH_SCHEMA,
        "name": name,
        "meta": {k: v for k, v in meta.items() if v is not None},
        "layers": ctx.layers,
    }


def read_onnx(
    path: str | Path, name: str | None = None, *, dims: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Read an ONNX file as an ``isosched.graph/v1`` graph document.

    External weight data is never loaded: only shapes matter. Weights may be initializers or
    typed graph inputs.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    name : str, optional
        Graph name; the file name without its suffix by default.
    dims : Mapping of str to int, optional
        Values for symbolic input dimensions (see :func:`onnx_to_graph_doc`).

    Returns
    -------
    dict
        A graph document that :func:`isosched.graph.parse_graph` accepts.

    Raises
    ------
    GraphError
        If the file is missing, too large or not an ONNX model, or cannot be converted.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise GraphError(f"cannot read ONNX file {str(p)!r}: {exc.strerror}") from None
    if size > MAX_ONNX_BYTES:
        raise GraphError(f"ONNX file {str(p)!r} is {size:,} bytes; the limit is {MAX_ONNX_BYTES:,}")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except OSError as exc:
        raise GraphError(f"cannot read ONNX file {str(p)!r}: {exc.strerror or exc}") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"{str(p)!r} is not a valid ONNX model: {reason}") from None
    if not model.graph.node and not model.graph.input:
        raise GraphError(f"{str(p)!r} is not a valid ONNX model: it holds no graph")
    return onnx_to_graph_doc(model, name or p.stem, dims=dims)
