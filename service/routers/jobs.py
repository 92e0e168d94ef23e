"""``/v1/plans`` (submit) and ``/v1/jobs/{id}`` (state, result, cancel)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from isosched.errors import IsoschedError
from isosched.sim.policies import ABLATION_NAMES, POLICY_NAMES, parse_policies
from isosched.sim.sweep import BISECT_STEPS, DEFAULT_SEEDS
from isosched.trace import parse_scenario
from isosched.zoo import zoo_names
from service.openapi import created, errors
from service.quota import check_quota
from service.routers.graphs import check_plannable, resolve_models
from service.routers.hardware import resolve_hardware
from service.routers.traces import check_trace_size, scenario_doc
from service.work import plan_job, replay_job, sweep_job

FINAL = ("done", "failed", "cancelled")

#: Largest sweep one request may ask for (policies × scales × seeds).
MAX_SWEEP_POINTS = 256

router = APIRouter(tags=["jobs"])

_ONE = "|".join(re.escape(n) for n in sorted((*POLICY_NAMES, *ABLATION_NAMES), key=len)[::-1])
#: What ``policies`` accepts: ``all`` or policy or ablation names separated by commas (stated in
#: the schema; checked by ``parse_policies``, whose message lists the names).
POLICIES_PATTERN = rf"^ *(all|({_ONE}) *(, *({_ONE}) *)*) *$"


class PlanRequest(BaseModel):
    """Plan a stored graph (``graph_id``) or a zoo model (``model``) on a preset."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # what the server checks, stated in the schema: exactly one of the two
        json_schema_extra={
            "oneOf": [
                {"required": [key], "properties": {key: {"type": "string"}}}
                for key in ("graph_id", "model")
            ]
        },
    )

    graph_id: str | None = Field(default=None, max_length=64, description="A stored graph's id.")
    model: str | None = Field(
        default=None, max_length=128, json_schema_extra={"enum": [*zoo_names(), None]}
    )
    hw: str = Field(default="edge-8x8", max_length=128, description="A preset or a stored id.")


@router.post(
    "/v1/plans",
    status_code=202,
    responses={
        **created(202, {"getJob": "job_id", "cancelJob": "job_id"}),
        **errors(404, 413, 422, 429),
    },
)
async def submit_plan(req: PlanRequest, request: Request, response: Response) -> dict[str, Any]:
    """Plan in the background: 202 with the job id and ``Location: /v1/jobs/{id}``."""
    if (req.graph_id is None) == (req.model is None):
        raise HTTPException(422, "give exactly one of graph_id and model")
    # unknown hardware is 422 now, not a failed job later
    params: dict[str, Any] = _hardware_params(request.app.state.store, req.hw)
    if req.graph_id is not None:
        doc = request.app.state.store.get_graph(req.graph_id)
        if doc is None:
            raise HTTPException(404, f"no graph {req.graph_id!r}")
        await check_plannable({req.graph_id: doc})  # 422 now, not a failed job later
        params["graph"] = doc
    else:
        if req.model not in zoo_names():
            raise HTTPException(
                422,
                f"unknown model {str(req.model)[:100]!r}: give a zoo model "
                f"({', '.join(sorted(zoo_names()))}) or the graph_id of an uploaded graph",
            )
        params["model"] = req.model
    return _accepted(request, response, "plan", plan_job, params)


def _hardware_params(store: Any, hw: str) -> dict[str, Any]:
    """``hw`` for the job, and for uploaded hardware its ``hw_id`` (for the job's record).

    ``hw`` is a preset's name or an upload's document; the record names an upload by its id,
    as requests name it.
    """
    resolved = resolve_hardware(store, hw)
    return {"hw": resolved} if isinstance(resolved, str) else {"hw": resolved, "hw_id": hw}


