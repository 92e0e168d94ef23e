"""Latency-bound throughput sweeps: replay a scenario at several load scales and seeds.

``isosched.sweep/v2`` (CONTRACTS.md): every point is replayed with several seeds; the curve holds
the mean and a 95 % Student-t interval over seeds; LBT capacity is refined by bisection between
the grid points (and below the first one, down to a floor) and flagged when censored.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing as mp
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from isosched.errors import BudgetExceededError, IsoschedError
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.match.placer import WALL_SAFETY_MS
from isosched.plan.cache import PlanCache
from isosched.sim.engine import Simulator
from isosched.sim.metrics import summarize
from isosched.sim.planbook import PlanBook
from isosched.sim.policies import check_policies, make_policy, needs_no_lcs_plans
from isosched.sim.stats import mean_ci95
from isosched.trace.generate import generate_trace
from isosched.trace.scenario import Scenario

__all__ = [
    "BISECT_STEPS",
    "CAPACITY_FLOOR_FRACTION",
    "DEFAULT_SEEDS",
    "POINT_WALL_BUDGET_S",
    "SATISFACTION_TARGET",
    "SWEEP_SCHEMA",
    "Point",
    "PointMap",
    "PointStore",
    "export_books",
    "import_books",
    "aggregate",
    "lbt_capacity",
    "plan_book",
    "point_task",
    "sweep",
]

SWEEP_SCHEMA = "isosched.sweep/v2"
SATISFACTION_TARGET = 0.99

#: Seeds per point unless the caller says otherwise.
DEFAULT_SEEDS = 5

#: Bisection steps between the last passing and the first failing scale: the capacity is known
#: to 1/2**steps of that interval.
BISECT_STEPS = 3

#: When the smallest grid scale already fails, the search goes down to this fraction of it;
#: a policy that fails there too has capacity 0 ("below the floor").
CAPACITY_FLOOR_FRACTION = 0.125

#: Wall-time safety net of one point, s: it only stops a hang. A point cut short by it (or by
#: the placer's own net) would depend on the machine's speed and load, so :func:`run_point`
#: raises instead of returning it, and no sweep or point cache ever holds such a result.
POINT_WALL_BUDGET_S = 3600.0

#: Allocations between two young-generation collections of the cyclic GC while a point replays
#: (Python's default is 700). A replay allocates millions of short-lived tuples and floats and
#: makes little cyclic garbage; at the default, every collection also walks the plan book.
#: Memory management only: results do not depend on it.
GC_YOUNG_THRESHOLD = 50_000


#: Plan books by (chip, models) in this process: filled before a local pool forks, or seeded
#: from the driver's export on a Ray worker, so points look plans up instead of planning.
_BOOKS: dict[tuple[Hardware, tuple[str, ...]], PlanBook] = {}


def plan_book(
    hw: Hardware, models: Mapping[str, Graph], cache: PlanCache | None = None
) -> PlanBook:
    """The plan book of ``hw`` and ``models`` in this process (created on first use).

    A book is kept per chip and model names, and reused only for the same graphs: a call that
    gives a name another graph (an edited model, in a notebook say) replaces the book, and so
    does any call after a planner's wall-clock net cut one of the book's plans (such a plan may
    differ on another machine, and the next sweep should plan it again rather than refuse it).
    """
    key = (hw, tuple(sorted(models)))
    book = _BOOKS.get(key)
    if book is None or book.wall_limited or book.models != dict(models):
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
    """Metrics of one (policy, scale, seed) point (its plan book must exist in this process).

    Raises
    ------
    BudgetExceededError
        When a wall-time safety net cut the replay short (its result would not be reproducible).
    """
    key = (hw, tuple(sorted({s.model for s in scenario.streams})))
    book = _BOOKS.get(key)
    if book is None:
        raise RuntimeError("sweep point run without its plan book: call sweep() or import_books()")
    trace = generate_trace(scenario, seed=seed, scale=scale)
    sim = Simulator(trace, hw, make_policy(policy), book, wall_budget_s=POINT_WALL_BUDGET_S)
    with _few_collections():
        run = sim.run()
    if run.budget_exhausted:
        raise BudgetExceededError(
            f"{policy} at x{scale:g}, seed {seed}, on {hw.name}: a wall-time safety net fired "
            f"after {run.wall_ms / 1e3:.0f} s (the point's limit is {POINT_WALL_BUDGET_S:g} s, "
            f"an online match's {WALL_SAFETY_MS / 1e3:g} s, or a plan's); its result would "
            "depend on this machine's speed, so the sweep stops instead of using it"
        )
    return {"policy": policy, "scale": scale, "seed": seed, **summarize(run)}


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Raise the GC's young-generation threshold to ``GC_YOUNG_THRESHOLD`` for a block."""
    old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _freeze_heap() -> None:
    """Move every live object (models, plan books) out of the GC's reach, in this process.

    The local pool's initializer: a worker forked after the plan books are warm freezes what it
    inherited, so its collections skip the books (a replay's collections walked them again and
    again). Garbage is collected first, so nothing unreachable is kept. The driver's own heap
    is left alone (it may be a long-lived service worker).
    """
    gc.collect()
    gc.freeze()


