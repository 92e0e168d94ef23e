"""Server-rendered dashboard pages (Jinja2); charts are Vega-Lite specs from ``isosched.report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from isosched.io.hardware_json import preset_names
from isosched.report import (
    critical_by_stream,
    energy_breakdown,
    gantt_window,
    latency_cdf,
    perfetto_trace,
    plan_mesh,
    sweep_lines,
    tile_gantt,
)
from isosched.sim.policies import POLICY_NAMES
from isosched.zoo import zoo_names
from service.routers.traces import shipped

__all__ = ["STATIC_DIR", "router"]

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

router = APIRouter(include_in_schema=False)

#: Replay metrics shown per policy: key, column title (with unit), format.
COLUMNS = [
    ("satisfaction", "satisfaction (%)", "%.1f"),
    ("critical_satisfaction", "critical satisfaction (%)", "%.1f"),
    ("lbt_per_s", "LBT (jobs/s)", "%.1f"),
    ("p50_latency_ms", "p50 latency (ms)", "%.2f"),
    ("p99_latency_ms", "p99 latency (ms)", "%.2f"),
    ("energy_mj", "energy (mJ)", "%.1f"),
    ("inferences_per_j", "inferences per J", "%.0f"),
    ("preemptions", "preemptions", "%d"),
    ("preemption_overhead_ms", "checkpoint time (ms)", "%.2f"),
    ("tile_utilisation", "tile utilisation (%)", "%.1f"),
    ("antt", "ANTT", "%.2f"),
    ("stp", "STP", "%.1f"),
    ("decision_charged_p99_ms", "p99 decision, charged (ms)", "%.3f"),
]
_PERCENT = {"satisfaction", "critical_satisfaction", "tile_utilisation"}
_PAGES = {"replay": "/runs/", "sweep": "/sweeps/", "plan": "/plans/"}


def _as_percent(policies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fractions shown as percentages in the tables."""
    return {
        name: {k: (100 * v if k in _PERCENT and v is not None else v) for k, v in m.items()}
        for name, m in policies.items()
    }


def _job(request: Request, job_id: str, kind: str) -> dict[str, Any]:
    job: dict[str, Any] | None = request.app.state.store.get_job(job_id)
    if job is None or job["kind"] != kind:
        raise HTTPException(404, f"no {kind} job {job_id!r}")
    return job


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    """Recent jobs, and the latest finished ad_urban comparison (among the last 10 replays)."""
    store = request.app.state.store
    jobs = store.list_jobs(limit=50)
    for j in jobs:
        j["page"] = _PAGES.get(j["kind"], "/v1/jobs/") + j["id"]
    featured = pending = None
    for j in [j for j in jobs if j["kind"] == "replay"][:10]:
        full = store.get_job(j["id"])
        if j["state"] == "done" and full["result"].get("trace") == "ad_urban":
            featured = full
            featured["result"]["policies"] = _as_percent(featured["result"]["policies"])
            break
        if j["state"] in ("queued", "running") and pending is None:
            pending = j
    return _page(
        request,
        "home.html",
        jobs=jobs,
        featured=featured,
        featured_pending=pending,
        columns=COLUMNS,
    )


@router.get("/runs/{job_id}", response_class=HTMLResponse)
async def run_page(request: Request, job_id: str) -> HTMLResponse:
    """A replay: metrics per policy, latency CDF, critical streams, energy."""
    job = _job(request, job_id, "replay")
    charts = None
    if job["state"] == "done":
        job["result"]["policies"] = _as_percent(job["result"]["policies"])
        art = request.app.state.store.get_artifacts(job_id)
        if art is not None:
            runs = art["runs"]
            charts = {
                "latency": latency_cdf(runs),
                "critical": critical_by_stream(runs),
                "energy": energy_breakdown(runs),
            }
    return _page(request, "run.html", job=job, charts=charts, columns=COLUMNS)


