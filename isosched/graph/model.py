"""The validated DNN graph: immutable layers annotated with shapes, MACs and bytes."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from isosched.errors import GraphError
from isosched.graph.ops import COMPUTE_OPS, infer_op
from isosched.graph.schema import DTYPE_BYTES, MAX_TENSOR_ELEMENTS, GraphFile

__all__ = ["Graph", "Layer", "build_graph", "parse_graph"]

_COMMON = frozenset({"id", "op", "inputs", "name"})


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of a validated graph.

    Attributes
    ----------
    id, op : str
        Unique id and operator name.
    inputs : tuple of str
        Ids of producer layers, in operand order.
    params : Mapping
        Op-specific fields as given in the graph file.
    output_shape : tuple of int
        Output tensor shape (batch excluded).
    macs : int
        Multiply-accumulates.
    vector_ops : int
        Element operations outside the MAC array.
    weight_bytes, input_bytes, output_bytes : int
        Sizes in bytes at the graph's data type. ``input_bytes`` sums every operand.
    """

    id: str
    op: str
    inputs: tuple[str, ...]
    params: Mapping[str, Any]
    output_shape: tuple[int, ...]
    macs: int
    vector_ops: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int

    @property
    def is_compute(self) -> bool:
        """Whether the layer's work runs on the MAC array."""
        return self.op in COMPUTE_OPS


