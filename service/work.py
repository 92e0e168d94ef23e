"""Functions the runners execute in worker processes (plain data in, plain data out).

Each job function takes a ``progress`` callable (one-line messages). In a worker, ``run_job``
passes a :class:`Reporter` that writes the latest message to the job's record in the database, at
most every ``interval_s`` seconds, and stops the work cooperatively once the job was cancelled or
failed meanwhile (a runner may also stop the worker outright). Models are zoo names or stored
graph documents handed over in the parameters: no job function reads a file a client named.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from isosched.errors import HardwareError, IsoschedError
from isosched.graph import Graph, parse_graph
from isosched.hw.model import Hardware
from isosched.io.hardware_json import load_hardware, parse_hardware, preset_names
from isosched.io.model_source import named_models
from isosched.io.trace_jsonl import parse_trace_text
from isosched.plan import PlanCache, plan_model, plan_to_doc
from isosched.report import run_details
from isosched.sim.replay import replay
from isosched.sim.sweep import sweep
from isosched.trace import parse_scenario
from service.store import Store

__all__ = [
    "JobCancelled",
    "JobOutput",
    "Reporter",
    "execute_job",
    "plan_job",
    "progress_fraction",
    "record_result",
    "replay_job",
    "run_job",
    "sweep_job",
]

Progress = Callable[[str], None]

_STORES: dict[str, Store] = {}
_FRACTION = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class JobOutput:
    """A job's result plus artefacts stored beside it (served to the dashboard, not the API)."""

    result: dict[str, Any]
    artifacts: dict[str, Any]


class JobCancelled(Exception):
    """The job was cancelled (or failed by a stopping service) while it ran.

    Its work stops at the next progress report.
    """


def progress_fraction(message: str) -> float | None:
    """Fraction done read from a progress message, or ``None``.

    One ``k/n`` means ``k`` of ``n`` done (``segment 3/12``); two mean the ``k1``-th of ``n1`` outer
    steps is ``k2/n2`` done (``policy 2/7 hasp: 30/120 jobs released``).
    """
    pairs = [(int(k), int(n)) for k, n in _FRACTION.findall(message) if int(n) > 0]
    if not pairs:
        return None
    if len(pairs) == 1:
        k, n = pairs[0]
        return min(1.0, k / n)
    (k1, n1), (k2, n2) = pairs[:2]
    return min(1.0, max(0.0, (k1 - 1 + min(1.0, k2 / n2)) / n1))


class Reporter:
    """Writes a job's progress to the store and notices cancellation.

    The fraction done is read from the message by :func:`progress_fraction`.
    """

    def __init__(self, store: Store, job_id: str, interval_s: float = 0.25) -> None:
        self.store = store
        self.job_id = job_id
        self.interval_s = interval_s
        self.last = -1e9
        self.pending: str | None = None

    def flush(self) -> None:
        """Record the last message the throttle held back."""
        if self.pending is not None:
            self.last = -1e9
            self(self.pending)

    def __call__(self, message: str) -> None:
        """Record ``message`` (throttled); raise :class:`JobCancelled` if the job was cancelled."""
        now = time.monotonic()
        if now - self.last < self.interval_s:
            self.pending = message
            return
        self.last = now
        self.pending = None
        state = self.store.set_progress(self.job_id, message, progress_fraction(message))
        if state in ("done", "failed", "cancelled"):
            raise JobCancelled(f"job {self.job_id} is {state}: its work is no longer wanted")


def record_result(store: Store, job_id: str, out: dict[str, Any] | JobOutput) -> None:
    """Store a finished job's result (and its artefacts, when the job produced some)."""
    if isinstance(out, JobOutput):
        store.set_job(job_id, "done", result=out.result, artifacts=out.artifacts)
    else:
        store.set_job(job_id, "done", result=out)


def _store(database_url: str) -> Store:
    store = _STORES.get(database_url)
    if store is None:
        store = _STORES[database_url] = Store(database_url, recover=False)
    return store


