"""``/v1/graphs``: upload (JSON graph file or ONNX), read, list, delete."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from isosched.errors import GraphError, UnknownModelError
from isosched.graph import Graph, parse_graph
from isosched.io.bounded_json import decode_json
from isosched.io.graph_json import graph_to_dict
from isosched.io.model_source import MAX_MODELS
from isosched.plan.planner import MAX_PLAN_UNITS
from isosched.zoo import zoo_names
from service.openapi import created, errors, request_body
from service.quota import check_quota
from service.store import Store

router = APIRouter(prefix="/v1/graphs", tags=["graphs"])

_ONNX_TYPES = ("application/onnx", "application/octet-stream")

#: Bodies smaller than this are parsed on the event loop (a thread hand-off costs more).
_INLINE_BYTES = 1 << 16

#: Bodies of at least this size are parsed in a child process: decoding megabytes of JSON
#: holds the GIL (a 10.6 MiB graph stalled ``/healthz`` for 0.9 s from a thread) and its
#: transient memory (about 35 bytes per body byte) would stay with the API process.
_PROCESS_BYTES = 1 << 20

_PARSER: ProcessPoolExecutor | None = None
_PARSER_LOCK = threading.Lock()

#: ONNX imports record their warnings through the (process-wide) warnings filters: one at a time.
_ONNX_LOCK = threading.Lock()


def resolve_models(store: Store, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Check that every model name is a zoo model or the id of a stored graph.

    Returns the stored graphs' documents by id (zoo models need none). A path is just an unknown
    name: nothing is read from the server's disk, and the answer is the same whether or not
    such a file exists.

    Raises
    ------
    UnknownModelError
        For the first other name, or more than :data:`MAX_MODELS` distinct names (422).
    """
    wanted = sorted(set(names))
    if len(wanted) > MAX_MODELS:
        raise UnknownModelError(f"{len(wanted)} distinct models named; at most {MAX_MODELS}")
    zoo = set(zoo_names())
    out: dict[str, dict[str, Any]] = {}
    for name in wanted:
        if name in zoo:
            continue
        doc = store.get_graph(name) if len(name) <= 64 else None
        if doc is None:
            raise UnknownModelError(
                f"unknown model {name[:100]!r}: give a zoo model ({', '.join(sorted(zoo))}) or "
                "the id of an uploaded graph"
            )
        out[name] = doc
    return out


def summary(gid: str, g: Graph) -> dict[str, Any]:
    """What the API answers about a stored graph.

    An ONNX import also says how many layers have guessed shapes or unknown compute.
    """
    return {"id": gid, **_facts(g)}


def _facts(g: Graph) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": g.name,
        "layers": len(g),
        "edges": len(g.edges),
        "macs": g.macs,
        "params": g.params,
    }
    for key in ("guessed_shape_layers", "unknown_compute_layers"):
        if key in g.meta:
            out[key] = g.meta[key]
    return out


#: Most ``dim`` parameters one upload may give.
MAX_DIMS = 64


def _parse_facts(
    body: bytes, onnx: bool, dims: list[str] | None = None, strict: bool = False
) -> tuple[dict[str, Any], list[str], str]:
    """:func:`_parse_upload` reduced to what crosses a process boundary cheaply."""
    g, notes, text = _parse_upload(body, onnx, dims, strict)
    return _facts(g), notes, text


def _parser() -> ProcessPoolExecutor:
    """The one child process that parses large uploads (started on first use, dies with us)."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            from service.local_runner import die_with_parent

            _PARSER = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(), False),  # started by whichever thread runs the loop
            )
        return _PARSER


def shutdown_parser() -> None:
    """Stop the upload parser's child process, if one was started."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is not None:
            _PARSER.shutdown(wait=False, cancel_futures=True)
            _PARSER = None


async def _parse_large(
    body: bytes, onnx: bool, dims: list[str] | None, strict: bool
) -> tuple[dict[str, Any], list[str], str]:
    """Parse a large upload in the parser process; a parser that died is replaced (422)."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_parser(), _parse_facts, body, onnx, dims, strict)
    except BrokenProcessPool:
        shutdown_parser()
        raise GraphError(
            "the upload could not be parsed: the parser process ran out of memory or was killed"
        ) from None


def _plan_units(text: str) -> int:
    """Planning units of a stored graph's JSON text (what the planner counts against its cap)."""
    from isosched.plan.units import build_units

    return len(build_units(parse_graph(json.loads(text))))


