"""Tile allocation of one segment as a CP-SAT model (OR-Tools).

Data → model → solve → extract, as the OR-Tools samples are laid out:

* **data:** for every unit a list of :class:`~isosched.plan.options.Option` (quarters of tiles
  used, stage time); the segment's budget in quarter tiles.
* **model:** one boolean ``x[u, o]`` per option, exactly one per unit; the quarters used fit the
  budget; ``T ≥ Σ_o x[u, o] · cycles[u, o]`` for every unit. SRAM per tile and link bandwidth are
  in the options (infeasible options are never offered; link time is part of every stage time).
* **objective:** minimise ``T``, the slowest stage (the pipeline interval is ``T / B``); then, with
  ``T`` fixed at its optimum, minimise the quarters used, so a plan takes no more tiles than it
  needs (the tiles it leaves free are what other jobs can use).
* **presolve:** for a candidate interval ``T`` every unit's cheapest feasible option is known, so
  a binary search over the option times gives the smallest ``T`` whose cheapest options fit the
  budget. That value is exact; it enters the model as an implied lower bound on ``T`` and as a
  solution hint, which lets CP-SAT prove optimality at once instead of closing a weak LP gap
  (the min–max knapsack relaxes badly).
* **solve:** one worker and a fixed seed by default, and a *deterministic-time* limit
  (``max_deterministic_time``, CP-SAT's machine-independent measure of work) as the limit that
  decides the result, so the same inputs give the same allocation on any machine and under any
  load (DESIGN.md §10). A wall-clock limit stays only as a safety net; when it ends a search the
  result says so (``wall_limited``). The result carries the status, objective, proven bound,
  deterministic time and wall time. The solver object never leaves this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from isosched.errors import IsoschedError
from isosched.plan.options import Option

__all__ = [
    "AllocationResult",
    "InfeasibleAllocation",
    "configure_solver",
    "min_stage_by_threshold",
    "solve_allocation",
    "wall_limited",
]


class InfeasibleAllocation(IsoschedError):
    """No choice of options fits the budget."""


@dataclass(frozen=True)
class AllocationResult:
    """The chosen option of every unit and how the solver got there.

    Attributes
    ----------
    choice : tuple of int
        Index into each unit's option list.
    stage_cycles : int
        Slowest stage time (the objective), cycles for the whole tensor.
    quarters : int
        Tile quarters used.
    status : str
        ``OPTIMAL`` or ``FEASIBLE`` (of the interval objective).
    objective, bound : float
        Objective value and proven lower bound, cycles.
    elapsed_ms : float
        Wall time of both solves, milliseconds (measured, not part of the result's identity).
    deterministic_time : float
        CP-SAT deterministic time used by both solves, deterministic seconds (the same on every
        machine with one worker).
    wall_limited : bool
        Whether the wall-clock safety net, not the deterministic limit, ended a solve: the
        result may then differ between machines.
    """

    choice: tuple[int, ...]
    stage_cycles: int
    quarters: int
    status: str
    objective: float
    bound: float
    elapsed_ms: float
    deterministic_time: float = 0.0
    wall_limited: bool = False


def configure_solver(
    solver: cp_model.CpSolver, dtime_limit: float, time_limit_s: float, workers: int, seed: int
) -> None:
    """Set the limits, workers and seed of ``solver`` (shared by every CP-SAT model here).

    Raises
    ------
    ValueError
        On a negative or non-finite limit or fewer than one worker.
    """
    if not (dtime_limit >= 0 and math.isfinite(dtime_limit)):
        raise ValueError(f"dtime_limit must be a finite number >= 0, got {dtime_limit}")
    if not (time_limit_s > 0 and math.isfinite(time_limit_s)):
        raise ValueError(f"time_limit_s must be a finite number > 0, got {time_limit_s}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    p = solver.parameters
    p.max_deterministic_time = dtime_limit
    p.max_time_in_seconds = time_limit_s
    p.num_workers = workers
    p.random_seed = seed


def wall_limited(
    solver: cp_model.CpSolver, status: object, dtime_limit: float, time_limit_s: float
) -> bool:
    """Whether the wall-clock limit (rather than the deterministic one) may have ended a solve.

    A solve that proved its answer (``OPTIMAL``, ``INFEASIBLE``) was not cut short. Otherwise a
    limit ended it: the deterministic one when its deterministic time reached ``dtime_limit``
    before the wall clock reached ``time_limit_s``; anything else counts as the wall clock
    (when unsure, say so).
    """
    if status in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
        return False
    return solver.deterministic_time < dtime_limit or solver.wall_time >= time_limit_s


def _cheapest_within(opts: Sequence[Option], stage: int) -> int | None:
    """Index of the option with the fewest quarters whose time is at most ``stage``."""
    best = None
    for i, o in enumerate(opts):
        if o.cycles <= stage and (best is None or o.quarters < opts[best].quarters):
            best = i
    return best


def min_stage_by_threshold(
    options: Sequence[Sequence[Option]], budget_quarters: int
) -> tuple[int, list[int]] | None:
    """Exact optimum of the allocation by binary search over candidate stage times.

    Returns ``(stage_cycles, choice)`` or ``None`` when nothing fits the budget.
    """
    candidates = sorted({o.cycles for opts in options for o in opts})
    floor = max(min(o.cycles for o in opts) for opts in options)
    candidates = [c for c in candidates if c >= floor]

    def fits(stage: int) -> list[int] | None:
        choice, used = [], 0
        for opts in options:
            i = _cheapest_within(opts, stage)
            if i is None:
                return None
            choice.append(i)
            used += opts[i].quarters
        return choice if used <= budget_quarters else None

    lo, hi = 0, len(candidates) - 1
    if hi < 0 or fits(candidates[hi]) is None:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]) is not None:
            hi = mid
        else:
            lo = mid + 1
    choice = fits(candidates[lo])
    assert choice is not None
    return candidates[lo], choice


def solve_allocation(
    options: Sequence[Sequence[Option]],
    budget_quarters: int,
    dtime_limit: float = 5.0,
    *,
    time_limit_s: float = 60.0,
    workers: int = 1,
    seed: int = 0,
) -> AllocationResult:
    """Choose one option per unit minimising the slowest stage within the tile budget.

    Parameters
    ----------
    options : sequence of sequences of Option
        The options of every unit.
    budget_quarters : int
        Tile budget in quarter tiles.
    dtime_limit : float
        CP-SAT deterministic-time limit for both solves together (70 % for the interval, 30 %
        for the tiles), deterministic seconds. This limit decides the result.
    time_limit_s : float
        Wall-clock safety net for both solves together, seconds; if it ends a solve the result
        has ``wall_limited=True``.
    workers, seed : int
        CP-SAT workers and random seed. One worker (the default) makes the search, and so the
        status and bound, reproducible; more workers may not be.

    Raises
    ------
    InfeasibleAllocation
        If even the smallest options exceed the budget.
    ValueError
        On a negative limit or fewer than one worker.
    """
    t0 = time.perf_counter()
    if any(not opts for opts in options):
        raise InfeasibleAllocation("a unit has no feasible allocation option")
    least = sum(min(o.quarters for o in opts) for opts in options)
    if least > budget_quarters:
        raise InfeasibleAllocation(
            f"the units need at least {least / 4:g} tiles; the budget is {budget_quarters / 4:g}"
        )
    # [START presolve]
    exact = min_stage_by_threshold(options, budget_quarters)
    if exact is None:
        raise InfeasibleAllocation("no choice of options fits the tile budget")
    implied, hint = exact
    # [END presolve]
    # [START model]
    model = cp_model.CpModel()
    hi = max(max(o.cycles for o in opts) for opts in options)
    stage = model.new_int_var(implied, hi, "stage_cycles")
    x = [
        [model.new_bool_var(f"x_{u}_{i}") for i in range(len(opts))]
        for u, opts in enumerate(options)
    ]
    for u, opts in enumerate(options):
        model.add_exactly_one(x[u])
        model.add(stage >= sum(o.cycles * x[u][i] for i, o in enumerate(opts)))
    quarters = sum(
        o.quarters * x[u][i] for u, opts in enumerate(options) for i, o in enumerate(opts)
    )
    model.add(quarters <= budget_quarters)
    for u, i in enumerate(hint):
        model.add_hint(x[u][i], 1)
    # [END model]
    # [START solve]
    solver = cp_model.CpSolver()
    d1, w1 = dtime_limit * 0.7, time_limit_s * 0.7
    configure_solver(solver, d1, w1, workers, seed)
    model.minimize(stage)
    status = solver.solve(model)
    if status == cp_model.MODEL_INVALID:  # a bug, never a user error
        raise RuntimeError(f"invalid allocation model: {model.validate()}")
    dtime = solver.deterministic_time
    cut = wall_limited(solver, status, d1, w1)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        best_stage = int(solver.value(stage))
        status_name = solver.status_name(status)
        objective, bound = solver.objective_value, solver.best_objective_bound
        choice = [next(i for i in range(len(x[u])) if solver.value(x[u][i])) for u in range(len(x))]
    elif status == cp_model.INFEASIBLE:
        raise InfeasibleAllocation("no choice of options fits the tile budget")
    else:
        # A limit ended the search before CP-SAT stored a solution: the presolve's exact choice
        # stands, reported as FEASIBLE (not proved by the solver); ``implied`` is proved.
        best_stage, status_name = implied, "FEASIBLE"
        objective = bound = float(implied)
        choice = list(hint)
    # Second pass: the same interval with as few tiles as possible.
    model.clear_objective()  # type: ignore[no-untyped-call]
    model.clear_hints()  # type: ignore[no-untyped-call]
    model.add(stage <= best_stage)
    for u, i in enumerate(choice):
        model.add_hint(x[u][i], 1)
    model.minimize(quarters)
    d2, w2 = dtime_limit - d1, max(1e-3, time_limit_s - solver.wall_time)
    configure_solver(solver, d2, w2, workers, seed)
    status2 = solver.solve(model)
    dtime += solver.deterministic_time
    cut = cut or wall_limited(solver, status2, d2, w2)
    if status2 in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        choice = [next(i for i in range(len(x[u])) if solver.value(x[u][i])) for u in range(len(x))]
    # [END solve]
    # [START extract]
    used = sum(options[u][i].quarters for u, i in enumerate(choice))
    stage_cycles = max(options[u][i].cycles for u, i in enumerate(choice))
    return AllocationResult(
        choice=tuple(choice),
        stage_cycles=stage_cycles,
        quarters=used,
        status=status_name,
        objective=float(objective),
        bound=float(bound),
        elapsed_ms=(time.perf_counter() - t0) * 1e3,
        deterministic_time=dtime,
        wall_limited=cut,
    )
    # [END extract]