def run_job(
    database_url: str, job_id: str, fn: Callable[..., Any], params: dict[str, Any]
) -> dict[str, Any] | JobOutput:
    """Worker entry point: ``fn(**params, progress=reporter)``, progress going to the store.

    A ``trace_id`` parameter is read from the store here and passed on as ``trace`` text
    (with ``label``, what the replay calls it when its header names no scenario): job records
    reference a stored trace instead of holding a copy of it. ``hw_id`` (the id of
    uploaded hardware, whose document is ``hw``) is for the job's record only.
    """
    store = _store(database_url)
    store.set_job(job_id, "running")  # queued → running (a cancelled job stays cancelled)
    reporter = Reporter(store, job_id)
    reporter("started")
    params = {k: v for k, v in params.items() if k != "hw_id"}
    if "trace_id" in params:
        tid = params.pop("trace_id")
        got = store.get_trace(tid)
        if got is None:
            raise IsoschedError(f"trace {tid!r} was deleted before the job ran")
        params["trace"] = got[1]
        params["label"] = f"trace {tid}"  # named so when its header names no scenario
    out: dict[str, Any] | JobOutput = fn(**params, progress=reporter)
    reporter.flush()
    return out


def execute_job(
    database_url: str, job_id: str, fn: Callable[..., Any], params: dict[str, Any]
) -> None:
    """Run a job and record how it ended in the store (the local runner's worker loop).

    The result goes from the worker straight to the database, never through the API process.
    A job cancelled meanwhile keeps its state; any other exception fails the job with it.
    """
    store = _store(database_url)
    try:
        out = run_job(database_url, job_id, fn, params)
    except JobCancelled:
        return
    except Exception as exc:
        store.set_job(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return
    record_result(store, job_id, out)


def _hardware(hw: str | dict[str, Any]) -> Hardware:
    """A preset by name or an uploaded hardware document (never a file)."""
    if isinstance(hw, dict):
        return parse_hardware(hw)
    if hw not in preset_names():
        raise HardwareError(f"unknown hardware preset {hw!r}")
    return load_hardware(hw)


def _given(graphs: dict[str, dict[str, Any]] | None) -> dict[str, Graph]:
    """Stored graph documents by id, validated again (they are plain data in the job)."""
    return {gid: parse_graph(doc) for gid, doc in (graphs or {}).items()}


def warm_worker() -> None:
    """Nothing: submitted once per worker at start-up so imports happen before the first job."""


def plan_job(
    hw: str | dict[str, Any],
    graph: dict[str, Any] | None = None,
    model: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Plan a stored graph document or a zoo model on a hardware preset."""
    g = parse_graph(graph) if graph is not None else named_models([str(model)])[str(model)]
    return plan_to_doc(plan_model(g, _hardware(hw), progress=progress))


def replay_job(
    trace: str,
    hw: str | dict[str, Any],
    policies: list[str],
    graphs: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    label: str = "",
) -> JobOutput:
    """Replay a trace (JSON Lines text) under policies.

    Its models are zoo names or keys of ``graphs`` (stored graph documents by id). The result
    is the replay document; the artefacts hold each policy's run details (jobs and tile
    intervals) for the dashboard.
    """
    chip = _hardware(hw)
    t = parse_trace_text(trace)
    models = named_models((j.model for j in t.jobs), _given(graphs))
    doc, runs = replay(t, chip, policies, models, cache=PlanCache(), progress=progress, label=label)
    w, h = chip.mesh
    details = {name: run_details(run, w, h) for name, run in runs.items()}
    return JobOutput(doc, {"runs": details})


def sweep_job(
    scenario: dict[str, Any],
    hw: str | dict[str, Any],
    policies: list[str],
    scales: list[float],
    seeds: int,
    graphs: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    executor: str | None = None,
) -> dict[str, Any]:
    """An LBT sweep of a scenario document.

    Its models are zoo names or keys of ``graphs``. Points run in this worker (the local runner
    already parallelises jobs), or one Ray task each with ``executor="ray"`` (set by the Ray
    runner).
    """
    sc = parse_scenario(scenario)
    fan_out = None
    if executor == "ray":
        from service.ray_cluster import ray_map

        fan_out = ray_map()
    return sweep(
        sc,
        _hardware(hw),
        policies,
        scales,
        seeds,
        workers=1,
        progress=progress,
        executor=fan_out,
        models=named_models((s.model for s in sc.streams), _given(graphs)),
        cache=PlanCache(),
    )
