"""The placement matcher: a tile graph onto the chip, shaped like networkx's ``DiGraphMatcher``.

>>> from isosched.tilegraph import TileGraph
>>> from isosched.match import TileMatcher, mesh_target
>>> pattern = TileGraph.from_edges(["a", "b", "c"], [("a", "b"), ("b", "c")])
>>> m = TileMatcher(mesh_target(4, 4, hops=1), pattern)
>>> m.subgraph_is_monomorphic()
True
>>> result = m.match(engine="mcts", budget_ms=200, seed=1)
>>> result.found, sorted(result.placement)
(True, ['a', 'b', 'c'])

Unlike networkx, whose mappings go from the large graph's nodes to the pattern's, mappings here
go from pattern vertex ids to tile coordinates ``(x, y)``, the direction a placement is read in.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from isosched.match.candidates import CandidateRows, candidate_matrix, csr_nbytes, refine
from isosched.match.cp import CPModel, cp_search
from isosched.match.cp import warm as warm_cp
from isosched.match.mcts import mcts_search
from isosched.match.native import compiled, compiled_default
from isosched.match.repair import RepairModel, repair_search, step_nodes
from isosched.match.repair import warm as warm_repair
from isosched.match.search import SearchSpace, SearchStats
from isosched.match.target import ChipTarget, MatchInputError, check_budgets
from isosched.match.ullmann import BUDGET_REASON, EngineOutcome, ullmann_iter, ullmann_search
from isosched.tilegraph import TileGraph

__all__ = [
    "ENGINES",
    "STOP_REASONS",
    "MatchResult",
    "TileMatcher",
    "placement_cost",
    "placement_errors",
]

Engine = Literal["mcts", "ullmann", "cp", "cp-py", "repair"]
ENGINES: tuple[str, ...] = ("mcts", "ullmann", "cp", "cp-py", "repair")
#: Why a search stopped (CONTRACTS.md, ``isosched match``): a placement was found, none exists
#: (proved), the budget ended first (nothing proved), or the caller cancelled it.
STOP_REASONS: tuple[str, ...] = ("found", "impossible", "budget", "cancelled")
Coord = tuple[int, int]

#: Build the full candidate matrix (and refine it globally) only below this many entries.
DENSE_LIMIT = 250_000
#: Node budgets above this are this (no search gets near it; the compiled kernels count in
#: 64-bit integers).
MAX_NODES = 1 << 62


@dataclass(frozen=True)
class MatchResult:
    """Outcome of one match.

    Attributes
    ----------
    found : bool
        Whether a valid placement was found (it has been verified).
    engine : str
        The engine that answered (:data:`ENGINES`).
    elapsed_ms : float
        Wall time, milliseconds.
    placement : dict
        Pattern vertex id -> ``(x, y)``; empty when not found.
    cost : float or None
        Byte-hops of the pattern's edges times ``comm_weight`` plus preemption costs.
    proved : bool
        When not found: whether the absence of any placement was proved.
    reason : str
        Why the search stopped: one of :data:`STOP_REASONS` (``found``, ``impossible``,
        ``budget``, ``cancelled``).
    stats : dict
        Search counters (nodes, backtracks and the backjumps among them, rollouts, iterations,
        candidate-matrix memory).
    detail : str
        The reason in words (which proof, ``optimal`` when a cost-aware search exhausted its
        space, ...).
    partial : dict
        When not found: the deepest partial placement the search reached (vertex id ->
        ``(x, y)``; empty when the engine keeps none or placed nothing).
    wall_limited : bool
        The wall-time budget, not the node budget, stopped the search (the answer may then
        differ between machines): a search that found nothing, or a cost-aware one whose best
        placement might have improved.
    """

    found: bool
    engine: str
    elapsed_ms: float
    placement: dict[str, Coord]
    cost: float | None = None
    proved: bool = False
    reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    partial: dict[str, Coord] = field(default_factory=dict)
    wall_limited: bool = False

    @property
    def nodes(self) -> int:
        """Search nodes the match took."""
        return int(self.stats.get("nodes", 0))

    def to_doc(self) -> dict[str, Any]:
        """The JSON document of ``isosched match --json``."""
        return {
            "found": self.found,
            "engine": self.engine,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "reason": self.reason,
            "nodes": self.nodes,
            "placement": {k: list(v) for k, v in self.placement.items()},
            "cost": self.cost,
            "proved": self.proved,
            "detail": self.detail,
            "wall_limited": self.wall_limited,
            "partial": {k: list(v) for k, v in self.partial.items()},
            "stats": self.stats,
        }


def placement_errors(
    pattern: TileGraph, target: ChipTarget, placement: Mapping[str, Coord]
) -> list[str]:
    """Every way ``placement`` violates the target (empty list = valid).

    Valid means: every vertex placed, tiles distinct, inside the mesh, allowed, and every edge's
    endpoints at most ``hops`` apart.
    """
    errs: list[str] = []
    if set(placement) != set(pattern.ids):
        errs.append("placement keys differ from the pattern's vertices")
    seen: dict[Coord, str] = {}
    for v, (x, y) in placement.items():
        if not (0 <= x < target.width and 0 <= y < target.height):
            errs.append(f"{v}: tile {(x, y)} outside the mesh")
            continue
        if not target.allowed[y * target.width + x]:
            errs.append(f"{v}: tile {(x, y)} is not usable")
        if (x, y) in seen:
            errs.append(f"tile {(x, y)} holds {seen[(x, y)]} and {v}")
        seen[(x, y)] = v
    ids = pattern.ids
    for s, d, _ in pattern.edges:
        a, b = placement.get(ids[s]), placement.get(ids[d])
        if a is not None and b is not None:
            hops = abs(a[0] - b[0]) + abs(a[1] - b[1])
            if hops > target.hops:
                errs.append(f"edge {ids[s]}->{ids[d]} spans {hops} hops > {target.hops}")
    return errs


def placement_cost(
    pattern: TileGraph, target: ChipTarget, placement: Mapping[str, Coord], comm_weight: float = 1.0
) -> float:
    """Byte-hops of every edge times ``comm_weight`` plus the preemption cost of used tiles.

    Summed in the pattern's vertex order, whatever the order of ``placement``'s keys, so one
    placement has one cost to the bit (and the same as the search's).
    """
    at = [placement[v] for v in pattern.ids]
    return _summed_cost(pattern, target, [target.tile(xy) for xy in at], at, comm_weight)


def _cost_of(pattern: TileGraph, target: ChipTarget, tiles: list[int], comm_weight: float) -> float:
    """:func:`placement_cost` of a tile-per-vertex placement."""
    return _summed_cost(pattern, target, tiles, [target.coord(t) for t in tiles], comm_weight)


def _summed_cost(
    pattern: TileGraph,
    target: ChipTarget,
    tiles: Sequence[int],
    at: Sequence[Coord],
    comm_weight: float,
) -> float:
    """The cost, summed in one fixed order (the two callers agree to the bit).

    First the used ``tiles``' preemption costs, in the order given; then each edge's byte-hops,
    in edge order (``at``: each vertex's coordinates, by index).
    """
    tile_cost: list[float] = target.tile_cost.tolist()
    cost: float = sum(tile_cost[t] for t in tiles)
    for s, d, b in pattern.edges:
        (ax, ay), (bx, by) = at[s], at[d]
        cost += comm_weight * b * (abs(ax - bx) + abs(ay - by))
    return cost


def _summed_cost_arrays(
    tile_cost: npt.NDArray[np.float64],
    tiles: npt.NDArray[np.int64],
    src: npt.NDArray[np.int64],
    dst: npt.NDArray[np.int64],
    nbytes: npt.NDArray[np.int64],
    width: int,
    comm_weight: float,
) -> float:
    """:func:`_summed_cost` on arrays, in its order (written for numba: the same bits)."""
    cost = 0.0
    for t in tiles:
        cost += tile_cost[t]
    for e in range(src.size):
        a = tiles[src[e]]
        b = tiles[dst[e]]
        cost += (
            comm_weight * nbytes[e] * (abs(a % width - b % width) + abs(a // width - b // width))
        )
    return cost


_cost_warmed = False


def warm_answer_cost() -> None:
    """Load the compiled answer cost once per process, before any search's clock starts.

    Like ``cp``'s and ``repair``'s ``warm``: only the first call does anything (every match
    calls it).
    """
    global _cost_warmed
    if _cost_warmed or not compiled_default():
        return
    _cost_warmed = True
    one = np.zeros(1, dtype=np.int64)
    compiled(_summed_cost_arrays)(np.zeros(1), one, one, one, one, 1, 1.0)


def _stop_code(outcome: EngineOutcome | None, reason: str, proved: bool) -> str:
    """The contract's stop reason of an engine outcome."""
    if outcome is not None and outcome.tiles is not None:
        return "found"
    if proved:
        return "impossible"
    if outcome is not None and outcome.stop:
        return outcome.stop
    if reason == "cancelled":
        return "cancelled"
    return "budget"


def _odd_cycle(pattern: TileGraph) -> bool:
    """Whether the (undirected) pattern has an odd cycle, by BFS 2-colouring."""
    indptr, indices = pattern.undirected_csr()
    colour = [-1] * len(pattern)
    for root in range(len(pattern)):
        if colour[root] >= 0:
            continue
        colour[root] = 0
        queue = [root]
        for v in queue:
            for u in indices[indptr[v] : indptr[v + 1]].tolist():
                if colour[u] < 0:
                    colour[u] = 1 - colour[v]
                    queue.append(u)
                elif colour[u] == colour[v]:
                    return True
    return False


class TileMatcher:
    """Matcher of a tile graph (pattern) into a chip (target).

    Parameters
    ----------
    target : ChipTarget
        The chip's usable tiles and their h-hop links (the large graph, networkx's ``G1``).
    pattern : TileGraph
        The tile graph to place (networkx's ``G2``).

    Notes
    -----
    Override :meth:`semantic_feasibility` to add constraints (``cp``, ``ullmann`` and ``mcts``
    call it for every candidate pair; ``repair`` does not, and refuses such a matcher).
    Matching is monomorphism: pattern edges must land on target links; extra links between
    placed tiles are allowed.
    """

    def __init__(self, target: ChipTarget, pattern: TileGraph) -> None:
        self.target = target
        self.pattern = pattern
        # cp's static model per (cost-aware, compiled): searches only read it, so a second
        # search on this matcher (the placer's hybrid runs cp in turns) skips its setup
        self._cp_models: dict[tuple[bool, bool | None], CPModel] = {}

    def semantic_feasibility(self, vertex: int, tile: int) -> bool:
        """Whether pattern vertex ``vertex`` (index) may sit on ``tile`` (index); default yes."""
        return True

    def _hook(self) -> Any:
        overridden = type(self).semantic_feasibility is not TileMatcher.semantic_feasibility
        return self.semantic_feasibility if overridden else None

    @functools.cached_property
    def _precheck_reason(self) -> str | None:
        """A reason no placement can exist, found without search, or ``None`` (once per matcher)."""
        n, t = len(self.pattern), self.target
        free = int(t.allowed.sum())
        if n > free:
            return f"pattern has {n} vertices but only {free} tiles are usable"
        indptr, _ = self.pattern.undirected_csr()
        max_pdeg = int((indptr[1:] - indptr[:-1]).max()) if n else 0
        max_tdeg = int(t.degree.max()) if t.size else 0
        if max_pdeg > max_tdeg:
            return f"a vertex has {max_pdeg} neighbours but no tile has more than {max_tdeg}"
        if t.hops == 1 and _odd_cycle(self.pattern):
            return "the pattern has an odd cycle, and a mesh at 1 hop is bipartite"
        return None

    @functools.cached_property
    def _repair_model(self) -> RepairModel:
        """Repair's static arrays, kept for the searches of this matcher (the hybrid's turns)."""
        return RepairModel.of(self.pattern, self.target)

    @functools.cached_property
    def _edge_arrays(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Source, destination and bytes of every pattern edge, in edge order."""
        e = np.asarray(self.pattern.edges, dtype=np.int64).reshape(-1, 3)
        return e[:, 0].copy(), e[:, 1].copy(), e[:, 2].copy()

    @property
    def _edge_ends(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Source and destination index of every pattern edge."""
        src, dst, _ = self._edge_arrays
        return src, dst

    def _answer_cost(self, tiles: list[int], comm_weight: float) -> float:
        """:func:`placement_cost` of a tile-per-vertex answer, to the bit.

        Compiled, unless ``ISOSCHED_CP=py`` (then :func:`_cost_of`, the reference).
        """
        if not compiled_default():
            return _cost_of(self.pattern, self.target, tiles, comm_weight)
        src, dst, nbytes = self._edge_arrays
        t = np.asarray(tiles, dtype=np.int64)
        tc = self.target.tile_cost
        return float(
            compiled(_summed_cost_arrays)(
                tc, t, src, dst, nbytes, self.target.width, float(comm_weight)
            )
        )

    def _valid(self, tiles: Sequence[int]) -> bool:
        """Whether ``tiles`` (one per vertex) is a valid placement.

        :func:`placement_errors`'s rules on arrays: the check of every answer (that function
        then says what is wrong).
        """
        t = np.asarray(tiles, dtype=np.int64)
        tg = self.target
        if t.size != len(self.pattern):
            return False
        if t.size and (int(t.min()) < 0 or int(t.max()) >= tg.size):
            return False
        if int(np.bincount(t, minlength=1).max(initial=0)) > 1 or not bool(tg.allowed[t].all()):
            return False
        s, d = self._edge_ends
        x, y = t % tg.width, t // tg.width
        return bool((np.abs(x[s] - x[d]) + np.abs(y[s] - y[d]) <= tg.hops).all())

    def _space(
        self, deadline: float, use_matrix: bool | None, engine: str = "ullmann"
    ) -> tuple[SearchSpace | None, dict[str, Any], str | None]:
        """Search space, setup counters, and a proof if there is no space (``None``: timed out)."""
        n, t = len(self.pattern), self.target
        stats: dict[str, Any] = {"dense_matrix_bytes": n * t.size}
        hook = self._hook()
        # Built first: after refinement, nothing slow may stand between the deadline and the
        # search's first clock check.
        space = SearchSpace(self.pattern, t, feasible=hook)
        if use_matrix is None:
            # The matrix pays off for the complete engine's proofs; MCTS computes candidate
            # rows on its frontier instead (cheaper than building M on small instances).
            use_matrix = engine == "ullmann" and n * t.size <= DENSE_LIMIT
        if use_matrix:
            m = candidate_matrix(self.pattern, t, hook)
            stats["candidates_initial"] = int(m.nnz)
            m, rounds = refine(m, self.pattern, t, deadline=deadline)
            stats["refine_rounds"] = rounds
            stats["candidates_refined"] = int(m.nnz)
            stats["csr_matrix_bytes"] = csr_nbytes(m)
            empty = np.flatnonzero(np.diff(m.indptr) == 0)
            if len(empty):
                vid = self.pattern.vertices[int(empty[0])].id
                return None, stats, f"refinement left vertex {vid!r} without candidate tiles"
            if time.perf_counter() > deadline:
                return None, stats, None
            space.domains = CandidateRows(m)
        return space, stats, None

    def match(
        self,
        engine: str = "mcts",
        budget_ms: float = 1000.0,
        seed: int = 0,
        cost_aware: bool = False,
        comm_weight: float = 1.0,
        use_matrix: bool | None = None,
        max_nodes: int | None = None,
        cancel: Callable[[], bool] | None = None,
        start: Mapping[str, Coord] | None = None,
    ) -> MatchResult:
        """Search for a placement within ``budget_ms``.

        Parameters
        ----------
        engine : {"mcts", "ullmann", "cp", "cp-py", "repair"}
            Search engine: ``cp`` propagates constraints over bit-set domains and proves
            infeasibility fastest (the placer's online engine; compiled, unless
            ``ISOSCHED_CP=py``); ``cp-py`` is its pure-Python reference, which gives the same
            answers; ``ullmann`` is the plain complete search, ``mcts`` the tree search of the
            paper; ``repair`` a local search over complete placements (min-conflicts; it never
            proves, and ignores tile costs; a step counts as ``ceil(tiles / 256)`` nodes).
        budget_ms : float
            Wall-time budget, milliseconds. Every step of either engine (a placement, a
            backtrack, a backjump, a block of refinement) checks it, so the search stops within
            one step of it (well under a millisecond on a 16×16 chip, docs/performance.md).
        seed : int
            Random seed (MCTS; the order of `cp`'s restarts).
        cost_aware : bool
            Keep searching until the budget ends and return the cheapest placement found.
        comm_weight : float
            Weight of byte-hops against preemption cost.
        use_matrix : bool, optional
            Force (or forbid) the full candidate matrix with global refinement; by default the
            ``ullmann`` engine uses it when pattern × target has at most 250,000 entries.
        max_nodes : int, optional
            Also stop after this many placements (``stats["nodes"]`` never exceeds it): unlike
            the wall-time budget, it gives the same answer on every machine.
        start : mapping, optional
            ``repair`` only: a partial placement (vertex id -> ``(x, y)``) that its first run
            keeps and completes, e.g. the ``partial`` of a ``cp`` answer.

        Raises
        ------
        MatchInputError
            On an unknown engine or a negative budget.
        """
        if engine not in ENGINES:
            raise MatchInputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        check_budgets(budget_ms, max_nodes)
        if max_nodes is not None:
            max_nodes = min(max_nodes, MAX_NODES)
        if engine == "cp":
            warm_cp()  # load the compiled core outside the budget (once per process)
        elif engine == "repair":
            warm_repair()
        warm_answer_cost()  # every answer reports its cost by it
        if engine == "repair" and self._hook() is not None:
            raise MatchInputError(
                "the repair engine does not call semantic_feasibility; use cp, ullmann or mcts "
                "with a matcher that overrides it"
            )
        t0 = time.perf_counter()
        deadline = t0 + budget_ms / 1000.0

        def done(
            outcome: EngineOutcome | None,
            reason: str,
            proved: bool,
            stats: dict[str, Any],
            detail: str = "",
            wall_limited: bool | None = None,
        ) -> MatchResult:
            elapsed = (time.perf_counter() - t0) * 1000.0
            stop = _stop_code(outcome, reason, proved)
            nodes = int(stats.get("nodes", 0))
            wall = stop == "budget" and (max_nodes is None or nodes < max_nodes)
            if wall_limited is not None:  # the engine knows (repair's steps may not fill nodes)
                wall = stop == "budget" and wall_limited
            ids = self.pattern.ids
            if outcome is None or outcome.tiles is None:
                partial: dict[str, Coord] = {}
                if outcome is not None and outcome.partial is not None:
                    at = self.target.coord
                    partial = {ids[v]: at(t) for v, t in enumerate(outcome.partial) if t >= 0}
                return MatchResult(
                    False,
                    engine,
                    elapsed,
                    {},
                    None,
                    proved,
                    stop,
                    stats,
                    detail or reason,
                    partial,
                    wall,
                )
            coords = {ids[v]: self.target.coord(tile) for v, tile in enumerate(outcome.tiles)}
            if not self._valid(outcome.tiles):
                # a bug, never a user error: refuse to return an invalid placement
                errs = placement_errors(self.pattern, self.target, coords) or ["(no detail)"]
                raise RuntimeError(f"matcher produced an invalid placement: {errs[0]}")
            # A cost-aware search keeps improving its best until the space is exhausted, its
            # nodes run out, it is cancelled or the wall clock stops it: in the last case the
            # placement (and its cost) depends on the machine, and the answer says so.
            wall = (
                cost_aware
                and engine != "repair"  # repair ignores costs: it stops at its first placement
                and not outcome.stats.exhausted
                and (max_nodes is None or nodes < max_nodes)
                and not (cancel is not None and cancel())
            )
            return MatchResult(
                True,
                engine,
                elapsed,
                coords,
                # the documented cost, whatever the engine searched by (cp without cost_aware
                # weighs no byte-hops and reported 0 on a free chip)
                self._answer_cost(outcome.tiles, comm_weight),
                False,
                stop,
                stats,
                detail or reason,
                {},
                wall,
            )

        if len(self.pattern) == 0:  # nothing to search: the space is exhausted at once
            empty = EngineOutcome([], 0.0, SearchStats(exhausted=True), "empty")
            return done(empty, "empty pattern", False, {})
        why = self._precheck_reason
        if why is not None:
            return done(None, f"proved: {why}", True, {"nodes": 0})
        if engine in ("cp", "cp-py"):
            compiled = None if engine == "cp" else False
            return self._match_cp(
                done, deadline, seed, cost_aware, comm_weight, max_nodes, cancel, compiled
            )
        if engine == "repair":
            return self._match_repair(done, deadline, seed, comm_weight, max_nodes, cancel, start)
        space, stats, why = self._space(deadline, use_matrix, engine)
        if space is None:
            if why is None:
                return done(None, BUDGET_REASON, False, {"nodes": 0, **stats})
            return done(None, f"proved: {why}", True, {"nodes": 0, **stats})
        if engine == "ullmann":
            out = ullmann_search(
                space,
                deadline,
                cost_aware=cost_aware,
                comm_weight=comm_weight,
                max_nodes=max_nodes,
                cancel=cancel,
            )
        else:
            out = mcts_search(
                space,
                deadline,
                seed=seed,
                cost_aware=cost_aware,
                comm_weight=comm_weight,
                max_nodes=max_nodes,
                cancel=cancel,
            )
        s = out.stats
        stats.update(
            nodes=s.nodes,
            backtracks=s.backtracks,
            backjumps=int(s.extra.get("backjumps", 0)),
            rollouts=s.rollouts,
            iterations=s.iterations,
            max_depth=s.max_depth,
        )
        proved = out.tiles is None and (out.reason.startswith("proved") or out.stop == "impossible")
        return done(out, out.reason, proved, stats)

    def _match_cp(
        self,
        done: Callable[..., MatchResult],
        deadline: float,
        seed: int,
        cost_aware: bool,
        comm_weight: float,
        max_nodes: int | None,
        cancel: Callable[[], bool] | None,
        compiled: bool | None = None,
    ) -> MatchResult:
        key = (cost_aware, compiled)
        model = self._cp_models.get(key)
        if model is None:
            hook = self._hook()
            model = CPModel(
                self.pattern, self.target, hook, weighted_twins=cost_aware, compiled=compiled
            )
            self._cp_models[key] = model
        out = cp_search(
            model,
            deadline,
            seed=seed,
            cost_aware=cost_aware,
            comm_weight=comm_weight,
            max_nodes=max_nodes,
            cancel=cancel,
        )
        s = out.stats
        stats: dict[str, Any] = {
            "nodes": s.nodes,
            "backtracks": s.backtracks,
            "propagated": int(s.extra.get("propagated", 0)),
            "restarts": int(s.extra.get("restarts", 0)),
            "nogoods": int(s.extra.get("nogoods", 0)),
            "max_depth": s.max_depth,
        }
        return done(out, out.reason, out.stop == "impossible", stats)

    def _match_repair(
        self,
        done: Callable[..., MatchResult],
        deadline: float,
        seed: int,
        comm_weight: float,
        max_nodes: int | None,
        cancel: Callable[[], bool] | None,
        start: Mapping[str, Coord] | None,
    ) -> MatchResult:
        model = self._repair_model
        weight = step_nodes(int(model.slots.size))
        w = self.target.width
        first = None
        if start:
            first = [-1] * len(self.pattern)
            for v, vid in enumerate(self.pattern.ids):
                if vid in start:
                    x, y = start[vid]
                    first[v] = y * w + x if 0 <= x < w and 0 <= y < self.target.height else -1
        out = repair_search(
            self.pattern,
            self.target,
            deadline,
            seed=seed % 2**31,
            max_steps=None if max_nodes is None else max_nodes // weight,
            cancel=cancel,
            start=first,
            model=model,
        )
        stats: dict[str, Any] = {
            "nodes": out.steps * weight,
            "steps": out.steps,
            "runs": out.runs,
            "excess": out.excess,
        }
        tiles = list(out.tiles) if out.tiles is not None else None
        res = EngineOutcome(tiles, 0.0, SearchStats(), "")
        if tiles is not None:
            res.cost = self._answer_cost(tiles, comm_weight)
            return done(res, "found", False, stats, "found by local repair")
        res.stop = out.stop
        res.partial = list(out.partial)
        reason = "cancelled" if out.stop == "cancelled" else BUDGET_REASON
        if out.runs:
            detail = f"least excess {out.excess} hop(s) over {out.runs} run(s); nothing proved"
        else:
            detail = "no repair step within the node budget; nothing proved"
        return done(res, reason, False, stats, detail, out.wall_limited)

    def subgraph_monomorphisms_iter(
        self, budget_ms: float = math.inf
    ) -> Iterator[dict[str, Coord]]:
        """Every placement (pattern id -> ``(x, y)``), by the complete engine, within the budget."""
        if len(self.pattern) == 0:
            yield {}
            return
        if self._precheck_reason is not None:
            return
        deadline = time.perf_counter() + budget_ms / 1000.0
        space, _, _ = self._space(deadline, None)
        if space is None:
            return
        ids = self.pattern.ids
        for tiles in ullmann_iter(space, deadline):
            yield {ids[v]: self.target.coord(t) for v, t in enumerate(tiles)}

    def subgraph_is_monomorphic(self, budget_ms: float = math.inf) -> bool:
        """Whether some placement exists (complete search; ``False`` also on budget end)."""
        return next(self.subgraph_monomorphisms_iter(budget_ms), None) is not None
