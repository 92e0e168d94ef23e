"""Static shapes: symbolic dimensions fixed, ONNX shape inference, then the file's own shapes.

Where ONNX's inference (run with the schemas of the model's own opsets) gives a tensor no
static shape, the shape stored in the file's ``value_info`` is used; for operators that ONNX
does not know at the model's opset, the contrib shape rules of :mod:`isosched.io.onnx.contrib`
are tried, and failing those the output is given the shape of the operator's first *data*
input (never a weight or a constant) and recorded as guessed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import onnx
import onnx.shape_inference

from isosched.errors import GraphError
from isosched.io.onnx.common import Shape, copy_model
from isosched.io.onnx.contrib import contrib_shapes

__all__ = [
    "ShapeInfo",
    "collect_shapes",
    "elem_types",
    "file_shapes",
    "fix_dims",
    "infer_node",
    "infer_shapes",
    "known_op",
]


def fix_dims(model: Any, dims: Mapping[str, int]) -> dict[str, int]:
    """Give symbolic input dimensions a value: ``dims`` by name, else a leading one is the batch.

    Returns the value given to each symbol (including the batch symbols set to 1), so that the
    same symbols can be resolved in the file's ``value_info``.

    Raises
    ------
    GraphError
        If a non-leading input dimension is symbolic and ``dims`` does not name it, or a value
        in ``dims`` is not a positive integer.
    """
    for sym, value in dims.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GraphError(f"dimension {sym}={value!r}: the value must be a positive integer")
    given: dict[str, int] = {}
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
                    f"give it a value (import-onnx --dim {sym or 'NAME'}=VALUE, or "
                    f"?dim={sym or 'NAME'}=VALUE in the API) or export the model with static "
                    "shapes"
                )
            if sym:
                given[sym] = int(d.dim_value)
    for vi in model.graph.output:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            tt.ClearField("shape")
    return given


def _shape_of_vi(vi: Any, symbols: Mapping[str, int] | None = None) -> Shape | None:
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))
        elif symbols is not None and d.dim_param in symbols:
            dims.append(int(symbols[d.dim_param]))
        else:
            return None
    return tuple(dims)


def collect_shapes(model: Any) -> dict[str, Shape | None]:
    """Static shapes recorded in the model (inputs, value infos, outputs, initializers)."""
    g = model.graph
    out: dict[str, Shape | None] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shape = _shape_of_vi(vi)
        if shape is not None or vi.name not in out:
            out[vi.name] = shape
    for t in g.initializer:
        out[t.name] = tuple(int(d) for d in t.dims)
    return out


def file_shapes(model: Any, symbols: Mapping[str, int]) -> dict[str, tuple[Shape, int]]:
    """Static shapes and element types the file's ``value_info`` stores, symbols resolved."""
    out: dict[str, tuple[Shape, int]] = {}
    for vi in model.graph.value_info:
        shape = _shape_of_vi(vi, symbols)
        if shape is not None:
            out[vi.name] = (shape, int(vi.type.tensor_type.elem_type))
    return out


def known_op(node: Any, opsets: Mapping[str, int]) -> bool:
    """Whether ONNX has a schema for the node's op at the model's own opset of its domain."""
    domain = node.domain or ""
    version = opsets.get(domain or "ai.onnx")
    if version is None:
        return False
    try:
        return bool(onnx.defs.has(node.op_type, version, domain))
    except Exception:
        return False


@dataclass
class ShapeInfo:
    """Shapes of one model and where the uncertain ones came from.

    Attributes
    ----------
    shapes : dict
        Static ONNX shape (batch included) per tensor name, ``None`` when unknown.
    guessed : dict
        Tensors whose shape was guessed, with the reason (copied from a data input).
    from_file : set of str
        Tensors whose shape came from the file's ``value_info`` (inference gave none).
    """

    shapes: dict[str, Shape | None]
    guessed: dict[str, str] = field(default_factory=dict)
    from_file: set[str] = field(default_factory=set)


def _data_names(model: Any, shapes: Mapping[str, Shape | None]) -> set[str]:
    """Tensors that are not data: initializers, constants and weight graph inputs."""
    from isosched.io.onnx.weights import weight_inputs

    g = model.graph
    inits = {t.name for t in g.initializer}
    consts = {o for n in g.node if n.op_type == "Constant" for o in n.output}
    return inits | consts | weight_inputs(g, shapes, inits)


def _add_vi(model: Any, name: str, shape: Shape, elem_type: int) -> None:
    vi = onnx.helper.make_tensor_value_info(name, elem_type or onnx.TensorProto.FLOAT, list(shape))
    model.graph.value_info.append(vi)


def _elem_type(model: Any, name: str) -> int:
    g = model.graph
    for vi in [*g.input, *g.value_info]:
        if vi.name == name:
            return int(vi.type.tensor_type.elem_type)
    for t in g.initializer:
        if t.name == name:
            return int(t.data_type)
    return int(onnx.TensorProto.FLOAT)


