"""The tile graph (``isosched.tilegraph/v1``): one vertex per tile task, edges with bytes.

It is what Layer Concatenate and Split produces and what the matcher places on the chip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from isosched.errors import IsoschedError

__all__ = [
    "TILEGRAPH_SCHEMA",
    "TileGraph",
    "TileGraphError",
    "TileVertex",
    "tilegraph_json_schema",
]

TILEGRAPH_SCHEMA = "isosched.tilegraph/v1"

#: Largest tile graph accepted from a file.
MAX_VERTICES = 1_000_000
MAX_EDGES = 10_000_000
#: Most bytes per inference on one edge (1 TiB, far above any tensor): the matcher's costs sum
#: bytes × hops in 64-bit integers.
MAX_EDGE_BYTES = 1 << 40


class TileGraphError(IsoschedError):
    """A tile graph is malformed (unknown vertex in an edge, duplicate id, ...)."""


@dataclass(frozen=True, slots=True)
class TileVertex:
    """One tile task.

    Attributes
    ----------
    id : str
        Unique id.
    layers : tuple of str
        Layers (or layer slices) this task computes; empty for bare patterns.
    cycles : float
        Stage time of the task for the whole tensor, cycles (0 when unknown).
    """

    id: str
    layers: tuple[str, ...] = ()
    cycles: float = 0.0


@dataclass(frozen=True)
class TileGraph:
    """A directed graph of tile tasks; vertices are referred to by index in ``vertices``.

    Attributes
    ----------
    vertices : tuple of TileVertex
        The tasks.
    edges : tuple of (int, int, int)
        ``(src index, dst index, bytes per inference)``; ``bytes`` is 0 when unknown.
    """

    vertices: tuple[TileVertex, ...]
    edges: tuple[tuple[int, int, int], ...]
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _ids: tuple[str, ...] | None = field(init=False, repr=False, compare=False, default=None)
    _csr: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, v in enumerate(self.vertices):
            if v.id in index:
                raise TileGraphError(f"duplicate tile-graph vertex id {v.id!r}")
            index[v.id] = i
        n = len(self.vertices)
        for s, d, b in self.edges:
            if not (0 <= s < n and 0 <= d < n):
                raise TileGraphError(f"edge ({s}, {d}) names a vertex outside 0..{n - 1}")
            if b < 0:
                raise TileGraphError(
                    f"edge {self.vertices[s].id}->{self.vertices[d].id}: negative bytes {b}"
                )
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_edges(
        cls, ids: Sequence[str], edges: Sequence[tuple[str, str] | tuple[str, str, int]]
    ) -> TileGraph:
        """Build from vertex ids and ``(src id, dst id[, bytes])`` edges."""
        index = {v: i for i, v in enumerate(ids)}
        out = []
        for e in edges:
            try:
                out.append((index[e[0]], index[e[1]], int(e[2]) if len(e) > 2 else 0))
            except KeyError as exc:
                raise TileGraphError(f"edge names unknown vertex {exc.args[0]!r}") from None
        return cls(tuple(TileVertex(v) for v in ids), tuple(out))

    def __len__(self) -> int:
        return len(self.vertices)

    @property
    def ids(self) -> list[str]:
        """Vertex ids in index order (a fresh list).

        Kept once computed; lazily, so that graphs pickled before the field existed (the plan
        cache on disk) still load and answer.
        """
        if self._ids is None:
            object.__setattr__(self, "_ids", tuple(v.id for v in self.vertices))
        assert self._ids is not None
        return list(self._ids)

    def index(self, vertex_id: str) -> int:
        """Index of a vertex id."""
        return self._index[vertex_id]

    def undirected_csr(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Undirected adjacency as CSR ``(indptr, indices)``, no self loops, no duplicates.

        Placement constraints are symmetric (a hop distance), so the matcher ignores direction.
        Computed once per graph (the online placer asks for it at every turn); each call returns
        fresh copies.
        """
        if self._csr is None:
            object.__setattr__(self, "_csr", self._undirected_csr())
        assert self._csr is not None
        return self._csr[0].copy(), self._csr[1].copy()

    def _undirected_csr(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        n = len(self.vertices)
        if not self.edges:
            return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        e = np.asarray([(s, d) for s, d, _ in self.edges if s != d], dtype=np.int64)
        if e.size == 0:
            return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        both = np.concatenate([e, e[:, ::-1]])
        key = np.unique(both[:, 0] * n + both[:, 1])
        rows, cols = key // n, key % n
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(indptr, rows + 1, 1)
        return np.cumsum(indptr), cols.astype(np.int64)

    def to_doc(self) -> dict[str, Any]:
        """The ``isosched.tilegraph/v1`` document."""
        verts: list[dict[str, Any]] = []
        for v in self.vertices:
            d: dict[str, Any] = {"id": v.id}
            if v.layers:
                d["layers"] = list(v.layers)
            if v.cycles:
                d["cycles"] = v.cycles
            verts.append(d)
        return {
            "schema": TILEGRAPH_SCHEMA,
            "vertices": verts,
            "edges": [
                {"src": self.vertices[s].id, "dst": self.vertices[d].id, "bytes": b}
                for s, d, b in self.edges
            ],
        }

    @classmethod
    def from_doc(cls, doc: Any) -> TileGraph:
        """Parse an ``isosched.tilegraph/v1`` document.

        Raises
        ------
        TileGraphError
            On a missing field, wrong type, unknown vertex or absurd size.
        """
        if not isinstance(doc, dict):
            raise TileGraphError("a tile graph must be a JSON object")
        schema = doc.get("schema", TILEGRAPH_SCHEMA)
        if schema != TILEGRAPH_SCHEMA:
            raise TileGraphError(f"unsupported tile graph schema {schema!r}")
        raw_v, raw_e = doc.get("vertices"), doc.get("edges", [])
        if not isinstance(raw_v, list) or not isinstance(raw_e, list):
            raise TileGraphError(
                "a tile graph needs a 'vertices' list ('edges', when given, is a list too)"
            )
        if len(raw_v) > MAX_VERTICES or len(raw_e) > MAX_EDGES:
            raise TileGraphError(
                f"tile graph too large ({len(raw_v):,} vertices, {len(raw_e):,} edges; "
                f"limits {MAX_VERTICES:,} and {MAX_EDGES:,})"
            )
        verts = []
        for i, v in enumerate(raw_v):
            if not isinstance(v, dict) or not isinstance(v.get("id"), str) or not v["id"]:
                raise TileGraphError(f"vertices[{i}] needs a non-empty string 'id'")
            layers = v.get("layers", [])
            cycles = v.get("cycles", 0.0)
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise TileGraphError(f"vertex {v['id']!r}: 'layers' must be a list of strings")
            if not isinstance(cycles, int | float) or isinstance(cycles, bool) or cycles < 0:
                raise TileGraphError(f"vertex {v['id']!r}: 'cycles' must be a number >= 0")
            verts.append(TileVertex(v["id"], tuple(layers), float(cycles)))
        index = {v.id: i for i, v in enumerate(verts)}
        edges = []
        for i, e in enumerate(raw_e):
            if not isinstance(e, dict):
                raise TileGraphError(f"edges[{i}] must be an object with 'src' and 'dst'")
            src, dst, nbytes = e.get("src"), e.get("dst"), e.get("bytes", 0)
            if not isinstance(src, str) or not isinstance(dst, str):
                raise TileGraphError(f"edges[{i}]: 'src' and 'dst' must be vertex ids (strings)")
            if src not in index or dst not in index:
                bad = src if src not in index else dst
                raise TileGraphError(f"edges[{i}] names unknown vertex {bad!r}")
            if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
                raise TileGraphError(f"edges[{i}]: 'bytes' must be an integer >= 0")
            if nbytes > MAX_EDGE_BYTES:
                raise TileGraphError(f"edges[{i}]: 'bytes' is above {MAX_EDGE_BYTES:,} (1 TiB)")
            edges.append((index[str(src)], index[str(dst)], nbytes))
        return cls(tuple(verts), tuple(edges))


def tilegraph_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of tile graph files, ``isosched.tilegraph/v1``.

    It states what :meth:`TileGraph.from_doc` accepts, except what a schema cannot say: that
    vertex ids are unique and that edges name existing vertices.
    """
    vertex = {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "description": "Unique vertex id."},
            "layers": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Layers (or layer slices) this tile task computes.",
            },
            "cycles": {
                "type": "number",
                "minimum": 0,
                "description": "Stage time of the task for the whole tensor, cycles.",
            },
        },
    }
    edge = {
        "type": "object",
        "required": ["src", "dst"],
        "properties": {
            "src": {"type": "string", "description": "Id of the producing vertex."},
            "dst": {"type": "string", "description": "Id of the consuming vertex."},
            "bytes": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_EDGE_BYTES,
                "description": "Bytes per inference on the edge (optional for matching).",
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "isosched tile graph (the matcher's pattern)",
        "type": "object",
        "required": ["vertices"],
        "properties": {
            "schema": {"const": TILEGRAPH_SCHEMA},
            "vertices": {"type": "array", "items": vertex, "maxItems": MAX_VERTICES},
            "edges": {"type": "array", "items": edge, "maxItems": MAX_EDGES},
        },
    }
