"""Server-rendered dashboard pages (Jinja2); charts are Vega-Lite specs from ``isosched.report``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from isosched.io.hardware_json import preset_names
from isosched.report import (
    chip_window,
    critical_by_stream,
    energy_breakdown,
    job_gantt,
    latency_cdf,
    perfetto_trace,
    plan_mesh,
    sweep_capacities,
    sweep_lines,
)
from isosched.report.palette import policy_order, stream_colours
from isosched.report.tables import (
    PHYSICS,
    capacity_cell,
    scoreboard_rows,
    stream_satisfaction,
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


def _name(value: Any) -> str | None:
    """A hardware or scenario given as a name or as a document with a ``name``."""
    if isinstance(value, dict):
        got = value.get("name")
        return str(got) if got is not None else None
    return None if value is None else str(value)


def _trace_label(header: dict[str, Any] | None) -> str:
    """`` ×SCALE, seed SEED`` of a trace header: what tells two traces of a scenario apart."""
    seed = (header or {}).get("seed")
    bits = [b for b in (_scale(header), None if seed is None else f"seed {seed}") if b]
    return " " + ", ".join(bits) if bits else ""


def _describe(job: dict[str, Any], traces: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a job was: its kind's page, model or scenario or trace, hardware, policies."""
    params = job.get("params") or {}
    result = job.get("result") if job["state"] == "done" else None
    result = result if isinstance(result, dict) else {}
    hw = _name(result.get("hw")) or _name(params.get("hw"))
    policies = params.get("policies") or list(result.get("policies", {}))
    if job["kind"] == "replay":
        trace = traces.get(str(params.get("trace_id"))) or {}
        scenario = result.get("trace") or trace.get("name") or "uploaded trace"
        what = f"replay of {scenario}{_trace_label(trace.get('header'))}"
    elif job["kind"] == "sweep":
        scenario = _name(params.get("scenario")) or result.get("scenario") or "scenario"
        scales = params.get("scales") or [pt["scale"] for pt in _first_curve(result)]
        span = ""
        if scales:
            lo, hi = min(scales), max(scales)
            span = f" ×{lo:g}" if lo == hi else f" ×{lo:g}–{hi:g}"
        what = f"sweep of {scenario}{span}, {params.get('seeds', result.get('seeds', 1))} seed(s)"
    else:
        scenario = None
        model = params.get("model") or _name(params.get("graph")) or result.get("model")
        what = f"plan of {model or 'uploaded graph'}"
    return {
        **{k: job[k] for k in ("id", "kind", "state", "error", "progress", "created_at")},
        "page": _PAGES.get(job["kind"], "/v1/jobs/") + job["id"],
        "what": what,
        "scenario": scenario,
        "hw": hw,
        "policies": ", ".join(policy_order(policies)) if job["kind"] != "plan" else "",
    }


def _first_curve(result: dict[str, Any]) -> list[dict[str, Any]]:
    for body in result.get("policies", {}).values():
        return list(body.get("curve", []))
    return []


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    scenario: Annotated[str | None, Query(max_length=256)] = None,
    hw: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """LBT and critical satisfaction against load per scenario, then every run, filtered."""
    if kind == "":
        kind = None
    if kind is not None and kind not in _PAGES:
        raise HTTPException(404, f"no kind of run {kind!r} (kinds: {', '.join(_PAGES)})")
    store = request.app.state.store
    traces = {t["id"]: t for t in store.list_traces()}
    runs = []
    for summary in store.list_jobs(limit=200):
        full = store.get_job(summary["id"])
        if full is not None:
            runs.append((full, _describe(full, traces)))
    latest: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for full, row in runs:  # newest first: the first done sweep of a scenario on a chip wins
        if row["kind"] == "sweep" and row["state"] == "done":
            latest.setdefault((str(row["scenario"]), str(row["hw"])), (full, row))
    lbt, critical = [], []
    for (sc, chip), (full, row) in sorted(latest.items()):
        result = full["result"]
        span = f"{sc} on {chip}"
        lbt.append(
            (
                row,
                sweep_lines(
                    result, "lbt_per_s", title=f"{span}: latency-bound throughput against load"
                ),
            )
        )
        critical.append(
            (
                row,
                sweep_lines(
                    result,
                    "critical_satisfaction",
                    title=f"{span}: critical deadline satisfaction against load",
                ),
            )
        )
    pending = [row for _, row in runs if row["state"] in ("queued", "running")]
    options = {
        "kind": list(_PAGES),
        "scenario": sorted({str(r["scenario"]) for _, r in runs if r["scenario"]}),
        "hw": sorted({str(r["hw"]) for _, r in runs if r["hw"]}),
    }
    if scenario and scenario not in options["scenario"]:
        raise HTTPException(404, f"no run of scenario {scenario!r}")
    if hw and hw not in options["hw"]:
        raise HTTPException(404, f"no run on hardware {hw!r}")
    rows = [
        r
        for _, r in runs
        if (kind is None or r["kind"] == kind)
        and (not scenario or r["scenario"] == scenario)
        and (not hw or r["hw"] == hw)
    ]
    return _page(
        request,
        "home.html",
        lbt=lbt,
        critical=critical,
        pending_sweeps=[r for r in pending if r["kind"] == "sweep"],
        rows=rows,
        total=len(runs),
        options=options,
        chosen={"kind": kind or "", "scenario": scenario or "", "hw": hw or ""},
    )


