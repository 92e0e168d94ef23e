"""Converters for control flow: ``If``, ``Loop`` and ``Scan``.

A control-flow node becomes one ``generic`` layer that reads the activations the node and its
subgraphs read, carrying the work of its subgraph, imported on its own (recursively) with the
shapes of the outer tensors:

* ``If`` with a constant condition: the branch taken. Otherwise the more expensive branch (more
  MACs, then more vector operations), and the layer is flagged: its work is an upper bound.
* ``Loop`` with a constant trip count ``M`` and a condition that stays true: ``M`` times the
  body. A body that can stop early makes ``M`` an upper bound (flagged); with no constant trip
  count one iteration is counted (flagged).
* ``Scan``: the body times the length of the scanned axis (always static here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.shape_inference

from isosched.errors import GraphError
from isosched.io.onnx.common import Shape, attrs, implicit_inputs, ints, node_base
from isosched.io.onnx.context import Ctx
from isosched.io.onnx.shapes import collect_shapes, elem_types

__all__ = ["CONTROL_CONVERTERS", "MAX_DEPTH"]


#: Deepest nesting of subgraphs imported.
MAX_DEPTH = 8


#: Import errors of a subgraph that does no work on data.
_NO_WORK = ("the ONNX model has no data input", "the ONNX model has no graph")


@dataclass(frozen=True)
class Work:
    """Work of one subgraph, imported on its own."""

    macs: int = 0
    vector_ops: int = 0
    weight_elems: int = 0
    uncertain: str | None = None
    out_shapes: tuple[Shape | None, ...] = ()


def _sub_model(ctx: Ctx, graph: Any, input_shapes: Sequence[Shape | None]) -> Any:
    """A stand-alone model of a subgraph: formal inputs shaped, outer tensors made inputs."""
    inputs = []
    for k, vi in enumerate(graph.input):
        shape = input_shapes[k] if k < len(input_shapes) else None
        et = vi.type.tensor_type.elem_type or onnx.TensorProto.FLOAT
        if shape is None:
            inputs.append(vi)
        else:
            inputs.append(onnx.helper.make_tensor_value_info(vi.name, et, list(shape)))
    holder = onnx.helper.make_node("If", [], [])
    holder.attribute.append(onnx.helper.make_attribute("then_branch", graph))
    inits = list(graph.initializer)
    types = elem_types(ctx.model)
    for name in implicit_inputs(holder):
        value = ctx.const(name)
        if value is not None:
            inits.append(onnx.numpy_helper.from_array(np.asarray(value), name))
            continue
        shape = ctx.full_shape(name)
        inputs.append(
            onnx.helper.make_tensor_value_info(
                name,
                types.get(name) or onnx.TensorProto.FLOAT,
                list(shape) if shape is not None else None,
            )
        )
    g = onnx.helper.make_graph(
        list(graph.node), graph.name or "body", inputs, list(graph.output), initializer=inits
    )
    return onnx.helper.make_model(
        g, opset_imports=list(ctx.model.opset_import), ir_version=ctx.model.ir_version
    )


def subgraph_work(ctx: Ctx, graph: Any, input_shapes: Sequence[Shape | None]) -> Work:
    """Import a subgraph on its own and total its work."""
    from isosched.graph import parse_graph
    from isosched.io.onnx.reader import onnx_to_graph_doc

    if ctx.depth >= MAX_DEPTH:
        return Work(uncertain=f"subgraphs nested deeper than {MAX_DEPTH}")
    model = _sub_model(ctx, graph, input_shapes)
    outs: tuple[Shape | None, ...] = ()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        shapes = collect_shapes(inferred)
        outs = tuple(shapes.get(o.name) for o in graph.output)
    except Exception:
        outs = tuple(None for _ in graph.output)
    try:
        doc = onnx_to_graph_doc(model, "body", _depth=ctx.depth + 1)
        g = parse_graph(doc)
    except GraphError as exc:
        if str(exc).startswith(_NO_WORK):  # a branch that only forwards or makes constants
            return Work(out_shapes=outs)
        return Work(uncertain=f"subgraph not importable: {exc}", out_shapes=outs)
    meta = doc.get("meta", {})
    why = None
    if meta.get("guessed_shape_layers") or meta.get("unknown_compute_layers"):
        why = (
            f"subgraph has {meta.get('guessed_shape_layers', 0)} layers with guessed shapes and "
            f"{meta.get('unknown_compute_layers', 0)} with unknown compute"
        )
    return Work(
        macs=g.macs,
        vector_ops=sum(lay.vector_ops for lay in g),
        weight_elems=g.params,
        uncertain=why,
        out_shapes=outs,
    )


def _emit(ctx: Ctx, node: Any, work: Work, times: int) -> None:
    """One ``generic`` layer with ``times`` the work, reading every activation the node reads."""
    base = node_base(node)
    reads = [*node.input, *implicit_inputs(node)]
    acts = [ctx.acts[n] for n in dict.fromkeys(reads) if n and ctx.is_act(n)]
    act = ctx.generic(
        base,
        node.op_type,
        acts,
        ctx.out_full(node),
        macs=work.macs * times,
        vector_ops=work.vector_ops * times,
        weight_elems=work.weight_elems,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)


def _set_shape(ctx: Ctx, name: str, shape: Shape | None) -> None:
    if name and shape is not None and ctx.shapes.get(name) is None:
        ctx.shapes[name] = shape


def if_(ctx: Ctx, node: Any) -> None:
    """``If``: the branch taken when the condition is constant, else the more expensive one."""
    a = attrs(node)
    branches = {"then": a.get("then_branch"), "else": a.get("else_branch")}
    cond = ctx.const(node.input[0])
    works = {k: subgraph_work(ctx, g, []) for k, g in branches.items() if g is not None}
    if not works:
        raise GraphError(f"If node {node_base(node)!r} has no branches")
    if cond is not None and np.asarray(cond).size >= 1:
        pick = "then" if bool(np.asarray(cond).ravel()[0]) else "else"
        ctx.note(f"{node_base(node)}: If on a constant condition: the {pick} branch")
    else:
        pick = max(works, key=lambda k: (works[k].macs, works[k].vector_ops, k == "then"))
        other = [f"{k}: {w.macs} MACs" for k, w in works.items() if k != pick]
        ctx.flag_compute(
            f"If on a run-time condition: the more expensive branch ({pick}: "
            f"{works[pick].macs} MACs; {', '.join(other) or 'no other branch'})"
        )
    work = works[pick]
    if work.uncertain:
        ctx.flag_compute(work.uncertain)
    for name, shape in zip(node.output, work.out_shapes, strict=False):
        _set_shape(ctx, name, shape)
    _emit(ctx, node, work, 1)


def _stays_true(body: Any) -> bool:
    """Whether a loop body's condition output is its condition input or a constant true."""
    if len(body.input) < 2 or not body.output:
        return False
    cin, cout = body.input[1].name, body.output[0].name
    for _ in range(8):
        if cout == cin:
            return True
        prod = next((n for n in body.node if cout in n.output), None)
        if prod is None:
            init = next((t for t in body.initializer if t.name == cout), None)
            return init is not None and bool(onnx.numpy_helper.to_array(init).all())
        if prod.op_type == "Identity":
            cout = prod.input[0]
            continue
        if prod.op_type == "Constant":
            value = attrs(prod).get("value")
            return value is not None and bool(onnx.numpy_helper.to_array(value).all())
        return False
    return False


