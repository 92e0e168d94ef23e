"""Static shapes: symbolic input dimensions fixed, then ONNX shape inference."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import onnx
import onnx.shape_inference

from isosched.errors import GraphError
from isosched.io.onnx.common import Shape, copy_model

__all__ = ["collect_shapes", "fix_dims", "infer_shapes"]


def fix_dims(model: Any, dims: Mapping[str, int]) -> None:
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


def infer_shapes(model: Any) -> tuple[Any, dict[str, Shape | None]]:
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
    model = copy_model(model)
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        warnings.warn(
            f"ONNX shape inference failed ({exc}); using shapes in the file", stacklevel=3
        )
        return model, collect_shapes(model)
    for _ in range(8):
        shapes = collect_shapes(inferred)
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
    return inferred, collect_shapes(inferred)
