"""Entry points of the ONNX reader: :func:`read_onnx` and :func:`onnx_to_graph_doc`.

The model is prepared (functions inlined, dimensions fixed, shapes inferred, constants
folded), then each node is folded or handed to its converter in topological order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import onnx.inliner

from isosched.errors import GraphError
from isosched.graph.schema import GRAPH_SCHEMA
from isosched.io.onnx.common import copy_model, drop_batch, node_inputs, toposort
from isosched.io.onnx.context import Ctx
from isosched.io.onnx.convert_shape import shape_of
from isosched.io.onnx.folding import fold, prefold, to_array
from isosched.io.onnx.registry import converter_for, mark_unknown
from isosched.io.onnx.shapes import file_shapes, fix_dims, infer_shapes
from isosched.io.onnx.uncertainty import uncertainty_meta
from isosched.io.onnx.weights import weight_inputs

__all__ = [
    "MAX_ONNX_BYTES",
    "onnx_to_graph_doc",
    "parse_onnx",
    "read_onnx",
]


#: Largest ONNX file read (protobuf's own limit for one message).
MAX_ONNX_BYTES = 2 * 1024**3


#: Ops producing no activation: folded when their inputs are known, else treated as weights.
_NON_DATA = frozenset({"Constant", "ConstantOfShape", "Range", "RandomNormal", "RandomUniform"})


def _check_text(model: Any) -> None:
    """Refuse a model whose names are not valid UTF-8 (protobuf then hands out bytes).

    Raises
    ------
    GraphError
        Naming the first such field.
    """
    g = model.graph
    texts: list[tuple[str, Any]] = [("opset domain", o.domain) for o in model.opset_import]
    texts += [("producer", model.producer_name), ("producer version", model.producer_version)]
    texts.append(("graph name", g.name))
    for n in g.node:
        texts += [("op type", n.op_type), ("domain", n.domain), ("node name", n.name)]
        texts += [("tensor name", t) for t in [*n.input, *n.output]]
    for vi in [*g.input, *g.output, *g.value_info, *g.initializer]:
        texts.append(("tensor name", vi.name))
    for what, value in texts:
        if not isinstance(value, str):
            raise GraphError(
                f"the ONNX model holds a {what} that is not valid UTF-8: {value!r}"[:200]
            )


def _add_missing_opsets(model: Any) -> None:
    """Import version 1 of every domain that nodes use but the model does not import."""
    have = {o.domain or "" for o in model.opset_import}
    used = {n.domain or "" for n in model.graph.node}
    for domain in sorted(used - have):
        model.opset_import.append(onnx.helper.make_opsetid(domain, 1))


def onnx_to_graph_doc(
    model: onnx.ModelProto,
    name: str,
    *,
    dims: Mapping[str, int] | None = None,
    _depth: int = 0,
) -> dict[str, Any]:
    """Convert an in-memory ONNX model to an ``isosched.graph/v1`` document.

    Parameters
    ----------
    model : onnx.ModelProto
        The model; it is not modified.
    name : str
        Graph name written to the document.
    dims : Mapping of str to int, optional
        Values for symbolic dimensions by name (``{"sequence": 128}``); a leading symbolic
        dimension not named here is the batch, taken as 1.

    Returns
    -------
    dict
        A graph document that :func:`isosched.graph.parse_graph` accepts. Its ``meta`` counts
        the layers whose output shape was guessed (``guessed_shape_layers``) and whose work is
        not known for sure (``unknown_compute_layers``), and names them with the reasons in
        ``uncertain_layers`` (see :mod:`isosched.io.onnx.uncertainty`).

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
    m = copy_model(model)
    if not m.graph.node and not m.graph.input:
        raise GraphError("the ONNX model has no graph (no nodes and no inputs)")
    _check_text(m)
    if m.functions:
        with contextlib.suppress(Exception):  # keep the calls: imported as generic layers
            m = onnx.inliner.inline_local_functions(m)
    _add_missing_opsets(m)
    symbols = {**(dims or {}), **fix_dims(m, dims or {})}
    stored = file_shapes(m, symbols)
    m, info = infer_shapes(m, stored)
    for _ in range(8):
        m, changed = prefold(m, info.shapes)
        if not changed:
            break
        m, info = infer_shapes(m, stored)
    shapes = info.shapes
    graph = m.graph
    ctx = Ctx(m, shapes, info.guessed)
    ctx.depth = _depth

    init_names = {t.name for t in graph.initializer}
    for t in graph.initializer:
        value = to_array(t)
        if value is not None:
            ctx.consts[t.name] = value
        else:
            ctx.statics.add(t.name)
    weights = weight_inputs(graph, shapes, init_names)
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
        ir = drop_batch(full)
        if len(ir) > 8 or min(ir) < 1:
            raise GraphError(f"graph input {vi.name!r} has unsupported shape {list(full)}")
        data_inputs.append(vi.name)
        act = ctx.add(vi.name, "input", {"shape": list(ir)}, [], full, ir)
        ctx.bind(vi.name, act)
    if not data_inputs:
        raise GraphError("the ONNX model has no data input (every graph input is a weight)")

    for node in toposort(graph, set(ctx.acts) | ctx.statics | set(ctx.consts)):
        reads_act = any(ctx.is_act(i) for i in node_inputs(node))
        if node.op_type in ("Shape", "Size") and reads_act and not node.domain:
            shape_of(ctx, node)
            continue
        if not reads_act or (node.op_type in _NON_DATA and not node.domain):
            fold(ctx, node)
            continue
        conv = converter_for(node)
        ctx.begin_node()
        if conv is None:
            mark_unknown(ctx, node)
        else:
            try:
                conv(ctx, node)
            except GraphError:
                raise
            except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as exc:
                # a malformed node a converter did not foresee: refused, naming the node
                raise GraphError(
                    f"ONNX node {node.name or node.op_type!r} ({node.op_type}) cannot be "
                    f"converted: {type(exc).__name__}: {exc}"
                ) from None
        ctx.end_node()
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
    meta.update(uncertainty_meta(ctx))
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


def parse_onnx(
    data: bytes,
    name: str,
    *,
    what: str = "the uploaded ONNX model",
    dims: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Convert ONNX bytes (an upload) as :func:`read_onnx` converts a file; reads no file.

    Messages name ``what``, never a path. External weight data is never loaded. ``dims`` gives
    symbolic dimensions their values (see :func:`onnx_to_graph_doc`).

    Raises
    ------
    GraphError
        If the bytes are too many, not an ONNX model, or cannot be converted.
    """
    if len(data) > MAX_ONNX_BYTES:
        raise GraphError(f"{what} is {len(data):,} bytes; the limit is {MAX_ONNX_BYTES:,}")
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"{what} is not a valid ONNX model: {reason}") from None
    if not model.graph.node and not model.graph.input:
        raise GraphError(f"{what} is not a valid ONNX model: it holds no graph")
    return onnx_to_graph_doc(model, name, dims=dims)