Point = tuple[Scenario, Hardware, str, float, int]

#: Runs ``point_task`` over the points and yields the results in order (a "map").
PointMap = Callable[[Callable[[Point], dict[str, Any]], list[Point]], Iterable[dict[str, Any]]]


class PointStore(Protocol):
    """Results of sweep points kept across runs (a resumable sweep looks them up first)."""

    def get(self, point: Point) -> dict[str, Any] | None:
        """The stored result of ``point``, or ``None``."""

    def put(self, point: Point, result: dict[str, Any]) -> None:
        """Store the result of ``point``."""


def point_task(args: Point) -> dict[str, Any]:
    """One sweep point from its argument tuple (what an executor maps over)."""
    return run_point(*args)


_point = point_task


def lbt_capacity(curve: list[dict[str, Any]], target: float = SATISFACTION_TARGET) -> float:
    """Largest grid scale up to which mean satisfaction stays at or above ``target`` (0 when none).

    The grid value only: :func:`sweep` refines it by bisection.
    """
    best = 0.0
    for point in sorted(curve, key=lambda p: p["scale"]):
        if point["satisfaction"] < target:
            break
        best = point["scale"]
    return best


def _mean_or_none(values: list[float | None]) -> float | None:
    return (
        None
        if not values or any(v is None for v in values)
        else statistics.fmean(v for v in values if v is not None)
    )


def aggregate(scale: float, points: list[dict[str, Any]]) -> dict[str, Any]:
    """One curve point: means and 95 % intervals over the seeds of ``points`` (one scale).

    Energy per inference is over seeds that finished a job; energy at equal work (see
    :func:`~isosched.sim.metrics.energy_equal_work_mj`) is ``None`` when a seed has none.
    Percentiles are means over seeds, ``None`` when one seed's is (a dropped job's).
    """
    out: dict[str, Any] = {"scale": scale, "seeds": len(points)}
    for key, low, high in (
        ("satisfaction", 0.0, 1.0),
        ("critical_satisfaction", 0.0, 1.0),
        ("lbt_per_s", 0.0, None),
        ("energy_mj", 0.0, None),
        ("drop_rate", 0.0, 1.0),
    ):
        mean, ci = mean_ci95([p[key] for p in points], low, high)
        out[key] = mean
        out[f"{key}_ci95"] = ci
    for key in ("energy_per_inference_mj", "energy_equal_work_mj"):
        vals = [p[key] for p in points]
        known = [v for v in vals if v is not None]
        if key == "energy_equal_work_mj" and len(known) < len(vals):
            known = []
        if known:
            out[key], out[f"{key}_ci95"] = mean_ci95(known, 0.0)
        else:
            out[key], out[f"{key}_ci95"] = None, None
    for key in ("p50_latency_ms", "p99_latency_ms", "p999_latency_ms"):
        out[key] = _mean_or_none([p[key] for p in points])
    out["preemptions"] = statistics.fmean(p["preemptions"] for p in points)
    out["budget_exhausted"] = any(p["budget_exhausted"] for p in points)
    streams: dict[str, Any] = {}
    for sid in sorted({s for p in points for s in p["streams"]}):
        sats = [p["streams"][sid]["satisfaction"] for p in points if sid in p["streams"]]
        mean, ci = mean_ci95(sats, 0.0, 1.0)
        streams[sid] = {"satisfaction": mean, "satisfaction_ci95": ci}
    out["streams"] = streams
    return out


