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

Explicit time limit, workers and seed; the incumbent is returned when the limit ends the search.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

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
    """Budgets for every job and the solver's account."""

    allocations: tuple[JobAllocation, ...]
    status: str
    objective: float
    bound: float
    elapsed_ms: float


def _meets(d: JobDemand, tiles: int, remaining_us: float) -> bool:
    changed = d.held_tiles > 0 and tiles != d.held_tiles
    return remaining_us + (d.preempt_cost_us if changed else 0.0) <= d.slack_us


def allocate_jobs(
    jobs: Sequence[JobDemand],
    total_tiles: int,
    time_limit_s: float = 0.05,
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
    time_limit_s, workers, seed
        Solver parameters; a short limit suits an online decision.
    """
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
    # Objective terms, lexicographic through weights: deadlines >> disturbance >> tiles.
    big = (total_tiles + 1) * (len(jobs) + 1)
    terms = []
    for j, (d, c) in enumerate(zip(jobs, choices, strict=True)):
        for o, (tiles, rem) in enumerate(c):
            w = 0
            if tiles > 0 and _meets(d, tiles, rem):
                w += d.priority * big * (total_tiles + 1)
            if d.held_tiles > 0 and tiles != d.held_tiles:
                w -= (total_tiles + 1) * max(1, d.priority)
            w -= tiles
            if w:
                terms.append(w * y[j][o])
    model.maximize(sum(terms))
    # Hint: keep running jobs as they are, others wait.
    for j, (d, c) in enumerate(zip(jobs, choices, strict=True)):
        keep = next((o for o, (t, _) in enumerate(c) if t == d.held_tiles), 0)
        model.add_hint(y[j][keep], 1)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.001, time_limit_s)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # Nothing proven in time: everybody keeps what they hold, arrivals wait.
        allocs = tuple(JobAllocation(d.job, d.held_tiles, False, False) for d in jobs)
        return MultiJobResult(
            allocs, solver.status_name(status), 0.0, 0.0, (time.perf_counter() - t0) * 1e3
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
    )