@router.get("/runs/{job_id}", response_class=HTMLResponse)
async def run_page(request: Request, job_id: str) -> HTMLResponse:
    """A replay: metrics per policy, latency CDF, critical streams, energy."""
    job = _job(request, job_id, "replay")
    tid = (job.get("params") or {}).get("trace_id")
    header = request.app.state.store.get_trace_header(str(tid)) if tid else None
    charts = None
    if job["state"] == "done":
        pols = job["result"]["policies"]
        job["result"]["policies"] = _as_percent({p: pols[p] for p in policy_order(pols)})
        art = request.app.state.store.get_artifacts(job_id)
        if art is not None:
            runs = art["runs"]
            charts = {
                "latency": latency_cdf(runs),
                "critical": critical_by_stream(runs),
                "energy": energy_breakdown(runs),
            }
    return _page(request, "run.html", job=job, charts=charts, columns=COLUMNS, scale=_scale(header))


def _scale(header: dict[str, Any] | None) -> str | None:
    """The load scale of a trace header, as the pages print it (``×0.5``), if it has one."""
    scale = (header or {}).get("scale")
    return f"×{scale:g}" if isinstance(scale, (int, float)) else None


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
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Vary": "Accept-Encoding"}
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    if "gzip" in request.headers.get("accept-encoding", ""):
        # a long replay's trace runs to 100 MB of JSON; compressed about a tenth of that
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


#: Window presets of the chip view, ms.
WINDOWS_MS = (10.0, 100.0, 1000.0)


@router.get("/runs/{job_id}/gantt", response_class=HTMLResponse)
async def gantt_page(
    request: Request,
    job_id: str,
    policy: Annotated[str, Query(max_length=64)] = "isosched",
    t0: Annotated[float, Query(ge=0, le=1e9)] = 0.0,
    t1: Annotated[float | None, Query(gt=0, le=1e9)] = None,
) -> HTMLResponse:
    """The chip over time: the mesh at an instant beside a Gantt with one row per job (ms)."""
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
    jobs, intervals, truncated = chip_window(details, int(t0 * 1e3), int(t1 * 1e3))
    cut = False
    if truncated:
        # more jobs than a page shows: end the window where the last job shown was released,
        # so that the chip view has every job of the window (the pager's "later" goes on)
        last = max(j["release_ms"] for j in jobs)
        if last > t0:
            t1, cut = last, True
            jobs, intervals, truncated = chip_window(details, int(t0 * 1e3), int(t1 * 1e3))
    w, h = details["mesh"]
    span = t1 - t0

    def window(a: float, b: float) -> tuple[str, str]:
        a = max(0.0, a)
        return f"{a:g}", f"{max(b, a + 0.001):g}"

    # colours of every stream of the run, so that a stream looks the same in every window
    colours = stream_colours(j["stream"] for j in details["jobs"])
    chip = {
        "mesh": [w, h],
        "t0": t0,
        "t1": t1,
        "jobs": jobs,
        "intervals": intervals,
        "colours": {s: colours[s] for s in sorted({j["stream"] for j in jobs})},
    }
    presets = [(f"{ms:g} ms", window(t0, t0 + ms)) for ms in WINDOWS_MS]
    presets.append(("whole run", window(0.0, end_ms)))
    return _page(
        request,
        "gantt.html",
        job_id=job_id,
        policy=policy,
        policies=policy_order(runs),
        t0=f"{t0:g}",
        t1=f"{t1:g}",
        end_ms=f"{end_ms:.0f}",
        prev=window(t0 - span, t0 if t0 > 0 else span),
        next=window(t1, t1 + span),
        zin=window(t0 + span / 4, t1 - span / 4),
        zout=window(t0 - span * 2, t1 + span * 2),
        presets=presets,
        jobs=len(jobs),
        truncated=truncated,
        cut=cut,
        chip=chip,
        spec=job_gantt(jobs, intervals, t0, t1, truncated, colours),
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
            "critical": sweep_lines(job["result"], "critical_satisfaction"),
        }
    capacities = sweep_capacities(job["result"]) if job["state"] == "done" else []
    return _page(request, "sweep.html", job=job, charts=charts, capacities=capacities)


