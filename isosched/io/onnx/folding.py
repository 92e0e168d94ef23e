"""Constant folding with ONNX's reference evaluator.

Constant subgraphs (shape arithmetic above all) are folded into initializers before
conversion, so that shape inference can see through them, and during conversion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
from onnx.reference import ReferenceEvaluator

from isosched.io.onnx.common import Array, Shape, attrs, copy_model, numel, toposort
from isosched.io.onnx.context import Ctx

__all__ = ["fold", "prefold", "to_array"]


#: Largest initializer turned into a NumPy value for constant folding (larger ones are weights).
_MAX_CONST_ELEMS = 1 << 16


#: Largest result kept from folding a constant subgraph. Shape arithmetic stays far below it;
#: a larger constant is a weight (a ``ConstantOfShape`` or ``Expand`` standing for one): its
#: size is counted before evaluating and it is never materialised, only its shape is used.
_MAX_FOLD_ELEMS = _MAX_CONST_ELEMS


def to_array(t: Any) -> Array | None:
    """Value of an initializer small enough to fold (None for weights and external data)."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    if numel(t.dims) > _MAX_CONST_ELEMS:
        return None
    try:
        value = onnx.numpy_helper.to_array(t)
    except Exception:
        return None
    return value if value.size == numel(t.dims) else None


#: Layout ops that leave a weight the same tensor: not folded on floating-point tensors of more
#: than :data:`_MAX_VIEWED_ELEMS` elements, so that a weight used twice is recognised as one.
_WEIGHT_VIEWS = frozenset(
    {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "CastLike"}
)
_MAX_VIEWED_ELEMS = 16

_RANDOM = frozenset({"RandomNormal", "RandomUniform", "Multinomial", "Bernoulli"})

#: Most multiply-accumulates one folded MatMul or Gemm may take.
_MAX_FOLD_MACS = 1 << 28

#: Ops folded when the product of their inputs' element counts is within the limit: none of
#: them can produce more elements than that (elementwise with broadcasting, shape arithmetic,
#: gathers, reductions). Ops not listed here and not sized by :func:`_output_bound` are never
#: folded: their output size may depend on attributes or values (Pad, Resize, Conv pads, ...).
_BOUNDED_BY_INPUTS = frozenset(
    {
        *("Abs", "Neg", "Sqrt", "Exp", "Log", "Ceil", "Floor", "Round", "Sign", "Reciprocal"),
        *("Relu", "Sigmoid", "Tanh", "Erf", "Not", "IsNaN", "IsInf", "Cast", "CastLike"),
        *("Identity", "Clip", "Softmax", "LogSoftmax", "LeakyRelu", "Elu", "Softplus", "Gelu"),
        *("Sin", "Cos", "BitwiseNot", "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal"),
        *("Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where"),
        *("Min", "Max", "Sum", "Mean", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"),
        *("PRelu", "Shape", "Size", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"),
        *("Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "ScatterND"),
        *("ScatterElements", "Trilu", "CumSum", "TopK", "Compress", "Unique", "EyeLike"),
        *("ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceMean", "ReduceL1"),
        *("ReduceL2", "ArgMax", "ArgMin", "DepthToSpace", "SpaceToDepth", "Det"),
    }
)


def _ints(a: Array) -> list[int]:
    return [int(x) for x in np.asarray(a).reshape(-1)]


def _prod(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        if d < 0:
            raise ValueError("negative dimension")
        out *= d
    return out


def _output_bound(op: str, inputs: list[Array]) -> int | None:
    """Most elements ``op`` can produce from ``inputs``, counted before running it.

    ``None`` when it cannot be known cheaply: then the node is not folded.
    """
    try:
        if op == "ConstantOfShape":
            return _prod(_ints(inputs[0]))
        if op == "Range":
            start, limit, delta = (float(np.asarray(x).reshape(-1)[0]) for x in inputs[:3])
            if delta == 0 or not np.isfinite([start, limit, delta]).all():
                return None
            return max(0, int(np.ceil((limit - start) / delta)))
        if op == "Expand":
            shape = np.broadcast_shapes(inputs[0].shape, tuple(_ints(inputs[1])))
            return _prod(shape)
        if op == "Tile":
            return inputs[0].size * _prod(_ints(inputs[1]))
        if op == "OneHot":
            return inputs[0].size * _prod(_ints(inputs[1]))
        if op == "NonZero":
            return inputs[0].size * max(1, inputs[0].ndim)
        if op in ("MatMul", "Gemm"):
            a, b = inputs[0], inputs[1]
            if a.ndim == 0 or b.ndim == 0:
                return None
            # M·K·N ≤ |A|·|B| / min(K, N) (batches only add to the bound)
            if a.size * b.size // max(1, min(b.shape[-2:])) > _MAX_FOLD_MACS:
                return None
            return _prod([max(1, x.size) for x in inputs])
        if op in _BOUNDED_BY_INPUTS:
            return _prod([max(1, x.size) for x in inputs])
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return None


def _evaluate(node: Any, values: Mapping[str, Array], opsets: Sequence[Any]) -> list[Array] | None:
    """Run one node on constant inputs with ONNX's reference evaluator (None if impossible)."""
    names = [i for i in node.input if i]
    if node.op_type in _RANDOM or node.domain not in ("", "ai.onnx"):
        return None
    if not all(n in values for n in names):
        return None
    live = [o for o in node.output if o]
    if node.op_type in _WEIGHT_VIEWS and names:
        first = values[names[0]]
        if first.dtype.kind in "fc" and first.size > _MAX_VIEWED_ELEMS:
            return None  # a transposed or reshaped weight keeps its identity (tied weights)
    if node.op_type != "Constant":  # a Constant's value is already in the file
        bound = _output_bound(node.op_type, [values[n] for n in names])
        if bound is None or bound > _MAX_FOLD_ELEMS:
            return None  # counted before evaluating: a 200-byte file cannot allocate gigabytes
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


def fold(ctx: Ctx, node: Any) -> None:
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


def prefold(model: Any, shapes: Mapping[str, Shape | None]) -> tuple[Any, bool]:
    """Fold constant subgraphs into initializers so that shape inference can see through them.

    Folds nodes whose inputs are all constants, ``Shape``/``Size`` of tensors of known shape and
    ``CastLike`` of a constant. Nodes producing graph outputs are kept.
    """
    g = model.graph
    values: dict[str, Array] = {}
    for t in g.initializer:
        v = to_array(t)
        if v is not None:
            values[t.name] = v
    types = _elem_types(model)
    outputs = {o.name for o in g.output}
    known = {i.name for i in g.input} | {t.name for t in g.initializer}
    kept: list[Any] = []
    folded: dict[str, Array] = {}
    for node in toposort(g, known):
        live = [o for o in node.output if o]
        result: list[Array] | None = None
        if node.domain in ("", "ai.onnx") and not outputs.intersection(live):
            src = node.input[0] if node.input else ""
            src_shape = shapes.get(src) if src else None
            if node.op_type == "Shape" and src_shape is not None:
                a = attrs(node)
                end = a.get("end")
                dims = list(src_shape)
                start = int(a.get("start", 0))
                result = [np.array(dims[start:] if end is None else dims[start : int(end)])]
                result[0] = result[0].astype(np.int64)
            elif node.op_type == "Size" and src_shape is not None:
                result = [np.array(numel(src_shape), dtype=np.int64)]
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
    new = copy_model(model)
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
