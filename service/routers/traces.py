"""``/v1/scenarios`` (shipped) and ``/v1/traces`` (generate from a scenario, or upload)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from isosched.errors import IsoschedError
from isosched.io.bounded_json import decode_json
from isosched.io.trace_jsonl import parse_trace_text, read_scenario
from isosched.trace import Scenario, Trace, generate_trace, parse_scenario
from isosched.trace.generate import expected_jobs
from service.openapi import created, errors, request_body
from service.quota import check_quota
from service.routers.graphs import resolve_models

router = APIRouter(tags=["traces"])


def _scenario_dir() -> Path:
    """``traces/scenarios`` of a checkout, or the copy an installed wheel carries."""
    checkout = Path(__file__).resolve().parents[2] / "traces" / "scenarios"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parents[1] / "scenarios"


#: Shipped scenarios.
SCENARIO_DIR = _scenario_dir()


def shipped() -> dict[str, Path]:
    """Shipped scenario names and files."""
    if not SCENARIO_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.json"))}


def scenario_doc(name: str) -> dict[str, Any]:
    """A shipped scenario's document (422 for an unknown name)."""
    files = shipped()
    if name not in files:
        raise IsoschedError(f"unknown scenario {name!r}; shipped: {', '.join(files)}")
    return dict(json.loads(files[name].read_text()))


#: Bytes a generated trace stores per job, about (a JSON line).
_JOB_LINE_BYTES = 160


def check_trace_size(sc: Scenario, scale: float, limit: int) -> int:
    """Jobs a trace of ``sc`` at ``scale`` may hold (counted, not generated).

    Raises
    ------
    IsoschedError
        Over ``limit`` (``ISOSCHED_MAX_TRACE_JOBS``), naming it (422).
    """
    jobs = expected_jobs(sc, scale)
    if jobs > limit:
        raise IsoschedError(
            f"scenario {sc.name!r} at scale {scale:g} releases up to {jobs:,} jobs; this service "
            f"accepts at most {limit:,} per trace (ISOSCHED_MAX_TRACE_JOBS)"
        )
    return jobs


def _generate(sc: Scenario, seed: int, scale: float, limit: int) -> tuple[Trace, str]:
    trace = generate_trace(sc, seed=seed, scale=scale, max_jobs=limit)
    return trace, trace_text(trace)


def trace_text(trace: Trace) -> str:
    """JSON Lines text of a trace."""
    out = io.StringIO()
    out.write(json.dumps(trace.header, separators=(",", ":")) + "\n")
    for job in trace.jobs:
        out.write(json.dumps(job.to_doc(), separators=(",", ":")) + "\n")
    return out.getvalue()


@router.get("/v1/scenarios")
async def list_scenarios() -> list[dict[str, Any]]:
    """Shipped scenarios: name, description, streams."""
    out = []
    for name, path in shipped().items():
        sc = read_scenario(path)
        out.append({"name": name, "description": sc.description, "streams": len(sc.streams)})
    return out


@router.get("/v1/scenarios/{name}", responses=errors(404))
async def get_scenario(name: str) -> dict[str, Any]:
    """A shipped scenario document."""
    if name not in shipped():
        raise HTTPException(404, f"no scenario {name!r}")
    return scenario_doc(name)


class TraceRequest(BaseModel):
    """Generate a trace from a shipped scenario (by name) or a scenario document."""

    model_config = ConfigDict(extra="forbid", strict=True)

    scenario: Annotated[str, Field(max_length=128)] | dict[str, Any]
    seed: int = Field(default=0, ge=0, le=2**31)
    scale: float = Field(default=1.0, gt=0, le=1000)


@router.post(
    "/v1/traces",
    status_code=201,
    responses={
        **created(201, {"getTrace": "trace_id", "deleteTrace": "trace_id"}),
        **errors(413, 422),
    },
    openapi_extra=request_body(
        {
            "application/json": TraceRequest.model_json_schema(),
            "application/x-ndjson": {
                "type": "string",
                "description": "An isosched.trace/v1 file: a header line, then one job per line "
                "(`isosched schema trace`).",
            },
        }
    ),
)
async def create_trace(request: Request) -> dict[str, Any]:
    """Generate (JSON body ``{"scenario", "seed", "scale"}``) or upload (JSON Lines) a trace."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    body = await request.body()
    store = request.app.state.store
    limit: int = request.app.state.settings.max_trace_jobs
    if ctype in ("application/x-ndjson", "application/jsonl", "text/plain"):
        check_quota(request, len(body))
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise IsoschedError("trace is not UTF-8 text") from None
        trace = await asyncio.to_thread(parse_trace_text, text, limit)
    else:
        try:
            req = TraceRequest.model_validate(decode_json(body, "trace request"))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "body"
            raise IsoschedError(f"invalid trace request: {where}: {err['msg']}") from None
        doc = scenario_doc(req.scenario) if isinstance(req.scenario, str) else req.scenario
        sc = parse_scenario(doc)
        jobs = check_trace_size(sc, req.scale, limit)  # counted before any job is made
        check_quota(request, jobs * _JOB_LINE_BYTES)
        trace, text = await asyncio.to_thread(_generate, sc, req.seed, req.scale, limit)
    models = sorted({j.model for j in trace.jobs})
    resolve_models(store, models)  # a trace naming an unknown model is refused now, not later
    name = str(trace.header.get("scenario", "trace"))[:256]
    tid = store.add_trace(name, trace.header, text, models=models, jobs=len(trace.jobs))
    return {"id": tid, "name": name, "jobs": len(trace.jobs), "header": trace.header}


@router.get("/v1/traces", responses=errors(422))
async def list_traces(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
) -> list[dict[str, Any]]:
    """Stored traces, newest first."""
    rows: list[dict[str, Any]] = request.app.state.store.list_traces(limit, offset)
    return rows


def _trace_document(trace_id: str, header: dict[str, Any], text: str) -> Iterator[str]:
    """``{"id", "header", "jobs": [...]}`` in chunks, the stored job lines copied undecoded."""
    yield '{"id":' + json.dumps(trace_id) + ',"header":' + json.dumps(header) + ',"jobs":['
    lines = [x for x in text.splitlines()[1:] if x.strip()]
    for i in range(0, len(lines), 4096):
        yield ("," if i else "") + ",".join(lines[i : i + 4096])
    yield "]}"


@router.get(
    "/v1/traces/{trace_id}",
    operation_id="getTrace",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Header and jobs.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **errors(404),
    },
)
async def get_trace(trace_id: str, request: Request) -> StreamingResponse:
    """A stored trace: header and jobs (streamed: the jobs are not decoded again)."""
    got = request.app.state.store.get_trace(trace_id)
    if got is None:
        raise HTTPException(404, f"no trace {trace_id!r}")
    header, text = got
    return StreamingResponse(_trace_document(trace_id, header, text), media_type="application/json")


@router.delete(
    "/v1/traces/{trace_id}", status_code=204, operation_id="deleteTrace", responses=errors(404)
)
async def delete_trace(trace_id: str, request: Request) -> Response:
    """Remove a stored trace (jobs that used it keep their results)."""
    if not request.app.state.store.delete_trace(trace_id):
        raise HTTPException(404, f"no trace {trace_id!r}")
    return Response(status_code=204)