def loop(ctx: Ctx, node: Any) -> None:
    """``Loop``: the body times a constant trip count (flagged when it is not exact)."""
    body = attrs(node).get("body")
    if body is None:
        raise GraphError(f"Loop node {node_base(node)!r} has no body")
    m_name = node.input[0] if node.input else ""
    c_name = node.input[1] if len(node.input) > 1 else ""
    m = ctx.const(m_name) if m_name else None
    c = ctx.const(c_name) if c_name else None
    cond_true = (not c_name or (c is not None and bool(np.asarray(c).all()))) and _stays_true(body)
    carried = [ctx.full_shape(n) if n else None for n in node.input[2:]]
    work = subgraph_work(ctx, body, [(), (), *carried])
    if m is not None and np.asarray(m).size == 1:
        trips = max(0, int(np.asarray(m).ravel()[0]))
        if not cond_true:
            ctx.flag_compute(f"Loop may stop early: at most {trips} iterations counted")
    else:
        trips = 1
        ctx.flag_compute("Loop without a constant trip count: one iteration counted")
    if work.uncertain:
        ctx.flag_compute(work.uncertain)
    n_carried = len(node.input) - 2
    for k, name in enumerate(node.output):
        body_shape = work.out_shapes[k + 1] if k + 1 < len(work.out_shapes) else None
        if k < n_carried:
            _set_shape(ctx, name, body_shape)
        elif body_shape is not None and cond_true and m is not None:
            _set_shape(ctx, name, (trips, *body_shape))
    ctx.note(f"{node_base(node)}: Loop body counted {trips} times")
    _emit(ctx, node, work, trips)


def scan(ctx: Ctx, node: Any) -> None:
    """``Scan``: the body times the length of the scanned axis."""
    a = attrs(node)
    body = a.get("body")
    if body is None:
        raise GraphError(f"Scan node {node_base(node)!r} has no body")
    n_scan = int(a.get("num_scan_inputs", 0))
    n_state = len(node.input) - n_scan
    in_axes = ints(a.get("scan_input_axes"), [0] * n_scan)
    out_axes = ints(a.get("scan_output_axes"), [0] * max(0, len(node.output) - n_state))
    shapes: list[Shape | None] = [ctx.full_shape(n) for n in node.input[:n_state]]
    trips: int | None = None
    for k, name in enumerate(node.input[n_state:]):
        full = ctx.full_shape(name)
        if full is None:
            shapes.append(None)
            continue
        ax = in_axes[k] + len(full) if in_axes[k] < 0 else in_axes[k]
        trips = full[ax] if trips is None else trips
        shapes.append(tuple(d for i, d in enumerate(full) if i != ax))
    work = subgraph_work(ctx, body, shapes)
    if trips is None:
        trips = 1
        ctx.flag_compute("Scan over an axis of unknown length: one iteration counted")
    if work.uncertain:
        ctx.flag_compute(work.uncertain)
    for k, name in enumerate(node.output):
        body_shape = work.out_shapes[k] if k < len(work.out_shapes) else None
        if k < n_state or body_shape is None:
            _set_shape(ctx, name, body_shape)
            continue
        ax = out_axes[k - n_state] if k - n_state < len(out_axes) else 0
        ax = ax + len(body_shape) + 1 if ax < 0 else ax
        dims = list(body_shape)
        dims.insert(ax, trips)
        _set_shape(ctx, name, tuple(dims))
    ctx.note(f"{node_base(node)}: Scan body counted {trips} times")
    _emit(ctx, node, work, trips)


#: Converter per control-flow op type.
CONTROL_CONVERTERS = {"If": if_, "Loop": loop, "Scan": scan}