def _accepted(
    request: Request, response: Response, kind: str, fn: Any, params: dict[str, Any]
) -> dict[str, Any]:
    """Queue the job: 202 with its id, state and ``Location: /v1/jobs/{id}``.

    Refused (413) when the database is full already: the job's result would not fit.
    """
    check_quota(request, 0)
    jid = request.app.state.runner.submit(kind, fn, params)
    response.headers["Location"] = f"/v1/jobs/{jid}"
    return {"id": jid, "state": "queued"}


class ReplayRequest(BaseModel):
    """Replay a stored trace under policies on a preset."""

    model_config = ConfigDict(extra="forbid", strict=True)

    trace_id: str = Field(max_length=64)
    hw: str = Field(default="edge-8x8", max_length=128)
    policies: str = Field(
        default="all", max_length=256, json_schema_extra={"pattern": POLICIES_PATTERN}
    )


@router.post(
    "/v1/replays",
    status_code=202,
    responses={
        **created(202, {"getJob": "job_id", "cancelJob": "job_id"}),
        **errors(404, 413, 422, 429),
    },
)
async def submit_replay(req: ReplayRequest, request: Request, response: Response) -> dict[str, Any]:
    """Replay in the background: 202 with the job id and ``Location``."""
    store = request.app.state.store
    names = parse_policies(req.policies)
    hw = _hardware_params(store, req.hw)
    models = store.get_trace_models(req.trace_id)
    if models is None:
        raise HTTPException(404, f"no trace {req.trace_id!r}")
    graphs = resolve_models(store, models)  # a graph deleted since the upload is 422 now
    await check_plannable(graphs)
    # the job references the stored trace: its text is not copied into the job's record
    params = {"trace_id": req.trace_id, **hw, "policies": names, "graphs": graphs}
    return _accepted(request, response, "replay", replay_job, params)


class SweepRequest(BaseModel):
    """An LBT sweep of a shipped scenario (by name) or a scenario document."""

    model_config = ConfigDict(extra="forbid", strict=True)

    scenario: Annotated[str, Field(max_length=128)] | dict[str, Any]
    hw: str = Field(default="edge-8x8", max_length=128)
    policies: str = Field(
        default="all", max_length=256, json_schema_extra={"pattern": POLICIES_PATTERN}
    )
    scales: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default=[0.5, 1.0, 2.0, 4.0], min_length=1, max_length=32
    )
    seeds: int = Field(default=DEFAULT_SEEDS, ge=1, le=16)


@router.post(
    "/v1/sweeps",
    status_code=202,
    responses={
        **created(202, {"getJob": "job_id", "cancelJob": "job_id"}),
        **errors(413, 422, 429),
    },
)
async def submit_sweep(req: SweepRequest, request: Request, response: Response) -> dict[str, Any]:
    """Sweep in the background: 202 with the job id and ``Location``."""
    store = request.app.state.store
    cfg = request.app.state.settings
    names = parse_policies(req.policies)
    hw = _hardware_params(store, req.hw)
    points = len(names) * len(req.scales) * req.seeds
    if points > MAX_SWEEP_POINTS:
        raise HTTPException(
            422, f"{points} sweep points (policies x scales x seeds); at most {MAX_SWEEP_POINTS}"
        )
    doc = scenario_doc(req.scenario) if isinstance(req.scenario, str) else req.scenario
    sc = parse_scenario(doc)  # a bad scenario is 422 now, not a failed job later
    graphs = resolve_models(store, (s.model for s in sc.streams))  # zoo names or graph ids
    await check_plannable(graphs)
    # sizes after scale, counted before any work: each point's trace, and all of them
    sizes = [check_trace_size(sc, x, cfg.max_trace_jobs) for x in req.scales]
    # the capacity bisection replays up to BISECT_STEPS + 1 more scales, none above the largest
    total = (sum(sizes) + (BISECT_STEPS + 1) * max(sizes)) * len(names) * req.seeds
    if total > cfg.max_sweep_jobs:
        raise IsoschedError(
            f"the sweep would replay up to {total:,} jobs over its {points} points; this service "
            f"accepts at most {cfg.max_sweep_jobs:,} (ISOSCHED_MAX_SWEEP_JOBS)"
        )
    params = {
        "scenario": doc,
        **hw,
        "policies": names,
        "scales": req.scales,
        "seeds": req.seeds,
        "graphs": graphs,
    }
    return _accepted(request, response, "sweep", sweep_job, params)


