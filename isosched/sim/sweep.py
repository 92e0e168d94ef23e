"""Latency-bound throughput sweeps: replay a scenario at several load scales, find LBT capacity."""

from __future__ import annotations

import multiprocessing as mp
import statistics
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.plan.cache import PlanCache
from isosched.sim.engine import Simulator
from isosched.sim.metrics import summarize
from isosched.sim.planbook import PlanBook
from isosched.sim.policies import make_policy
from isosched.trace.generate import generate_trace
from isosched.trace.scenario import Scenario

__all__ = [
    "SATISFACTION_TARGET",
    "SWEEP_SCHEMA",
    "Point",
    "PointMap",
    "export_books",
    "import_books",
    "lbt_capacity",
    "plan_book",
    "point_task",
    "sweep",
]

SWEEP_SCHEMA = "isosched.sweep/v1"
SATISFACTION_TARGET = 0.99


#: Plan books by (chip, models) in this process: filled before a local pool forks, or seeded
#: from the driver's export on a Ray worker, so points look plans up instead of planning.
_BOOKS: dict[tuple[Hardware, tuple[str, ...]], PlanBook] = {}


def plan_book(
    hw: Hardware, models: Mapping[str, Graph], cache: PlanCache | None = None
) -> PlanBook:
    """The plan book of ``hw`` and ``models`` in this process (created on first use)."""
    key = (hw, tuple(sorted(models)))
    book = _BOOKS.get(key)
    if book is None:
        book = _BOOKS[key] = PlanBook(hw, models, cache)
    return book


def export_books() -> list[tuple[Hardware, dict[str, Graph], dict[str, object]]]:
    """Every plan book of this process, picklable (to seed another process)."""
    return [(hw, b.models, b.export()) for (hw, _), b in _BOOKS.items()]


def import_books(books: list[tuple[Hardware, dict[str, Graph], dict[str, object]]]) -> None:
    """Seed this process's plan books (plans are deterministic, so any process's are valid)."""
    for hw, models, state in books:
        plan_book(hw, models).seed(state)


def run_point(
    scenario: Scenario, hw: Hardware, policy: str, scale: float, seed: int
) -> dict[str, Any]:
    """Metrics of one (policy, scale, seed) point (its plan book must exist in this process)."""
    key = (hw, tuple(sorted({s.model for s in scenario.streams})))
    book = _BOOKS.get(key)
    if book is None:
        raise RuntimeError("sweep point run without its plan book: call sweep() or import_books()")
    trace = generate_trace(scenario, seed=seed, scale=scale)
    m = summarize(Simulator(trace, hw, make_policy(policy), book).run())
    return {"policy": policy, "scale": scale, "seed": seed, **m}


Point = tuple[Scenario, Hardware, str, float, int]

#: Runs ``point_task`` over the points and yields the results in order (a "map").
PointMap = Callable[[Callable[[Point], dict[str, Any]], list[Point]], Iterable[dict[str, Any]]]


def point_task(args: Point) -> dict[str, Any]:
    """One sweep point from its argument tuple (what an executor maps over)."""
    return run_point(*args)


_point = point_task


def lbt_capacity(curve: list[dict[str, Any]], target: float = SATISFACTION_TARGET) -> float:
    """Largest scale up to which satisfaction stays at or above ``target`` (0 when none)."""
    best = 0.0
    for point in sorted(curve, key=lambda p: p["scale"]):
        if point["satisfaction"] < target:
            break
        best = point["scale"]
    return best


def sweep(
    scenario: Scenario,
    hw: Hardware,
    policies: list[str],
    scales: list[float],
    seeds: int = 1,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
    executor: PointMap | None = None,
    models: Mapping[str, Graph] | None = None,
    cache: PlanCache | None = None,
) -> dict[str, Any]:
    """Replay every (policy, scale, seed) point and summarise the curves.

    Points run in a local process pool (forked after the profiles are computed, so workers look
    them up instead of planning again), or through ``executor`` (e.g. the Ray runner, which
    ships the computed profiles to its workers); the curve averages the seeds of each scale.
    Results do not depend on where points run.
    """
    names = {s.model for s in scenario.streams}
    book = plan_book(hw, {n: g for n, g in (models or {}).items() if n in names}, cache)
    for n in sorted(names):
        book.graph(n)
    book.warm(names, progress)
    tasks: list[Point] = [
        (scenario, hw, p, sc, seed) for p in policies for sc in scales for seed in range(seeds)
    ]
    results: list[dict[str, Any]] = []
    if executor is not None:
        for i, r in enumerate(executor(point_task, tasks)):
            results.append(r)
            if progress is not None:
                progress(f"point {i + 1}/{len(tasks)}: {r['policy']} x{r['scale']:g}")
    elif workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            for i, r in enumerate(pool.map(_point, tasks)):
                results.append(r)
                if progress is not None:
                    progress(f"point {i + 1}/{len(tasks)}: {r['policy']} x{r['scale']:g}")
    else:
        for i, t in enumerate(tasks):
            results.append(_point(t))
            if progress is not None:
                progress(f"point {i + 1}/{len(tasks)}: {t[2]} x{t[3]:g}")
    doc: dict[str, Any] = {
        "schema": SWEEP_SCHEMA,
        "scenario": scenario.name,
        "hw": hw.name,
        "seeds": seeds,
        "target": SATISFACTION_TARGET,
        "policies": {},
    }
    for p in policies:
        curve = []
        for sc in scales:
            pts = [r for r in results if r["policy"] == p and r["scale"] == sc]
            curve.append(
                {
                    "scale": sc,
                    "satisfaction": statistics.fmean(r["satisfaction"] for r in pts),
                    "critical_satisfaction": statistics.fmean(
                        r["critical_satisfaction"] for r in pts
                    ),
                    "lbt_per_s": statistics.fmean(r["lbt_per_s"] for r in pts),
                    "energy_mj": statistics.fmean(r["energy_mj"] for r in pts),
                }
            )
        doc["policies"][p] = {"curve": curve, "lbt_capacity": lbt_capacity(curve)}
    return doc
