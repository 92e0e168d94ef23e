"""``/v1/graphs``: upload (JSON graph file or ONNX), read, list, delete."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from isosched.errors import GraphError
from isosched.graph import Graph, parse_graph
from isosched.io.graph_json import graph_to_dict
from service.openapi import created, request_body

router = APIRouter(prefix="/v1/graphs", tags=["graphs"])

_ONNX_TYPES = ("application/onnx", "application/octet-stream")


def summary(gid: str, g: Graph) -> dict[str, Any]:
    """What the API answers about a stored graph."""
    return {
        "id": gid,
        "name": g.name,
        "layers": len(g),
        "edges": len(g.edges),
        "macs": g.macs,
        "params": g.params,
    }


def _from_onnx(body: bytes) -> tuple[Graph, list[str]]:
    from isosched.io.onnx import read_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.onnx"  # a name we choose: clients never name paths
        path.write_bytes(body)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            doc = read_onnx(path, name="uploaded")
    return parse_graph(doc), [str(w.message) for w in caught]


@router.post(
    "",
    status_code=201,
    responses=created(201, {"getGraph": "graph_id", "deleteGraph": "graph_id"}),
    openapi_extra=request_body(
        {
            "application/json": {
                "type": "object",
                "description": "An isosched.graph/v1 file (`isosched schema graph`).",
            },
            "application/onnx": {"type": "string", "format": "binary"},
        }
    ),
)
async def upload(request: Request) -> dict[str, Any]:
    """Store a graph: an ``isosched.graph/v1`` JSON body or an ONNX file (weights optional)."""
    body = await request.body()
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    notes: list[str] = []
    if ctype in _ONNX_TYPES:
        g, notes = _from_onnx(body)
    else:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GraphError(f"request body is not valid JSON: {exc}") from None
        g = parse_graph(data)
    gid = request.app.state.store.add_graph(g.name, graph_to_dict(g))
    out = summary(gid, g)
    if notes:
        out["warnings"] = notes
    return out


@router.get("")
async def list_graphs(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
) -> list[dict[str, Any]]:
    """Stored graphs, newest first."""
    rows: list[dict[str, Any]] = request.app.state.store.list_graphs(limit, offset)
    return rows


@router.get("/{graph_id}", operation_id="getGraph")
async def get_graph(graph_id: str, request: Request) -> Response:
    """The stored graph file (canonical ``isosched.graph/v1``)."""
    text: str | None = request.app.state.store.get_graph_text(graph_id)
    if text is None:
        raise HTTPException(404, f"no graph {graph_id!r}")
    # the stored text is canonical JSON of an object: add the id without decoding it
    body = '{"id":' + json.dumps(graph_id) + "," + text.lstrip()[1:]
    return Response(body, media_type="application/json")


@router.delete("/{graph_id}", status_code=204, operation_id="deleteGraph")
async def delete_graph(graph_id: str, request: Request) -> Response:
    """Delete a stored graph."""
    if not request.app.state.store.delete_graph(graph_id):
        raise HTTPException(404, f"no graph {graph_id!r}")
    return Response(status_code=204)
