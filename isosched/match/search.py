"""Search state shared by the Ullmann and MCTS engines.

The next vertex to place is chosen dynamically: the frontier vertex (adjacent to a placed one)
with the fewest tiles left. The candidates of a vertex are the intersection of the target's CSR
rows (h-hop neighbourhoods) of its placed neighbours' tiles, minus used tiles, filtered by
degree, by the vertex's Ullmann row when one was computed, by the overridable feasibility hook,
and by forward checking: every unplaced neighbour must keep a candidate. The full
pattern × target matrix is never needed here.
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph

__all__ = ["SearchSpace", "SearchState", "SearchStats"]

Feasible = Callable[[int, int], bool]

#: Weights of the candidate prior (see ``SearchState.ordered_candidates``).
SLACK_WEIGHT = 1.0
SLACK_CAP = 4
FREE_WEIGHT = 1.0
HOP_WEIGHT = 1.0


_TargetSets = tuple[list[frozenset[int]], list[int], frozenset[int], list[float]]
_TARGET_CACHE: weakref.WeakKeyDictionary[ChipTarget, _TargetSets] = weakref.WeakKeyDictionary()


def _target_sets(
    target: ChipTarget,
) -> tuple[list[frozenset[int]], list[int], frozenset[int], list[float]]:
    """Neighbourhood sets, degrees, allowed tiles and costs of a target (cached per target)."""
    hit = _TARGET_CACHE.get(target)
    if hit is None:
        tp, tx = target.indptr.tolist(), target.indices.tolist()
        hit = (
            [frozenset(tx[tp[t] : tp[t + 1]]) for t in range(target.size)],
            [tp[t + 1] - tp[t] for t in range(target.size)],
            frozenset(int(t) for t in target.allowed.nonzero()[0]),
            target.tile_cost.tolist(),
        )
        _TARGET_CACHE[target] = hit
    return hit


def _topological_rank(n: int, edges: Sequence[tuple[int, int, int]]) -> list[int]:
    """Kahn rank of every vertex; vertices on cycles get ranks after the acyclic part."""
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for s, d, _ in edges:
        if s != d:
            succ[s].append(d)
            indeg[d] += 1
    rank = [-1] * n
    ready = [v for v in range(n) if indeg[v] == 0]
    k = 0
    while ready:
        nxt: list[int] = []
        for v in ready:
            rank[v] = k
            k += 1
            for u in succ[v]:
                indeg[u] -= 1
                if indeg[u] == 0:
                    nxt.append(u)
        ready = nxt
    for v in range(n):
        if rank[v] < 0:
            rank[v] = k
            k += 1
    return rank


@dataclass
class SearchStats:
    """Counters of one search."""

    nodes: int = 0
    backtracks: int = 0
    rollouts: int = 0
    iterations: int = 0
    max_depth: int = 0
    timed_out: bool = False
    exhausted: bool = False
    extra: dict[str, float] = field(default_factory=dict)


class SearchSpace:
    """Static data of one pattern/target pair.

    Parameters
    ----------
    pattern : TileGraph
        What to place.
    target : ChipTarget
        Where.
    domains : sequence of frozenset, optional
        Ullmann candidate row of every vertex (after refinement); ``None`` means every allowed
        tile of sufficient degree.
    feasible : callable (vertex, tile) -> bool, optional
        Extra semantic check.
    """

    def __init__(
        self,
        pattern: TileGraph,
        target: ChipTarget,
        domains: Sequence[frozenset[int]] | None = None,
        feasible: Feasible | None = None,
    ) -> None:
        self.pattern = pattern
        self.target = target
        self.n = n = len(pattern)
        indptr, indices = pattern.undirected_csr()
        ip, ix = indptr.tolist(), indices.tolist()
        self.padj: list[tuple[int, ...]] = [tuple(ix[ip[v] : ip[v + 1]]) for v in range(n)]
        self.pdeg = [len(a) for a in self.padj]
        weights: dict[tuple[int, int], int] = {}
        for s, d, b in pattern.edges:
            if s != d:
                key = (s, d) if s < d else (d, s)
                weights[key] = weights.get(key, 0) + b
        self.padj_w: list[tuple[tuple[int, int], ...]] = [
            tuple((u, weights[(u, v) if u < v else (v, u)]) for u in self.padj[v]) for v in range(n)
        ]
        # Topological rank along the pattern's edges (a tile graph is a DAG): the search starts
        # at a source and breaks ties towards earlier vertices, so it grows one front forward
        # as the dataflow does, instead of two fronts competing for room.
        self.topo = _topological_rank(n, pattern.edges)
        self.by_degree = sorted(range(n), key=lambda v: (self.topo[v], -self.pdeg[v], v))
        self.tnbr, self.tdeg, self.allowed, self.tile_cost = _target_sets(target)
        self.width = target.width
        self.domains = domains
        self.feasible = feasible

    def hop(self, a: int, b: int) -> int:
        """XY hop distance between tiles ``a`` and ``b``."""
        w = self.width
        return abs(a % w - b % w) + abs(a // w - b // w)


class SearchState:
    """A partial placement with incremental bookkeeping and dynamic variable ordering.

    ``tile_of[v]`` is the tile of vertex ``v`` or -1, ``position[v]`` the step at which it was
    placed; ``freedeg[t]`` counts unused allowed tiles within h hops of ``t``; ``cost`` is the
    placement cost so far (byte-hops of placed edges times ``comm_weight`` plus preemption cost
    of used tiles). The next vertex to place is the frontier vertex (unplaced, with a placed
    neighbour) with the fewest remaining tiles (minimum remaining values).
    """

    def __init__(self, space: SearchSpace, comm_weight: float = 1.0) -> None:
        self.space = space
        n = space.n
        self.tile_of = [-1] * n
        self.position = [-1] * n
        self.placed: list[int] = []
        self.used: set[int] = set()
        self.freedeg = list(space.tdeg)
        self.cost = 0.0
        self.comm_weight = comm_weight
        self._deltas: list[float] = []
        self.occupant = [-1] * space.target.size  # position of the vertex on each tile
        self.placed_nbrs = [0] * n
        self.frontier: set[int] = set()
        #: The deepest partial placement reached (tile per vertex, -1 where unplaced).
        self.deepest: list[int] = []
        self._deepest_n = 0

    @property
    def depth(self) -> int:
        """Number of placed vertices."""
        return len(self.placed)

    def place(self, v: int, t: int) -> None:
        """Place vertex ``v`` on tile ``t``."""
        sp = self.space
        i = len(self.placed)
        self.placed.append(v)
        self.position[v] = i
        self.tile_of[v] = t
        self.used.add(t)
        self.occupant[t] = i
        fd = self.freedeg
        for s in sp.tnbr[t]:
            fd[s] -= 1
        delta = sp.tile_cost[t]
        w = sp.width
        tx, ty = t % w, t // w
        tile_of = self.tile_of
        pn = self.placed_nbrs
        frontier = self.frontier
        frontier.discard(v)
        for u, b in sp.padj_w[v]:
            q = tile_of[u]
            if q >= 0:
                if self.comm_weight and b:
                    delta += self.comm_weight * b * (abs(tx - q % w) + abs(ty - q // w))
            else:
                frontier.add(u)
            pn[u] += 1
        self.cost += delta
        self._deltas.append(delta)
        if i >= self._deepest_n:  # a new depth: keep it (at most once per depth)
            self._deepest_n = i + 1
            self.deepest = list(tile_of)

    def unplace(self) -> None:
        """Undo the last placement."""
        sp = self.space
        v = self.placed.pop()
        t = self.tile_of[v]
        self.tile_of[v] = -1
        self.position[v] = -1
        self.used.discard(t)
        self.occupant[t] = -1
        fd = self.freedeg
        for s in sp.tnbr[t]:
            fd[s] += 1
        pn = self.placed_nbrs
        frontier = self.frontier
        tile_of = self.tile_of
        for u in sp.padj[v]:
            pn[u] -= 1
            if pn[u] == 0 and tile_of[u] < 0:
                frontier.discard(u)
        if pn[v] > 0:
            frontier.add(v)
        self.cost -= self._deltas.pop()

    def _region(self, v: int) -> set[int] | frozenset[int]:
        """Unused tiles within h hops of every placed neighbour of ``v`` (no other filter)."""
        sp = self.space
        tnbr, tile_of = sp.tnbr, self.tile_of
        sets = sorted((tnbr[tile_of[u]] for u in sp.padj[v] if tile_of[u] >= 0), key=len)
        if not sets:
            return (sp.domains[v] if sp.domains is not None else sp.allowed) - self.used
        cand = sets[0] - self.used
        for s in sets[1:]:
            cand &= s
            if not cand:
                break
        return cand

    def select_vertex(self) -> int:
        """Next vertex to place (minimum remaining values).

        The frontier vertex with the fewest tiles left, ties to the earliest in topological
        order; a new component starts at its earliest source.
        """
        sp = self.space
        if self.frontier:
            pn, pdeg = self.placed_nbrs, sp.pdeg
            best, best_key = -1, (1 << 60, 0, 0, 0)
            topo = sp.topo
            for u in self.frontier:
                key = (len(self._region(u)), topo[u], -pn[u], -pdeg[u])
                if key < best_key:
                    best, best_key = u, key
                    if key[0] == 0:
                        break
            return best
        tile_of = self.tile_of
        return next(v for v in sp.by_degree if tile_of[v] < 0)

    def candidates(self, v: int) -> list[int]:
        """Feasible tiles for vertex ``v`` (unordered)."""
        return [t for t, _ in self._scored_candidates(v)]

    def _scored_candidates(self, v: int) -> list[tuple[int, int]]:
        """Feasible tiles with their slack: the fewest options left to an unplaced neighbour.

        Forward checking rejects a tile when an unplaced neighbour would keep no candidate, or
        when the unplaced neighbours together keep fewer tiles than they are (pigeonhole).
        """
        sp = self.space
        used, tile_of, tnbr = self.used, self.tile_of, sp.tnbr
        cand = self._region(v)
        if not cand:
            return []
        later = [u for u in sp.padj[v] if tile_of[u] < 0]
        forward = [[tnbr[tile_of[q]] for q in sp.padj[u] if tile_of[q] >= 0] for u in later]
        need = len(later)
        deg = sp.pdeg[v]
        dom = sp.domains[v] if sp.domains is not None else None
        feasible = sp.feasible
        tdeg, fd = sp.tdeg, self.freedeg
        out = []
        for t in cand:
            if tdeg[t] < deg or fd[t] < need:
                continue
            if dom is not None and t not in dom:
                continue
            if feasible is not None and not feasible(v, t):
                continue
            nt = tnbr[t] - used
            slack = 1 << 30
            union: set[int] = set()
            for placed in forward:
                inter = nt
                for s in placed:
                    inter = inter & s
                    if not inter:
                        break
                size = len(inter)
                if not size:
                    slack = -1
                    break
                slack = min(slack, size)
                if need > 1:
                    union |= inter
            if slack < 0 or (need > 1 and len(union) < need):
                continue
            out.append((t, slack))
        return out

    def ordered_candidates(self, v: int, rng: random.Random | None, noise: float) -> list[int]:
        """Candidates of ``v`` sorted worst-first (so ``pop()`` yields the best) by the prior.

        The prior prefers tiles that leave the most options to the unplaced neighbours (least
        constraining value), tiles close to the placed neighbours (hops), tiles with few free
        neighbours (hugging used tiles and edges leaves no unusable pockets, as in Warnsdorff's
        rule) and cheap tiles. The weights were tuned on planted instances with seeds 0-2;
        the benchmark uses other seeds (docs/matcher.md).
        """
        scored = self._scored_candidates(v)
        if len(scored) <= 1:
            return [t for t, _ in scored]
        sp = self.space
        w = sp.width
        tile_of = self.tile_of
        placed = [(tile_of[u] % w, tile_of[u] // w) for u in sp.padj[v] if tile_of[u] >= 0]
        fd = self.freedeg
        cost = sp.tile_cost
        keys = []
        for t, slack in scored:
            tx, ty = t % w, t // w
            k = -SLACK_WEIGHT * min(slack, SLACK_CAP) + FREE_WEIGHT * fd[t] + cost[t]
            for qx, qy in placed:
                k += HOP_WEIGHT * (abs(tx - qx) + abs(ty - qy))
            if rng is not None and noise:
                k += noise * rng.random()
            keys.append((k, t))
        keys.sort(reverse=True)
        return [t for _, t in keys]

    def conflict_position(self, v: int) -> int:
        """Deepest placed position that can affect the candidates of vertex ``v``.

        The candidates of ``v`` depend only on the tiles of its placed neighbours, of its
        unplaced neighbours' placed neighbours, and on which tiles within ``2h`` of a placed
        neighbour are used. Placements after the deepest of those positions cannot have caused
        an empty candidate set, and placing more vertices only removes candidates, so a search
        may jump straight back there (graph-based backjumping). Returns ``depth - 1`` when the
        vertex has no placed neighbour.
        """
        sp = self.space
        tile_of, position = self.tile_of, self.position
        parents = [u for u in sp.padj[v] if tile_of[u] >= 0]
        if not parents:
            return self.depth - 1
        c = max(position[p] for p in parents)
        for u in sp.padj[v]:
            if tile_of[u] < 0:
                for q in sp.padj[u]:
                    if position[q] > c:
                        c = position[q]
        depth = len(self.placed)
        if c >= depth - 1:
            return c
        # Only placements after position c can still raise it, and only those on a tile within
        # 2h of the first placed neighbour. Walk them from the deepest down and stop at the
        # first such one, or scan the 2h diamond's tiles when it holds fewer tiles than that.
        w, h = sp.width, sp.target.height
        t = tile_of[parents[0]]
        tx, ty = t % w, t // w
        r = 2 * sp.target.hops
        if depth - 1 - c <= 2 * r * (r + 1) + 1:
            placed = self.placed
            for i in range(depth - 1, c, -1):
                q = tile_of[placed[i]]
                if abs(q % w - tx) + abs(q // w - ty) <= r:
                    return i
            return c
        occ = self.occupant
        for dy in range(-r, r + 1):
            y = ty + dy
            if not 0 <= y < h:
                continue
            span = r - abs(dy)
            for x in range(max(0, tx - span), min(w, tx + span + 1)):
                o = occ[y * w + x]
                if o > c:
                    c = o
        return c

    def dfs(
        self,
        deadline: float,
        stats: SearchStats,
        rng: random.Random | None = None,
        noise: float = 0.0,
        max_backtracks: int | None = None,
        bound: Callable[[], float] | None = None,
        backjump: bool = True,
        max_nodes: int | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Generator[list[int], None, None]:
        """Depth-first search from the current depth; yields every complete placement found.

        Parameters
        ----------
        deadline : float
            ``time.perf_counter()`` value at which to stop (``stats.timed_out`` is set).
        stats : SearchStats
            Counters updated in place.
        rng, noise : random.Random, float
            Random tie-breaking of the prior (0 = deterministic).
        max_backtracks : int, optional
            Give up after this many backtracks (a bounded rollout); ``None`` = complete search,
            ``stats.exhausted`` is set when the subtree holds no further placement.
        bound : callable, optional
            Current best cost; partial placements that reach it are pruned (costs are >= 0).
        backjump : bool
            Jump back over placements that cannot have caused a dead end (sound: no placement
            is skipped).
        max_nodes : int, optional
            Stop once ``stats.nodes`` reaches this many placements (a budget that gives the
            same result on every machine); ``stats.timed_out`` is set.
        cancel : callable, optional
            Polled once per step; when it returns true the search stops and
            ``stats.extra["cancelled"]`` is set.

        Notes
        -----
        The state is restored to its starting depth when the generator ends or is closed.
        """
        start = self.depth
        n = self.space.n
        if start == n:
            yield list(self.tile_of)
            stats.exhausted = True
            return
        clock = time.perf_counter
        limit = max_nodes if max_nodes is not None else -1
        if stats.nodes >= limit >= 0 or clock() > deadline:
            stats.timed_out = True
            return
        v0 = self.select_vertex()
        stack: list[tuple[int, list[int]]] = [(v0, self.ordered_candidates(v0, rng, noise))]
        backtracks = 0
        try:
            while True:
                # Every path through the loop (push, prune, yield, backjump, backtrack) comes
                # back here, so both budgets are checked once per step: a step costs one
                # placement and one candidate computation, far more than reading the clock.
                if stats.nodes >= limit >= 0 or clock() > deadline:
                    stats.timed_out = True
                    return
                if cancel is not None and cancel():
                    stats.extra["cancelled"] = 1
                    return
                v, cands = stack[-1]
                if cands:
                    self.place(v, cands.pop())
                    stats.nodes += 1
                    if self.depth > stats.max_depth:
                        stats.max_depth = self.depth
                    if bound is not None and self.cost >= bound():
                        self.unplace()
                        continue
                    if self.depth == n:
                        yield list(self.tile_of)
                        self.unplace()
                        continue
                    u = self.select_vertex()
                    level = self.ordered_candidates(u, rng, noise)
                    if not level and backjump:
                        # Dead end at once: jump back to the deepest conflicting position.
                        target = self.conflict_position(u)
                        if target < start:
                            stats.exhausted = True
                            return
                        # The stack holds the levels of positions start..depth-1.
                        del stack[target - start + 1 :]
                        while self.depth > target:
                            self.unplace()
                        backtracks += 1
                        stats.backtracks += 1
                        stats.extra["backjumps"] = stats.extra.get("backjumps", 0) + 1
                        if max_backtracks is not None and backtracks > max_backtracks:
                            return
                        continue
                    stack.append((u, level))
                else:
                    stack.pop()
                    if not stack:
                        stats.exhausted = True
                        return
                    self.unplace()
                    backtracks += 1
                    stats.backtracks += 1
                    if max_backtracks is not None and backtracks > max_backtracks:
                        return
        finally:
            while self.depth > start:
                self.unplace()