@dataclass(frozen=True)
class Graph:
    """A validated DNN graph, layers in topological order.

    Attributes
    ----------
    name : str
        Model name.
    dtype : str
        Element data type (``int8`` by default).
    layers : tuple of Layer
        Layers in a topological order (producers before consumers).
    meta : Mapping
        Provenance copied from the file.
    """

    name: str
    dtype: str
    layers: tuple[Layer, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_index", MappingProxyType({lay.id: i for i, lay in enumerate(self.layers)})
        )

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, layer_id: str) -> Layer:
        return self.layers[self._index[layer_id]]

    def index(self, layer_id: str) -> int:
        """Position of a layer in the topological order."""
        return self._index[layer_id]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Producer → consumer pairs, one per distinct operand."""
        return [(src, lay.id) for lay in self.layers for src in dict.fromkeys(lay.inputs)]

    @property
    def macs(self) -> int:
        """Total multiply-accumulates."""
        return sum(lay.macs for lay in self.layers)

    @property
    def weight_bytes(self) -> int:
        """Total parameter bytes."""
        return sum(lay.weight_bytes for lay in self.layers)

    @property
    def params(self) -> int:
        """Total parameter count (elements)."""
        return self.weight_bytes // DTYPE_BYTES[self.dtype]

    def consumers(self) -> dict[str, list[str]]:
        """Map from each layer id to the ids of the layers that read its output."""
        out: dict[str, list[str]] = {lay.id: [] for lay in self.layers}
        for src, dst in self.edges:
            out[src].append(dst)
        return out


def _topological_order(specs: list[Any]) -> list[Any]:
    by_id = {s.id: s for s in specs}
    indegree = {s.id: len(set(s.inputs)) for s in specs}
    users: dict[str, list[str]] = {s.id: [] for s in specs}
    for s in specs:
        for src in dict.fromkeys(s.inputs):
            users[src].append(s.id)
    # Kahn's algorithm, stable: ready layers keep their file order.
    ready = [s.id for s in specs if indegree[s.id] == 0]
    order: list[Any] = []
    head = 0
    while head < len(ready):
        lid = ready[head]
        head += 1
        order.append(by_id[lid])
        for u in users[lid]:
            indegree[u] -= 1
            if indegree[u] == 0:
                ready.append(u)
    if len(order) != len(specs):
        stuck = next(s.id for s in specs if indegree[s.id] > 0)
        raise GraphError(f"graph has a cycle through layer {stuck!r}")
    return order


_ALIASES: dict[type[BaseModel], dict[str, str]] = {}


def _aliases(cls: type[BaseModel]) -> dict[str, str]:
    """Field name -> alias of a layer model (only the renamed fields)."""
    got = _ALIASES.get(cls)
    if got is None:
        fields = cls.model_fields.items()
        got = _ALIASES[cls] = {n: f.alias for n, f in fields if f.alias and f.alias != n}
    return got


def build_graph(spec: GraphFile) -> Graph:
    """Validate a parsed graph file and annotate every layer.

    Raises
    ------
    GraphError
        On duplicate ids, dangling references, cycles, shape mismatches or absurd sizes; the
        message names the offending layer.
    """
    seen: set[str] = set()
    for s in spec.layers:
        if s.id in seen:
            raise GraphError(f"duplicate layer id {s.id!r}")
        seen.add(s.id)
    for s in spec.layers:
        for src in s.inputs:
            if src not in seen:
                raise GraphError(f"layer {s.id!r} reads unknown layer {src!r}")
            if src == s.id:
                raise GraphError(f"layer {s.id!r} reads itself")
    nbytes = DTYPE_BYTES[spec.dtype]
    shapes: dict[str, tuple[int, ...]] = {}
    layers: list[Layer] = []
    for s in _topological_order(list(spec.layers)):
        # the validated fields, by alias, without None (what model_dump(by_alias=True,
        # exclude_none=True) gives, at a fraction of its cost: layer models hold no models)
        aliases = _aliases(type(s))
        params = {
            aliases.get(k, k): v
            for k, v in s.__dict__.items()
            if v is not None and k not in _COMMON and k != "op"
        }
        if s.inputs:
            in_shapes = [shapes[i] for i in s.inputs]
        elif s.input_shape is not None:
            in_shapes = [tuple(s.input_shape)]
        elif s.op in ("input", "generic"):
            in_shapes = []
        else:
            raise GraphError(f"layer {s.id!r} has no inputs and no input_shape")
        try:
            res = infer_op(s.op, params, in_shapes)
        except GraphError as exc:
            raise GraphError(f"layer {s.id!r}: {exc}") from None
        if any(d <= 0 for d in res.shape):
            raise GraphError(f"layer {s.id!r}: non-positive output shape {list(res.shape)}")
        elems = math.prod(res.shape)
        if elems > MAX_TENSOR_ELEMENTS:
            raise GraphError(
                f"layer {s.id!r}: output tensor of {elems:.3g} elements exceeds the limit "
                f"of {MAX_TENSOR_ELEMENTS:.0e}"
            )
        shapes[s.id] = res.shape
        layers.append(
            Layer(
                id=s.id,
                op=s.op,
                inputs=tuple(s.inputs),
                params=MappingProxyType(params),
                output_shape=res.shape,
                macs=res.macs,
                vector_ops=res.vector_ops,
                weight_bytes=res.weight_elems * nbytes,
                input_bytes=sum(math.prod(x) for x in in_shapes) * nbytes,
                output_bytes=elems * nbytes,
            )
        )
    return Graph(name=spec.name, dtype=spec.dtype, layers=tuple(layers), meta=dict(spec.meta))


def _format_validation(exc: ValidationError, data: Any) -> str:
    err = exc.errors()[0]
    loc = list(err["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        try:
            lid = data["layers"][loc[1]].get("id")
            # loc = ("layers", index, <op tag>, field, ...)
            where = f"layer {lid!r} (layers[{loc[1]}])" + "".join(f".{p}" for p in loc[3:])
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
    more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def parse_graph(data: Any) -> Graph:
    """Validate a graph document (already decoded from JSON) and build the :class:`Graph`.

    Raises
    ------
    GraphError
        With a one-line reason naming the offending layer or field.
    """
    if not isinstance(data, dict):
        raise GraphError("a graph file must be a JSON object")
    schema = data.get("schema")
    if schema is not None and schema != "isosched.graph/v1":
        raise GraphError(f"unsupported graph schema {schema!r}; expected 'isosched.graph/v1'")
    try:
        spec = GraphFile.model_validate(data)
    except ValidationError as exc:
        raise GraphError(_format_validation(exc, data)) from None
    return build_graph(spec)