def _sentence(text: str) -> str:
    """``text`` with its first letter in upper case (the rest as it is: "LTS" stays)."""
    return text[:1].upper() + text[1:]


#: Results documents read by the pages, by path: (mtime_ns, size, document).
_RESULTS: dict[Path, tuple[int, int, Any]] = {}


def _read_results(path: Path) -> Any:
    """A JSON file of the results data, read again only when it changed; ``None`` if unreadable."""
    try:
        st = path.stat()
        got = _RESULTS.get(path)
        if got is None or got[:2] != (st.st_mtime_ns, st.st_size):
            got = _RESULTS[path] = (st.st_mtime_ns, st.st_size, json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    return got[2]


def _table(root: Path | None, physics: str, hw: str, scenario: str) -> Path:
    """Where one results table's document lives (an index lists it only when ``root`` is set)."""
    assert root is not None
    return root / physics / hw / f"{scenario}.json"


def _results(request: Request) -> tuple[Path | None, list[dict[str, Any]]]:
    """The results directory and the entries of its index (none when it has no index)."""
    root: Path | None = request.app.state.settings.results_dir
    index = _read_results(root / "index.json") if root is not None else None
    return root, list(index) if isinstance(index, list) else []


@router.get("/results", response_class=HTMLResponse)
async def results_page(request: Request) -> HTMLResponse:
    """The shipped results: IsoSched's capacity against each baseline, one row per table."""
    root, index = _results(request)
    found = (_read_results(_table(root, e["physics"], e["hw"], e["scenario"])) for e in index)
    docs = [d for d in found if d is not None]  # a table listed but unreadable is left out
    return _page(request, "results.html", root=root, board=scoreboard_rows(docs) if docs else None)


@router.get("/results/{physics}/{hw}/{scenario}", response_class=HTMLResponse)
async def results_table_page(
    request: Request,
    physics: str,
    hw: str,
    scenario: str,
    scale: Annotated[float | None, Query(gt=0, le=1e6)] = None,
) -> HTMLResponse:
    """One results table: capacities, curves against load, satisfaction by stream.

    Capacities with their brackets, curves with their intervals, and every stream's satisfaction
    at one grid scale (``scale``; default: the first at which the policies part).
    """
    root, index = _results(request)
    if root is None or not any(
        (e["physics"], e["hw"], e["scenario"]) == (physics, hw, scenario) for e in index
    ):
        raise HTTPException(404, f"no results for {scenario} on {hw} under the {physics} physics")
    doc = _read_results(_table(root, physics, hw, scenario))
    if doc is None:
        raise HTTPException(404, f"the results of {scenario} on {hw} ({physics}) are unreadable")
    sweep = doc["sweep"]
    charts = {
        "lbt": sweep_lines(sweep, "lbt_per_s"),
        "satisfaction": sweep_lines(sweep, "satisfaction"),
        "critical": sweep_lines(sweep, "critical_satisfaction"),
    }
    capacities = [{**c, "cell": capacity_cell(sweep, c["policy"])} for c in sweep_capacities(sweep)]
    try:
        at, stream_policies, stream_rows = stream_satisfaction(sweep, scale)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
    grid = [c["scale"] for c in next(iter(sweep["policies"].values()))["curve"]]
    return _page(
        request,
        "results_table.html",
        doc=doc,
        sweep=sweep,
        physics_text=_sentence(PHYSICS.get(physics, physics)),
        charts=charts,
        capacities=capacities,
        at=at,
        grid=grid,
        stream_policies=stream_policies,
        stream_rows=stream_rows,
    )


@router.get("/plans/{job_id}", response_class=HTMLResponse)
async def plan_page(
    request: Request, job_id: str, segment: Annotated[int, Query(ge=0, le=100_000)] = 0
) -> HTMLResponse:
    """A plan: segments with II and latency, and one segment's tile graph on the mesh."""
    job = _job(request, job_id, "plan")
    spec = None
    if job["state"] == "done":
        n = len(job["result"]["segments"])
        if segment >= n:
            raise HTTPException(404, f"plan {job_id!r} has segments 0–{n - 1}, not {segment}")
        spec = plan_mesh(job["result"], segment)
    return _page(request, "plan.html", job=job, spec=spec, segment=segment)


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
