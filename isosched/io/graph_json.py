"""Read and write ``isosched.graph/v1`` graph files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from isosched.errors import GraphError
from isosched.graph.model import Graph, parse_graph
from isosched.graph.schema import GRAPH_SCHEMA, GraphFile
from isosched.io.bounded_json import decode_json

__all__ = ["graph_json_schema", "graph_to_dict", "read_graph", "write_graph"]

#: Largest graph file read from disk, bytes (a 10^6-layer graph is about 200 MB).
MAX_FILE_BYTES = 512 * 1024 * 1024


def read_json(path: str | Path, what: str = "file") -> Any:
    """Decode one JSON document from ``path``.

    Raises
    ------
    GraphError
        If the file is missing, too large, not JSON or over a limit of
        :func:`isosched.io.bounded_json.decode_json` (nesting, number size, NaN).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise GraphError(f"cannot read {what} {str(p)!r}: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise GraphError(f"{what} {str(p)!r} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise GraphError(f"cannot read {what} {str(p)!r}: {exc.strerror}") from None
    return decode_json(data, f"{what} {str(p)!r}", GraphError)


def read_graph(path: str | Path) -> Graph:
    """Read and validate a graph file."""
    return parse_graph(read_json(path, "graph file"))


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """The canonical ``isosched.graph/v1`` document of a graph (layers in topological order)."""
    layers = []
    for lay in graph.layers:
        doc: dict[str, Any] = {"id": lay.id, "op": lay.op}
        if lay.inputs:
            doc["inputs"] = list(lay.inputs)
        doc.update(lay.params)
        layers.append(doc)
    out: dict[str, Any] = {"schema": GRAPH_SCHEMA, "name": graph.name, "dtype": graph.dtype}
    if graph.meta:
        out["meta"] = dict(graph.meta)
    out["layers"] = layers
    return out


def write_graph(graph: Graph, path: str | Path) -> None:
    """Write a graph file (compact, one layer per line for readable diffs)."""
    doc = graph_to_dict(graph)
    layers = doc.pop("layers")
    head = json.dumps(doc)[:-1]
    body = ",\n".join("  " + json.dumps(lay, separators=(",", ":")) for lay in layers)
    Path(path).write_text(f'{head}, "layers": [\n{body}\n]}}\n', encoding="utf-8")


def graph_json_schema() -> dict[str, Any]:
    """JSON Schema of the graph file format."""
    return GraphFile.model_json_schema(by_alias=True)
