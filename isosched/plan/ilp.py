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
* **solve:** explicit time limit, worker count and seed; the result carries the status, objective,
  proven bound and wall time. The solver object never leaves this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from isosched.errors import IsoschedError
from isosched.plan.options import Option

__all__ = ["AllocationResult", "InfeasibleAllocation", "min_stage_by_threshold", "solve_allocation"]


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
        Wall time of both solves, milliseconds.
    """

    choice: tuple[int, ...]
    stage_cycles: int
    quarters: int
    status: str
    objective: float
    bound: float
    elapsed_ms: float


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
    time_limit_s: float = 5.0,
    workers: int = 2,
    seed: int = 0,
) -> AllocationResult:
    """Choose one option per unit minimising the slowest stage within the tile budget.

    Raises
    ------
    InfeasibleAllocation
        If even the smallest options exceed the budget, or the solver finds nothing in time.
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
    solver.parameters.max_time_in_seconds = max(0.01, time_limit_s * 0.7)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    model.minimize(stage)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise InfeasibleAllocation(f"no allocation found ({solver.status_name(status)})")
    best_stage = int(solver.value(stage))
    status_name = solver.status_name(status)
    objective, bound = solver.objective_value, solver.best_objective_bound
    choice = [next(i for i in range(len(x[u])) if solver.value(x[u][i])) for u in range(len(x))]
    # Second pass: the same interval with as few tiles as possible.
    model.clear_objective()  # type: ignore[no-untyped-call]
    model.clear_hints()  # type: ignore[no-untyped-call]
    model.add(stage <= best_stage)
    for u, i in enumerate(choice):
        model.add_hint(x[u][i], 1)
    model.minimize(quarters)
    solver.parameters.max_time_in_seconds = max(0.01, time_limit_s * 0.3)
    status2 = solver.solve(model)
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
    )
    # [END extract]
