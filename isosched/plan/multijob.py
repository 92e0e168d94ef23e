"""Tile budgets for concurrent jobs: who gets how many tiles, who is preempted (CP-SAT).

The IsoSched policy calls this when a job arrives that does not fit the free tiles. Data: each job
(running or arriving) with its priority, the time left until its deadline, the tiles it holds now
and, per candidate budget, how long it still needs (from its plans at that budget). A running job
whose budget changes is preempted: it checkpoints and restores, which costs time. Model:

* ``y[j, o]``: job j runs on option o (a tile budget) or waits (budget 0); exactly one per job;
* the budgets fit the chip;
* job j meets its deadline on option o when its remaining time, plus the preemption cost if its
  budget changed, fits its slack;
* objective: maximise Σ priority × meets, then (smaller weight) keep running jobs undisturbed,
  then free tiles.

One worker and a fixed seed by default, and a deterministic-time limit that decides the result
(the same decision on every machine, DESIGN.md §10); a wall-clock limit stays only as a safety
net and the result says when it ended the search (``wall_limited``). The incumbent is returned
when a limit ends the search.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from isosched.plan.ilp import configure_solver, wall_limited

__all__ = ["JobAllocation", "JobDemand", "MultiJobResult", "allocate_jobs"]


@dataclass(frozen=True)
class JobDemand:
    """What one job needs.

    Attributes
    ----------
    job : str
        Job id.
    priority : int
        Higher is more urgent (weights deadline satisfaction).
    slack_us : float
        Time until its deadline, microseconds.
    options : tuple of (int, float)
        ``(tiles, remaining time in µs on that many tiles)`` per candidate budget.
    held_tiles : int
        Tiles it holds now (0 for an arriving or waiting job).
    preempt_cost_us : float
        Checkpoint plus restore time if its budget changes while it runs.
    """

    job: str
    priority: int
    slack_us: float
    options: tuple[tuple[int, float], ...]
    held_tiles: int = 0
    preempt_cost_us: float = 0.0


@dataclass(frozen=True)
class JobAllocation:
    """The decision for one job: tiles (0 = wait), whether it meets its deadline, preempted."""

    job: str
    tiles: int
    meets_deadline: bool
    preempted: bool


@dataclass(frozen=True)
class MultiJobResult:
    """Budgets for every job and the solver's account.

    Attributes
    ----------
    allocations : tuple of JobAllocation
        One per job, in the order given.
    status : str
        CP-SAT status (``OPTIMAL``, ``FEASIBLE``, or ``UNKNOWN`` when a limit ended the search
        before any solution: everybody keeps what they hold, arrivals wait).
    objective, bound : float
        Objective value and proven bound.
    elapsed_ms : float
        Wall time, milliseconds (measured, not part of the result's identity).
    deterministic_time : float
        CP-SAT deterministic time used, deterministic seconds (what a simulator charges).
    wall_limited : bool
        Whether the wall-clock safety net, not the deterministic limit, ended the search.
    """

    allocations: tuple[JobAllocation, ...]
    status: str
    objective: float
    bound: float
    elapsed_ms: float
    deterministic_time: float = 0.0
    wall_limited: bool = False


def _meets(d: JobDemand, tiles: int, remaining_us: float) -> bool:
    changed = d.held_tiles > 0 and tiles != d.held_tiles
    return remaining_us + (d.preempt_cost_us if changed else 0.0) <= d.slack_us


def _whole(n: object, least: int) -> bool:
    if not isinstance(n, numbers.Real) or isinstance(n, bool):  # numpy's numbers are Real too
        return False
    x = float(n)
    return x >= least and x.is_integer()


def _check_demands(jobs: Sequence[JobDemand], total_tiles: int) -> None:
    """Refuse tile counts that are not whole numbers in range, and duplicate job ids."""
    if not _whole(total_tiles, 0):
        raise ValueError(f"total_tiles must be a whole number ≥ 0, got {total_tiles!r}")
    seen: set[str] = set()
    for d in jobs:
        if d.job in seen:
            raise ValueError(f"job {d.job!r} is given twice")
        seen.add(d.job)
        if not _whole(d.held_tiles, 0):
            raise ValueError(f"job {d.job!r}: held_tiles must be a whole number ≥ 0")
        for tiles, _ in d.options:
            if not _whole(tiles, 1):
                raise ValueError(f"job {d.job!r}: a budget of {tiles!r} tiles (whole, ≥ 1)")


def allocate_jobs(
    jobs: Sequence[JobDemand],
    total_tiles: int,
    dtime_limit: float = 0.05,
    *,
    time_limit_s: float = 5.0,
    workers: int = 1,
    seed: int = 0,
) -> MultiJobResult:
    """Choose every job's tile budget, maximising priority-weighted deadline satisfaction.

    Parameters
    ----------
    jobs : sequence of JobDemand
        Running and arriving jobs.
    total_tiles : int
        Tiles of the chip.
    dtime_limit : float
        CP-SAT deterministic-time limit, deterministic seconds; it decides the result. A short
        limit suits an online decision.
    time_limit_s : float
        Wall-clock safety net, seconds (100 × the default deterministic limit); if it ends the
        search the result has ``wall_limited=True``.
    workers, seed : int
        CP-SAT workers and random seed; one worker (the default) makes the decision
        reproducible.

    Raises
    ------
    ValueError
        On a negative limit or fewer than one worker; on a tile count that is not a whole
        number (≥ 0 for the chip and held tiles, ≥ 1 for a budget) or a job id given twice.
    """
    _check_demands(jobs, total_tiles)
    t0 = time.perf_counter()
    model = cp_model.CpModel()
    # Option lists with "wait" (0 tiles) first.
    choices: list[list[tuple[int, float]]] = [[(0, float("inf")), *d.options] for d in jobs]
    y = [[model.new_bool_var(f"y_{j}_{o}") for o in range(len(c))] for j, c in enumerate(choices)]
    for row in y:
        model.add_exactly_one(row)
    model.add(
        sum(t * y[j][o] for j, c in enumerate(choices) for o, (t, _) in enumerate(c)) <= total_tiles
    )
    # Objective terms, lexicographic through weights: deadlines >> disturbance >> tiles. The
    # tiles term spans at most ``total_tiles``, so one unit of disturbance weighs more than all of
    # it; all disturbance together weighs less than one unit of priority met.
    w_disturb = total_tiles + 1
    w_met = w_disturb * (1 + sum(max(1, d.priority) for d in jobs if d.held_tiles > 0))
    terms = []
    for j, (d, c) in enumerate(zip(jobs, choices, strict=True)):
        for o, (tiles, rem) in enumerate(c):
            w = 0
            if tiles > 0 and _meets(d, tiles, rem):
                w += d.priority * w_met
            if d.held_tiles > 0 and tiles != d.held_tiles:
                w -= w_disturb * max(1, d.priority)
            w -= tiles
            if w:
                terms.append(w * y[j][o])
    model.maximize(sum(terms))
    # Hint: keep running jobs as they are, others wait.
    for j, (d, c) in enumerate(zip(jobs, choices, strict=True)):
        keep = next((o for o, (t, _) in enumerate(c) if t == d.held_tiles), 0)
        model.add_hint(y[j][keep], 1)
    solver = cp_model.CpSolver()
    configure_solver(solver, dtime_limit, time_limit_s, workers, seed)
    status = solver.solve(model)
    dtime = solver.deterministic_time
    cut = wall_limited(solver, status, dtime_limit, time_limit_s)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # Nothing found within the limit: everybody keeps what they hold, arrivals wait.
        allocs = tuple(JobAllocation(d.job, d.held_tiles, False, False) for d in jobs)
        return MultiJobResult(
            allocs,
            solver.status_name(status),
            0.0,
            0.0,
            (time.perf_counter() - t0) * 1e3,
            dtime,
            cut,
        )
    chosen: list[JobAllocation] = []
    for j, (d, c) in enumerate(zip(jobs, choices, strict=True)):
        o = next(o for o in range(len(c)) if solver.value(y[j][o]))
        tiles, rem = c[o]
        chosen.append(
            JobAllocation(
                d.job,
                tiles,
                tiles > 0 and _meets(d, tiles, rem),
                d.held_tiles > 0 and tiles != d.held_tiles,
            )
        )
    return MultiJobResult(
        tuple(chosen),
        solver.status_name(status),
        float(solver.objective_value),
        float(solver.best_objective_bound),
        (time.perf_counter() - t0) * 1e3,
        dtime,
        cut,
    )