@router.get("/runs/{job_id}/perfetto.json")
async def perfetto_download(request: Request, job_id: str) -> Response:
    """The replay as Chrome trace-event JSON, to open in Perfetto or chrome://tracing."""
    job = _job(request, job_id, "replay")
    art = request.app.state.store.get_artifacts(job_id)
    if job["state"] != "done" or art is None:
        raise HTTPException(404, f"replay {job_id!r} has no tile timeline")
    result = job["result"]
    doc = perfetto_trace(art["runs"], title=f"{result.get('trace')} on {result.get('hw')}")
    name = f"isosched-replay-{job_id[:8]}.trace.json"
    return JSONResponse(doc, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/runs/{job_id}/gantt", response_class=HTMLResponse)
async def gantt_page(
    request: Request,
    job_id: str,
    policy: Annotated[str, Query(max_length=64)] = "isosched",
    t0: Annotated[float, Query(ge=0, le=1e9)] = 0.0,
    t1: Annotated[float | None, Query(gt=0, le=1e9)] = None,
) -> HTMLResponse:
    """Tiles × time of one policy's replay, windowed on the server (times in ms)."""
    job = _job(request, job_id, "replay")
    art = request.app.state.store.get_artifacts(job_id)
    if job["state"] != "done" or art is None:
        raise HTTPException(404, f"replay {job_id!r} has no tile timeline")
    runs = art["runs"]
    if policy not in runs:
        raise HTTPException(
            404, f"replay {job_id!r} has no policy {policy!r} (it has {', '.join(runs)})"
        )
    details = runs[policy]
    end_ms = max(1.0, details["end_us"] / 1e3)
    t1 = min(t1 if t1 is not None else t0 + 100.0, end_ms * 2)
    if t1 <= t0:
        raise HTTPException(422, "t1 must be after t0")
    bars, truncated = gantt_window(details, int(t0 * 1e3), int(t1 * 1e3))
    w, h = details["mesh"]
    span = t1 - t0

    def window(a: float, b: float) -> tuple[str, str]:
        a = max(0.0, a)
        return f"{a:g}", f"{max(b, a + 0.001):g}"

    return _page(
        request,
        "gantt.html",
        job_id=job_id,
        policy=policy,
        policies=list(runs),
        t0=f"{t0:g}",
        t1=f"{t1:g}",
        end_ms=f"{end_ms:.0f}",
        prev=window(t0 - span, t0 if t0 > 0 else span),
        next=window(t1, t1 + span),
        zin=window(t0 + span / 4, t1 - span / 4),
        zout=window(t0 - span / 2, t1 + span / 2),
        bars=len(bars),
        truncated=truncated,
        spec=tile_gantt(bars, w * h, t0, t1, truncated),
    )


@router.get("/sweeps/{job_id}", response_class=HTMLResponse)
async def sweep_page(request: Request, job_id: str) -> HTMLResponse:
    """A sweep: LBT and satisfaction against load scale, capacity marked."""
    job = _job(request, job_id, "sweep")
    charts = None
    if job["state"] == "done":
        charts = {
            "lbt": sweep_lines(job["result"], "lbt_per_s"),
            "satisfaction": sweep_lines(job["result"], "satisfaction"),
        }
    return _page(request, "sweep.html", job=job, charts=charts)


@router.get("/plans/{job_id}", response_class=HTMLResponse)
async def plan_page(
    request: Request, job_id: str, segment: Annotated[int, Query(ge=0, le=100_000)] = 0
) -> HTMLResponse:
    """A plan: segments with II and latency, and one segment's tile graph on the mesh."""
    job = _job(request, job_id, "plan")
    spec = None
    if job["state"] == "done":
        n = len(job["result"]["segments"])
        spec = plan_mesh(job["result"], min(segment, n - 1))
    return _page(request, "plan.html", job=job, spec=spec)


@router.get("/submit", response_class=HTMLResponse)
async def submit_page(request: Request) -> HTMLResponse:
    """Forms: replay a scenario or an uploaded trace, plan a graph, sweep load scales."""
    return _page(
        request,
        "submit.html",
        scenarios=list(shipped()),
        hardware=preset_names(),
        models=zoo_names(),
        policies=list(POLICY_NAMES),
    )


def error_page(request: Request, status: int, message: str) -> Response:
    """The HTML answer to an error on a dashboard page."""
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )
