"""A small helper for writing model builders: add layers, track shapes, emit a graph."""

from __future__ import annotations

from typing import Any

from isosched.graph.model import Graph, parse_graph
from isosched.graph.ops import infer_op
from isosched.graph.schema import GRAPH_SCHEMA

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Accumulate layers of one model while tracking output shapes.

    Examples
    --------
    >>> b = GraphBuilder("tiny")
    >>> x = b.add("input", shape=[3, 32, 32], id="x")
    >>> y = b.add("conv", [x], out_channels=8, kernel=3, padding=1)
    >>> b.shape(y)
    (8, 32, 32)
    """

    def __init__(self, name: str, dtype: str = "int8", meta: dict[str, Any] | None = None):
        self.name = name
        self.dtype = dtype
        self.meta = dict(meta or {})
        self._layers: list[dict[str, Any]] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._counter: dict[str, int] = {}

    def add(
        self,
        op: str,
        inputs: list[str] | tuple[str, ...] = (),
        id: str | None = None,
        **params: Any,
    ) -> str:
        """Append a layer and return its id (``<op><n>`` when not given)."""
        if id is None:
            n = self._counter.get(op, 0)
            self._counter[op] = n + 1
            id = f"{op}{n}"
        if id in self._shapes:
            raise ValueError(f"duplicate layer id {id!r}")
        in_shapes = [self._shapes[i] for i in inputs]
        if not inputs and "input_shape" in params:
            in_shapes = [tuple(params["input_shape"])]
        self._shapes[id] = infer_op(op, params, in_shapes).shape
        doc: dict[str, Any] = {"id": id, "op": op}
        if inputs:
            doc["inputs"] = list(inputs)
        doc.update(params)
        self._layers.append(doc)
        return id

    def shape(self, layer_id: str) -> tuple[int, ...]:
        """Output shape of a layer added so far."""
        return self._shapes[layer_id]

    def to_dict(self) -> dict[str, Any]:
        """The graph file document."""
        out: dict[str, Any] = {"schema": GRAPH_SCHEMA, "name": self.name, "dtype": self.dtype}
        if self.meta:
            out["meta"] = self.meta
        out["layers"] = list(self._layers)
        return out

    def build(self) -> Graph:
        """Validate and return the :class:`~isosched.graph.Graph`."""
        return parse_graph(self.to_dict())