@contextlib.contextmanager
def _runner(
    executor: PointMap | None, workers: int
) -> Iterator[Callable[[list[Point]], Iterable[dict[str, Any]]]]:
    """A function running a batch of points, results in order (one pool for every batch)."""
    if executor is not None:
        yield lambda tasks: executor(point_task, tasks)
    elif workers > 1:
        with ProcessPoolExecutor(
            workers, mp_context=mp.get_context("fork"), initializer=_freeze_heap
        ) as pool:
            yield lambda tasks: pool.map(_point, tasks) if len(tasks) > 1 else map(_point, tasks)
    else:
        yield lambda tasks: map(_point, tasks)


def sweep(
    scenario: Scenario,
    hw: Hardware,
    policies: list[str],
    scales: list[float],
    seeds: int = DEFAULT_SEEDS,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
    executor: PointMap | None = None,
    models: Mapping[str, Graph] | None = None,
    cache: PlanCache | None = None,
    *,
    bisect_steps: int = BISECT_STEPS,
    point_cache: PointStore | None = None,
) -> dict[str, Any]:
    """Replay every (policy, scale, seed) point, summarise the curves, bisect the capacity.

    Parameters
    ----------
    scenario, hw : Scenario, Hardware
        What to replay, on which chip.
    policies : list of str
        Policy names.
    scales : list of float
        Load scale factors of the grid (periods divided by them).
    seeds : int
        Seeds 0 .. seeds − 1 per point; every point of every scale uses the same seeds.
    workers : int
        Local processes (forked after the plans are loaded, so workers look them up).
    progress : callable, optional
        One-line progress messages.
    executor : PointMap, optional
        Runs batches of points elsewhere (the Ray runner ships the plans to its workers).
    models : mapping name -> Graph
        The graph of every model of the scenario's streams (required; ``None`` is refused with
        the names missing).
    cache : PlanCache, optional
        Where plans come from (on disk: no re-planning per point or per sweep).
    bisect_steps : int
        Bisection steps of the capacity search (0: grid value only).
    point_cache : PointStore, optional
        Results of points already run (resumable sweeps); new points are stored in it.

    Returns
    -------
    dict
        The ``isosched.sweep/v2`` document. Results do not depend on where points run.

    Notes
    -----
    Capacity: the first grid scale whose mean satisfaction is below the target ends the search
    on the grid; the capacity lies between the scale before it (passing) and it (failing), and
    ``bisect_steps`` midpoints narrow it down (each replayed with every seed). When the first
    grid scale fails, the lower end is ``CAPACITY_FLOOR_FRACTION`` × that scale (replayed too);
    failing there gives capacity 0 with ``lbt_capacity_below_floor``. When the largest grid
    scale passes, the capacity is that scale with ``lbt_capacity_censored`` (at least that).
    Bisection assumes satisfaction falls with load between the two bracketing scales.
    """
    check_policies(policies)
    if seeds < 1 or int(seeds) != seeds:
        raise IsoschedError(f"seeds must be a whole number ≥ 1, got {seeds!r}")
    if not scales or not all(math.isfinite(f) and f > 0 for f in scales):
        raise IsoschedError(f"scales must be one or more numbers > 0, got {list(scales)!r}")
    names = {s.model for s in scenario.streams}
    book = plan_book(hw, {n: g for n, g in (models or {}).items() if n in names}, cache)
    for n in sorted(names):
        try:
            book.graph(n)
        except IsoschedError:
            missing = sorted(m for m in names if m not in (models or {}))
            raise IsoschedError(
                f"the sweep has no graph for {', '.join(map(repr, missing))}: pass "
                "models={name: graph} for every model of the scenario's streams "
                "(isosched.io.model_source.named_models makes it from names)"
            ) from None
    book.warm(names, progress, no_lcs=any(needs_no_lcs_plans(p) for p in policies))
    grid = sorted(set(scales))
    results: dict[tuple[str, float, int], dict[str, Any]] = {}
    done = 0

    with _runner(executor, workers) as run_batch:

        def run(tasks: list[Point], label: str) -> None:
            nonlocal done
            done += len(tasks)
            todo: list[Point] = []
            for t in tasks:
                got = point_cache.get(t) if point_cache is not None else None
                if got is None:
                    todo.append(t)
                else:
                    results[(t[2], t[3], t[4])] = got
            if not todo:
                return
            # heaviest (largest scale) first: the pool's last points are the short ones
            todo.sort(key=lambda t: -t[3])
            for i, r in enumerate(run_batch(todo)):
                t = todo[i]
                results[(t[2], t[3], t[4])] = r
                if point_cache is not None:
                    point_cache.put(t, r)
                if progress is not None:
                    progress(f"point {i + 1}/{len(todo)}: {t[2]} x{t[3]:g} seed {t[4]} ({label})")

        def curve_point(policy: str, scale: float) -> dict[str, Any]:
            return aggregate(scale, [results[(policy, scale, s)] for s in range(seeds)])

        def batch(pairs: list[tuple[str, float]]) -> list[Point]:
            return [(scenario, hw, p, x, s) for p, x in pairs for s in range(seeds)]

        run(batch([(p, x) for p in policies for x in grid]), "grid")
        curves = {p: [curve_point(p, x) for x in grid] for p in policies}
        target = SATISFACTION_TARGET
        # bracket per policy: (lo passing or None, hi failing or None)
        bracket: dict[str, tuple[float | None, float | None]] = {}
        for p in policies:
            fail = next((c["scale"] for c in curves[p] if c["satisfaction"] < target), None)
            if fail is None:
                bracket[p] = (grid[-1], None)
            elif fail == grid[0]:
                bracket[p] = (None, fail)
            else:
                bracket[p] = (grid[grid.index(fail) - 1], fail)
        probes: dict[str, list[dict[str, Any]]] = {p: [] for p in policies}
        below_floor: dict[str, bool] = dict.fromkeys(policies, False)
        floor = grid[0] * CAPACITY_FLOOR_FRACTION
        low_end = [p for p in policies if bracket[p][0] is None]
        if low_end and bisect_steps > 0:
            run(batch([(p, floor) for p in low_end]), "floor")
            for p in low_end:
                pt = curve_point(p, floor)
                probes[p].append(pt)
                if pt["satisfaction"] >= target:
                    bracket[p] = (floor, bracket[p][1])
                else:
                    below_floor[p] = True
                    bracket[p] = (None, floor)
        for step in range(bisect_steps):
            mids: dict[str, float] = {}
            for p in policies:
                lo, hi = bracket[p]
                if lo is not None and hi is not None:
                    mids[p] = round((lo + hi) / 2, 9)
            if not mids:
                break
            run(batch(list(mids.items())), f"bisection {step + 1}/{bisect_steps}")
            for p, mid in mids.items():
                pt = curve_point(p, mid)
                probes[p].append(pt)
                lo, hi = bracket[p]
                bracket[p] = (mid, hi) if pt["satisfaction"] >= target else (lo, mid)

    doc: dict[str, Any] = {
        "schema": SWEEP_SCHEMA,
        "scenario": scenario.name,
        "hw": hw.name,
        "seeds": seeds,
        "seed_list": list(range(seeds)),
        "target": SATISFACTION_TARGET,
        "interval": "95 % Student-t interval of the mean over seeds (mean ± t(0.975, n-1)·s/√n), "
        "clipped to the metric's range; null with one seed",
        "bisect_steps": bisect_steps,
        "capacity_floor": floor,
        "points": done,
        "policies": {},
    }
    for p in policies:
        lo, hi = bracket[p]
        doc["policies"][p] = {
            "curve": curves[p],
            "bisection": sorted(probes[p], key=lambda c: c["scale"]),
            "lbt_capacity": lo if lo is not None else 0.0,
            "lbt_capacity_censored": hi is None,
            "lbt_capacity_below_floor": below_floor[p],
            "lbt_capacity_bracket": [lo if lo is not None else 0.0, hi],
            "budget_exhausted": any(c["budget_exhausted"] for c in curves[p] + probes[p]),
        }
    return doc