async def check_plannable(graphs: Mapping[str, dict[str, Any]]) -> None:
    """Refuse (422) a stored graph the planner would refuse for its size, before any job.

    A graph has at most one planning unit per layer, so only graphs of more than
    :data:`~isosched.plan.planner.MAX_PLAN_UNITS` layers are counted, in the parser process.

    Raises
    ------
    HTTPException
        422 naming the graph and its unit count.
    """
    for gid, doc in graphs.items():
        layers = doc.get("layers")
        if not isinstance(layers, list) or len(layers) <= MAX_PLAN_UNITS:
            continue
        loop = asyncio.get_running_loop()
        try:
            units = await loop.run_in_executor(_parser(), _plan_units, json.dumps(doc))
        except BrokenProcessPool:
            shutdown_parser()
            raise GraphError(
                f"graph {gid!r} could not be counted: the parser process ran out of memory or "
                "was killed"
            ) from None
        if units > MAX_PLAN_UNITS:
            raise HTTPException(
                422,
                f"graph {gid!r} ({str(doc.get('name'))[:100]}) has {units:,} planning units "
                f"(compute layers); at most {MAX_PLAN_UNITS:,} are planned",
            )


def _parse_upload(
    body: bytes, onnx: bool, dims: list[str] | None = None, strict: bool = False
) -> tuple[Graph, list[str], str]:
    """(graph, importer warnings, canonical JSON text) of an upload; runs off the event loop.

    ONNX is converted from the bytes in memory: no file, so no server path in any message.
    ``dims`` are ``NAME=VALUE`` values of symbolic dimensions; with ``strict`` a model with
    guessed shapes or unknown compute is refused.
    """
    notes: list[str] = []
    if onnx:
        from isosched.io.onnx import parse_dims, parse_onnx, uncertainty_line

        given = parse_dims(dims or [])
        with _ONNX_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            doc = parse_onnx(body, name="uploaded", dims=given)
        notes = [str(w.message) for w in caught]
        line = uncertainty_line(doc["meta"])
        if line is not None:
            if strict:
                raise GraphError(f"the uploaded ONNX model: {line}; refused (strict=true)")
            notes.append(line)
        g = parse_graph(doc)
    else:
        g = parse_graph(decode_json(body, "request body", GraphError))
    try:
        text = json.dumps(graph_to_dict(g), allow_nan=False)
    except ValueError:
        raise GraphError("the graph holds NaN or an infinite number; JSON has neither") from None
    return g, notes, text


@router.post(
    "",
    status_code=201,
    responses={
        **created(201, {"getGraph": "graph_id", "deleteGraph": "graph_id"}),
        **errors(413, 422),
    },
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
async def upload(
    request: Request,
    dim: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_DIMS,
            description=(
                "ONNX only: value of a symbolic dimension as NAME=VALUE (repeatable), e.g. "
                "`?dim=sequence=128&dim=height=512`."
            ),
        ),
    ] = None,
    strict: bool = Query(
        False,
        description=(
            "ONNX only: refuse (422) a model in which any layer has a guessed shape or unknown "
            "compute, instead of storing it with the counts."
        ),
    ),
) -> dict[str, Any]:
    """Store a graph: an ``isosched.graph/v1`` JSON body or an ONNX file (weights optional).

    An ONNX upload answers (and stores in the graph's ``meta``) how many layers have guessed
    shapes (``guessed_shape_layers``) or unknown compute (``unknown_compute_layers``).
    """
    body = await request.body()
    check_quota(request, len(body))
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype.startswith("multipart/"):
        raise GraphError(
            "send the file itself as the request body, not a form: content-type "
            "application/json for a graph file, application/onnx for ONNX "
            "(curl --data-binary @FILE -H 'content-type: ...')"
        )
    onnx = ctype in _ONNX_TYPES
    if len(body) >= _PROCESS_BYTES:  # large: in a child process (GIL and memory stay free)
        facts, notes, text = await _parse_large(body, onnx, dim, strict)
    elif len(body) >= _INLINE_BYTES or onnx:  # medium or ONNX: in a thread
        facts, notes, text = await asyncio.to_thread(_parse_facts, body, onnx, dim, strict)
    else:
        facts, notes, text = _parse_facts(body, onnx)
    gid = request.app.state.store.add_graph(facts["name"], {}, text=text)
    out = {"id": gid, **facts}
    if notes:
        out["warnings"] = notes
    return out


@router.get("", responses=errors(422))
async def list_graphs(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
) -> list[dict[str, Any]]:
    """Stored graphs, newest first."""
    rows: list[dict[str, Any]] = request.app.state.store.list_graphs(limit, offset)
    return rows


@router.get("/{graph_id}", operation_id="getGraph", responses=errors(404))
async def get_graph(graph_id: str, request: Request) -> Response:
    """The stored graph file (canonical ``isosched.graph/v1``), as it can be uploaded again."""
    text: str | None = request.app.state.store.get_graph_text(graph_id)
    if text is None:
        raise HTTPException(404, f"no graph {graph_id!r}")
    return Response(text, media_type="application/json")


@router.delete("/{graph_id}", status_code=204, operation_id="deleteGraph", responses=errors(404))
async def delete_graph(graph_id: str, request: Request) -> Response:
    """Delete a stored graph."""
    if not request.app.state.store.delete_graph(graph_id):
        raise HTTPException(404, f"no graph {graph_id!r}")
    return Response(status_code=204)
