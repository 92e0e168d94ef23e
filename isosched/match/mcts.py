"""Monte Carlo Tree Search over partial placements, guiding Ullmann-style candidate search.

A tree node is a partial placement; its children place the next vertex (the frontier vertex
with the fewest tiles left) on one of its most promising candidate tiles (top-``branch`` by the
prior: leaves options to the neighbours, close to placed neighbours, hugging used tiles, cheap).
Each iteration selects a path by UCT, expands one
child, and runs a rollout: a randomised depth-first completion with forward checking and a
bounded number of backtracks. The reward is the fraction of vertices placed, plus a bonus for
a low-cost complete placement; it is backed up along the path.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from isosched.match.search import SearchSpace, SearchState, SearchStats
from isosched.match.ullmann import BUDGET_REASON, EngineOutcome, _cost_of

__all__ = ["mcts_search"]


class _Node:
    __slots__ = (
        "children",
        "next_vertex",
        "parent",
        "rest",
        "tile",
        "untried",
        "value",
        "vertex",
        "visits",
    )

    def __init__(self, vertex: int, tile: int, parent: _Node | None) -> None:
        self.vertex = vertex  # the vertex this node placed (-1 at the root) ...
        self.tile = tile  # ... and its tile
        self.next_vertex = -1  # the vertex its children place
        self.parent = parent
        self.children: list[_Node] = []
        self.untried: list[int] | None = None
        self.rest: list[int] = []  # ranked candidates beyond the first ``branch`` (worst first)
        self.visits = 0
        self.value = 0.0


def _uct(child: _Node, log_n: float, c: float) -> float:
    return child.value / child.visits + c * math.sqrt(log_n / child.visits)


def mcts_search(
    space: SearchSpace,
    deadline: float,
    seed: int = 0,
    cost_aware: bool = False,
    comm_weight: float = 1.0,
    branch: int = 6,
    exploration: float = 1.2,
    noise: float = 1.0,
    rollout_backtracks: int | None = None,
    max_nodes: int | None = None,
    cancel: Callable[[], bool] | None = None,
) -> EngineOutcome:
    """Search for a placement with MCTS until one is found (or the budget ends, cost-aware).

    Parameters
    ----------
    space : SearchSpace
        The instance.
    deadline : float
        ``time.perf_counter()`` value to stop at.
    seed : int
        Seed of the random tie-breaking and rollouts.
    cost_aware : bool
        Keep searching until the deadline and return the cheapest placement found.
    comm_weight : float
        Weight of byte-hops in the placement cost.
    branch : int
        Children per tree node (best candidates by the prior, randomised).
    exploration : float
        UCT exploration constant.
    noise : float
        Amplitude of the random term added to the prior in rollouts.
    rollout_backtracks : int, optional
        Backtracks a rollout may spend before the tree tries elsewhere (default 4,000).
    max_nodes : int, optional
        Stop after this many placements over all rollouts (machine-independent budget).
    cancel : callable, optional
        Polled once per iteration and per rollout step; true stops the search as cancelled.
    """
    rng = random.Random(seed)
    n = space.n
    stats = SearchStats()
    state = SearchState(space, comm_weight=comm_weight)
    budget = rollout_backtracks if rollout_backtracks is not None else 4000
    root = _Node(-1, -1, None)
    best: list[int] | None = None
    best_cost = math.inf
    first_cost = 0.0
    clock = time.perf_counter

    def bound() -> float:
        return best_cost

    while clock() < deadline:
        if max_nodes is not None and stats.nodes >= max_nodes:
            stats.timed_out = True
            break
        if cancel is not None and cancel():
            stats.extra["cancelled"] = 1
            break
        stats.iterations += 1
        node = root
        # Selection: descend through fully expanded nodes by UCT.
        while node.untried is not None and not node.untried and node.children:
            log_n = math.log(node.visits + 1)
            node = max(node.children, key=lambda ch: _uct(ch, log_n, exploration))
            state.place(node.vertex, node.tile)
        # Expansion: one new child from the prior's best untried tiles.
        if node.untried is None and state.depth < n:
            node.next_vertex = state.select_vertex()
            ranked = state.ordered_candidates(node.next_vertex, rng, noise * 0.5)
            node.untried, node.rest = ranked[-branch:], ranked[:-branch]
        elif node.untried is not None and not node.untried and not node.children and node.rest:
            # Every child so far died: widen to the next candidates by the prior.
            node.untried, node.rest = node.rest[-branch:], node.rest[:-branch]
        if node.untried:
            tile = node.untried.pop()
            child = _Node(node.next_vertex, tile, node)
            node.children.append(child)
            state.place(node.next_vertex, tile)
            node = child
        # Rollout.
        depth0 = state.depth
        found: list[int] | None = None
        reached = depth0
        if depth0 == n:
            # a complete placement in the tree: a leaf, scored once, then pruned as dead (a
            # cost-aware search would otherwise return to it forever, counting no node)
            found = list(state.tile_of)
            node.untried, node.rest = [], []
        elif node.untried is None or node.untried or node.children:
            rs = SearchStats()
            gen = state.dfs(
                deadline,
                rs,
                rng=rng,
                noise=noise,
                max_backtracks=budget,
                bound=bound if cost_aware and best is not None else None,
                max_nodes=None if max_nodes is None else max(1, max_nodes - stats.nodes),
                cancel=cancel,
            )
            try:
                found = next(gen, None)
            finally:
                gen.close()
            stats.rollouts += 1
            stats.nodes += rs.nodes
            stats.backtracks += rs.backtracks
            if "backjumps" in rs.extra:
                stats.extra["backjumps"] = stats.extra.get("backjumps", 0) + rs.extra["backjumps"]
            reached = max(rs.max_depth, depth0)
            if rs.timed_out:
                stats.timed_out = True
            if rs.extra.get("cancelled"):
                stats.extra["cancelled"] = 1
        stats.max_depth = max(stats.max_depth, reached)
        if found is not None:
            cost = _cost_of(space, found, comm_weight)
            if best is None:
                first_cost = cost if cost > 0 else 1.0
            if cost < best_cost:
                best, best_cost = found, cost
            reward = 1.0 + 1.0 / (1.0 + cost / first_cost)
        else:
            reward = reached / n
        # Backpropagation, then undo the path.
        walk: _Node | None = node
        while walk is not None:
            walk.visits += 1
            walk.value += reward
            walk = walk.parent
        while state.depth:
            state.unplace()
        # A fully expanded node without children is a dead end: prune it upwards.
        dead = node
        while (
            dead.parent is not None
            and dead.untried is not None
            and not dead.untried
            and not dead.rest
            and not dead.children
        ):
            parent = dead.parent
            parent.children.remove(dead)
            dead = parent
            if not dead.children and not dead.untried and dead.rest:
                dead.untried, dead.rest = dead.rest[-branch:], dead.rest[:-branch]
        if root.untried is not None and not root.untried and not root.rest and not root.children:
            stats.exhausted = True
            break
        if best is not None and not cost_aware:
            break
        if stats.extra.get("cancelled"):
            break
    if best is not None:
        if stats.exhausted:  # every placement was a leaf of the tree: the best is optimal
            return EngineOutcome(best, best_cost, stats, "optimal: search tree exhausted")
        return EngineOutcome(best, best_cost, stats, "found")
    if stats.exhausted:
        # Every subtree was pruned as empty: a proof (docs/matcher.md).
        out = EngineOutcome(None, math.inf, stats, "proved: search tree exhausted")
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
