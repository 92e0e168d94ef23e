"""``/v1/plans`` (submit) and ``/v1/jobs/{id}`` (state, result, cancel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from isosched.io.hardware_json import load_hardware
from isosched.zoo import zoo_names
from service.work import plan_job

router = APIRouter(tags=["jobs"])


class PlanRequest(BaseModel):
    """Plan a stored graph (``graph_id``) or a zoo model (``model``) on a preset."""

    model_config = ConfigDict(extra="forbid", strict=True)

    graph_id: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    hw: str = Field(default="edge-8x8", max_length=128)


@router.post("/v1/plans", status_code=202)
def submit_plan(req: PlanRequest, request: Request, response: Response) -> dict[str, Any]:
    """Plan in the background: 202 with the job id and ``Location: /v1/jobs/{id}``."""
    if (req.graph_id is None) == (req.model is None):
        raise HTTPException(422, "give exactly one of graph_id and model")
    load_hardware(req.hw)  # unknown presets are 422 now, not a failed job later
    params: dict[str, Any] = {"hw": req.hw}
    if req.graph_id is not None:
        doc = request.app.state.store.get_graph(req.graph_id)
        if doc is None:
            raise HTTPException(404, f"no graph {req.graph_id!r}")
        params["graph"] = doc
    else:
        if req.model not in zoo_names():
            raise HTTPException(422, f"unknown model {req.model!r}")
        params["model"] = req.model
    jid = request.app.state.runner.submit("plan", plan_job, params)
    response.headers["Location"] = f"/v1/jobs/{jid}"
    return {"id": jid, "state": "running"}


@router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """A job's state, and its result once done (or its error)."""
    job: dict[str, Any] | None = request.app.state.store.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    job["params"] = {k: v for k, v in job["params"].items() if k != "graph"}
    return job


@router.delete("/v1/jobs/{job_id}", status_code=202)
def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
    """Cancel a pending job (a finished one stays as it is)."""
    job = request.app.state.store.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    request.app.state.runner.cancel(job_id)
    state = request.app.state.store.get_job(job_id)["state"]
    return {"id": job_id, "state": state}