def _run(model: Any) -> Any:
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def infer_shapes(
    model: Any, stored: Mapping[str, tuple[Shape, int]] | None = None
) -> tuple[Any, ShapeInfo]:
    """Shapes of every tensor: ONNX inference first, then the file, then contrib rules, guesses.

    Parameters
    ----------
    model : onnx.ModelProto
        The model (symbolic input dimensions already fixed); not modified.
    stored : Mapping, optional
        Shapes the file's ``value_info`` stores (:func:`file_shapes`), used where inference
        gives none.

    Returns
    -------
    (onnx.ModelProto, ShapeInfo)
        The model with the shapes as ``value_info`` and where the uncertain ones came from.
    """
    stored = stored or {}
    opsets = {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}
    model = copy_model(model)
    # Stored shapes would shadow what inference finds (ONNX keeps an existing value_info even
    # when it disagrees): infer from scratch, then fill the gaps.
    del model.graph.value_info[:]
    info = ShapeInfo({})
    try:
        inferred = _run(model)
    except Exception as exc:
        warnings.warn(
            f"ONNX shape inference failed ({str(exc).splitlines()[0] if str(exc) else exc}); "
            "using the shapes stored in the file",
            stacklevel=3,
        )
        inferred = model
    not_data: set[str] | None = None
    for _ in range(16):
        shapes = collect_shapes(inferred)
        if not_data is None:
            not_data = _data_names(inferred, shapes)
        patched = False
        for node in inferred.graph.node:
            outs = [o for o in node.output if o and shapes.get(o) is None]
            if not outs:
                continue
            for o in outs:
                if o in stored:
                    shape, et = stored[o]
                    _add_vi(inferred, o, shape, et)
                    shapes[o] = shape
                    info.from_file.add(o)
                    patched = True
            if known_op(node, opsets):
                continue  # ONNX knows the op: what it cannot type stays unknown (not guessed)
            data = [i for i in node.input if i and i not in not_data]
            rule = contrib_shapes(node, shapes)
            if rule is not None:
                et = _elem_type(inferred, data[0] if data else node.input[0])
                for o, s in zip(node.output, rule, strict=False):
                    if o and s is not None and shapes.get(o) is None:
                        _add_vi(inferred, o, s, et)
                        shapes[o] = s
                        patched = True
                continue
            if not data:
                continue
            src = data[0]
            if shapes.get(src) is None:
                continue  # the first data input is not typed yet: wait, never take another one
            o = node.output[0]
            if o and shapes.get(o) is None:
                _add_vi(inferred, o, shapes[src] or (), _elem_type(inferred, src))
                shapes[o] = shapes[src]
                info.guessed[o] = f"shape of {node.op_type} copied from its data input {src!r}"
                patched = True
        info.shapes = shapes
        if not patched:
            break
        try:
            inferred = _run(inferred)
        except Exception:
            break
    info.shapes = collect_shapes(inferred)
    for name, (shape, _et) in stored.items():
        if info.shapes.get(name) is None:
            info.shapes[name] = shape
            info.from_file.add(name)
    return inferred, info


def elem_types(model: Any) -> dict[str, int]:
    """Element type of every typed tensor of a model (inputs, value infos, initializers)."""
    g = model.graph
    out = {
        vi.name: int(vi.type.tensor_type.elem_type)
        for vi in [*g.input, *g.value_info, *g.output]
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type
    }
    out.update({t.name: int(t.data_type) for t in g.initializer})
    return out


def infer_node(
    node: Any,
    shapes: Mapping[str, Shape | None],
    values: Mapping[str, Any],
    types: Mapping[str, int],
    opset_import: Any,
) -> list[Shape | None] | None:
    """Output shapes of one node by ONNX's own inference, given its inputs' shapes now.

    Used when the whole-model inference could not type a node because an input's shape was
    found later (the output of a control-flow op, a contrib op). ``values`` gives constant
    inputs (shape arithmetic). ``None`` when ONNX cannot tell either.
    """
    import numpy as np
    import onnx.numpy_helper

    ins, inits = [], []
    for name in dict.fromkeys(i for i in node.input if i):
        if name in values:
            inits.append(onnx.numpy_helper.from_array(np.asarray(values[name]), name))
            continue
        shape = shapes.get(name)
        if shape is None:
            return None
        et = types.get(name) or onnx.TensorProto.FLOAT
        ins.append(onnx.helper.make_tensor_value_info(name, et, list(shape)))
    outs = [o for o in node.output if o]
    g = onnx.helper.make_graph(
        [node],
        "one",
        ins,
        [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
        initializer=inits,
    )
    try:
        m = onnx.helper.make_model(g, opset_imports=list(opset_import))
        got = collect_shapes(onnx.shape_inference.infer_shapes(m, data_prop=True))
    except Exception:
        return None
    return [got.get(o) if o else None for o in node.output]
