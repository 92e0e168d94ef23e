"""Ullmann's algorithm: complete depth-first search over refined candidates.

Given time, it finds a placement when one exists or proves that none does. In cost-aware mode
it is a branch and bound: it keeps enumerating, pruning partial placements whose cost already
reaches the best complete one, until the space is exhausted (the best is then optimal) or the
budget ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from isosched.match.search import SearchSpace, SearchState, SearchStats

__all__ = ["BUDGET_REASON", "EngineOutcome", "ullmann_iter", "ullmann_search"]

#: Why a search stopped without a placement or a proof.
BUDGET_REASON = "budget exhausted before a placement was found"


class EngineOutcome:
    """What an engine returns: the best placement found (tile per vertex) and why it stopped.

    ``reason`` says it in words; ``stop`` is the contract's code (``found``, ``impossible``,
    ``budget``, ``cancelled``; empty: derive it from ``reason``); ``partial`` is the deepest
    partial placement reached (tile per vertex, -1 where unplaced), when the engine keeps one.
    """

    def __init__(
        self, tiles: list[int] | None, cost: float, stats: SearchStats, reason: str
    ) -> None:
        self.tiles = tiles
        self.cost = cost
        self.stats = stats
        self.reason = reason
        self.stop = ""
        self.partial: list[int] | None = None


def ullmann_iter(
    space: SearchSpace, deadline: float = math.inf, stats: SearchStats | None = None
) -> Iterator[list[int]]:
    """Every placement, in search order (tile index per vertex), until ``deadline``."""
    state = SearchState(space, comm_weight=0.0)
    yield from state.dfs(deadline, stats if stats is not None else SearchStats())


def ullmann_search(
    space: SearchSpace,
    deadline: float,
    cost_aware: bool = False,
    comm_weight: float = 1.0,
    max_nodes: int | None = None,
    cancel: Callable[[], bool] | None = None,
) -> EngineOutcome:
    """Run the complete engine until a placement is found (or, cost-aware, the best one)."""
    stats = SearchStats()
    state = SearchState(space, comm_weight=comm_weight if cost_aware else 0.0)
    best: list[int] | None = None
    best_cost = math.inf

    def bound() -> float:
        return best_cost

    gen = state.dfs(
        deadline,
        stats,
        bound=bound if cost_aware else None,
        max_nodes=max_nodes,
        cancel=cancel,
    )
    try:
        for tiles in gen:
            stats.extra["solutions"] = stats.extra.get("solutions", 0) + 1
            cost = _cost_of(space, tiles, comm_weight)
            if cost < best_cost:
                best, best_cost = tiles, cost
            if not cost_aware:
                break
    finally:
        gen.close()
    if best is not None:
        if cost_aware and stats.exhausted:
            return EngineOutcome(best, best_cost, stats, "optimal: search space exhausted")
        return EngineOutcome(best, best_cost, stats, "found")
    if stats.exhausted:
        out = EngineOutcome(None, math.inf, stats, "proved: no placement exists")
        out.stop = "impossible"
        return out
    if stats.extra.get("cancelled"):
        out = EngineOutcome(None, math.inf, stats, "cancelled")
        out.stop = "cancelled"
        out.partial = state.deepest or None
        return out
    out = EngineOutcome(None, math.inf, stats, BUDGET_REASON)
    out.partial = state.deepest or None
    return out


def _cost_of(space: SearchSpace, tiles: list[int], comm_weight: float) -> float:
    cost = float(sum(space.tile_cost[t] for t in tiles))
    for s, d, b in space.pattern.edges:
        if s != d:
            cost += comm_weight * b * space.hop(tiles[s], tiles[d])
    return cost