@router.get(
    "/v1/jobs/{job_id}/events",
    operation_id="jobEvents",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `progress` and `state`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors(404),
    },
)
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    """Server-sent events until the job is final.

    ``event: progress`` carries ``message`` and ``fraction`` (0–1 or null) when they change;
    ``event: state`` carries ``state`` and ``error`` when the state changes. The last event is
    always a final ``state``: ``deleted`` when the job was deleted (finished) between two looks.
    """
    store = request.app.state.store
    if store.job_summary(job_id) is None:
        raise HTTPException(404, f"no job {job_id!r}")

    async def stream() -> AsyncIterator[str]:
        last_state: tuple[str, Any] | None = None
        last_progress: Any = None
        while True:
            job = store.job_summary(job_id)  # progress and state only, never the result
            if job is None:  # finished and deleted between two looks: say so, and end
                data = {"id": job_id, "state": "deleted", "error": "the job was deleted"}
                yield f"event: state\ndata: {json.dumps(data)}\n\n"
                return
            state = (job["state"], job["error"])
            if job["progress"] is not None and job["progress"] != last_progress:
                last_progress = job["progress"]
                data = {"id": job_id, "state": job["state"], **job["progress"]}
                yield f"event: progress\ndata: {json.dumps(data)}\n\n"
            if state != last_state:
                last_state = state
                data = {"id": job_id, "state": job["state"], "error": job["error"]}
                yield f"event: state\ndata: {json.dumps(data)}\n\n"
            if job["state"] in FINAL or await request.is_disconnected():
                return
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.get("/v1/jobs", responses=errors(422))
async def list_jobs(
    request: Request,
    kind: Literal["plan", "replay", "sweep"] | None = None,
    state: Literal["queued", "running", "done", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Job summaries (state, progress, error), newest first."""
    rows: list[dict[str, Any]] = request.app.state.store.list_jobs(kind, state, limit, offset)
    return rows


@router.get("/v1/jobs/{job_id}", operation_id="getJob", responses=errors(404))
async def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """A job's state, and its result once done (or its error)."""
    job: dict[str, Any] | None = request.app.state.store.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    job["params"] = {
        k: v for k, v in job["params"].items() if k not in ("graph", "graphs", "trace", "scenario")
    }
    hw = job["params"].get("hw")
    if isinstance(hw, dict):  # uploaded hardware: named by its id, as requests name it
        job["params"]["hw_name"] = hw.get("name")
        job["params"]["hw"] = job["params"].pop("hw_id", hw.get("name"))
    return job


@router.delete(
    "/v1/jobs/{job_id}",
    status_code=202,
    operation_id="cancelJob",
    responses={
        204: {"description": "The job had finished: its record, result and artefacts are deleted."},
        **errors(404),
    },
)
async def cancel_job(job_id: str, request: Request) -> Any:
    """Cancel a pending job (202 with its state) or delete a finished one (204).

    A pending job is cancelled whichever API instance runs it; a finished one (done, failed or
    cancelled) is deleted with its result and artefacts, which frees its storage.
    """
    store = request.app.state.store
    job = store.job_summary(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    if job["state"] in ("done", "failed", "cancelled") and store.delete_job(job_id):
        return Response(status_code=204)
    if not request.app.state.runner.cancel(job_id):
        # not this instance's job (or not pending): the record is the signal — the owning
        # instance's worker stops at its next progress report
        store.set_job(job_id, "cancelled", error="cancelled by request")
    state = store.job_summary(job_id)["state"]
    return {"id": job_id, "state": state}
