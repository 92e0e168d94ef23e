"""Search state shared by the Ullmann and MCTS engines.

The pattern's vertices are placed in one static order (each vertex, where possible, adjacent to
an already placed one, as in VF2++/RI). The candidates of the vertex at position ``i`` are the
intersection of the target's CSR rows (h-hop neighbourhoods) of its placed neighbours' tiles,
minus used tiles, filtered by degree, by the vertex's Ullmann row when one was computed, by the
overridable feasibility hook, and by forward checking: every not-yet-placed neighbour must keep
at least one candidate. The full pattern × target matrix is never needed here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph

__all__ = ["SearchSpace", "SearchState", "SearchStats", "static_order"]

Feasible = Callable[[int, int], bool]

#: Weights of the candidate prior (see ``SearchState.ordered_candidates``).
SLACK_WEIGHT = 3.0
SLACK_CAP = 4
FREE_WEIGHT = -0.5
HOP_WEIGHT = 1.0
ORDER = "dfs"


def static_order(adj: Sequence[Sequence[int]]) -> list[int]:
    """Placement order: repeatedly the unplaced vertex with most placed neighbours.

    Ties go to the larger degree, then the smaller index. A new connected component starts at
    its vertex of largest degree.
    """
    n = len(adj)
    placed_nbrs = [0] * n
    done = [False] * n
    order: list[int] = []
    # Buckets by placed-neighbour count keep this O((V + E) log V).
    import heapq

    heap: list[tuple[int, int, int, int]] = []
    by_degree = sorted(range(n), key=lambda v: (-len(adj[v]), v))
    next_root = 0
    while len(order) < n:
        while heap and done[heap[0][3]]:
            heapq.heappop(heap)
        if heap:
            v = heapq.heappop(heap)[3]
        else:
            while done[by_degree[next_root]]:
                next_root += 1
            v = by_degree[next_root]
        if done[v]:
            continue
        done[v] = True
        order.append(v)
        stamp = len(order)
        for u in adj[v]:
            if not done[u]:
                placed_nbrs[u] += 1
                if ORDER == "dfs":
                    heapq.heappush(heap, (-placed_nbrs[u], -stamp, -len(adj[u]), u))
                else:
                    heapq.heappush(heap, (-placed_nbrs[u], -len(adj[u]), 0, u))
    return order


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
    domains : list of frozenset, optional
        Ullmann candidate row of every vertex (after refinement); ``None`` means every allowed
        tile of sufficient degree.
    feasible : callable (vertex, tile) -> bool, optional
        Extra semantic check.
    """

    def __init__(
        self,
        pattern: TileGraph,
        target: ChipTarget,
        domains: list[frozenset[int]] | None = None,
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
        self.order = static_order(self.padj)
        self.pos = [0] * n
        for i, v in enumerate(self.order):
            self.pos[v] = i
        pos = self.pos
        self.parents: list[tuple[tuple[int, int], ...]] = []
        self.later: list[tuple[int, ...]] = []
        self.forward: list[tuple[tuple[int, tuple[int, ...]], ...]] = []
        for i, v in enumerate(self.order):
            self.parents.append(
                tuple((p, weights[(p, v) if p < v else (v, p)]) for p in self.padj[v] if pos[p] < i)
            )
            later = tuple(u for u in self.padj[v] if pos[u] > i)
            self.later.append(later)
            self.forward.append(
                tuple((u, tuple(p for p in self.padj[u] if pos[p] < i)) for u in later)
            )
        tp, tx = target.indptr.tolist(), target.indices.tolist()
        self.tnbr: list[frozenset[int]] = [
            frozenset(tx[tp[t] : tp[t + 1]]) for t in range(target.size)
        ]
        self.tdeg = [tp[t + 1] - tp[t] for t in range(target.size)]
        self.allowed = frozenset(int(t) for t in target.allowed.nonzero()[0])
        self.tile_cost = target.tile_cost.tolist()
        self.width = target.width
        self.domains = domains
        self.feasible = feasible

    def hop(self, a: int, b: int) -> int:
        """XY hop distance between tiles ``a`` and ``b``."""
        w = self.width
        return abs(a % w - b % w) + abs(a // w - b // w)


class SearchState:
    """A partial placement along the static order, with incremental bookkeeping.

    ``tile_of[v]`` is the tile of vertex ``v`` or -1; ``freedeg[t]`` counts unused allowed
    tiles within h hops of ``t``; ``cost`` is the placement cost so far (byte-hops of placed
    edges times ``comm_weight`` plus preemption cost of used tiles).
    """

    def __init__(self, space: SearchSpace, comm_weight: float = 1.0) -> None:
        self.space = space
        self.tile_of = [-1] * space.n
        self.used: set[int] = set()
        self.freedeg = list(space.tdeg)
        self.cost = 0.0
        self.depth = 0
        self.comm_weight = comm_weight
        self._deltas: list[float] = []
        self.occupant = [-1] * space.target.size  # position of the vertex on each tile

    def place(self, t: int) -> None:
        """Place the vertex at position ``depth`` on tile ``t``."""
        sp = self.space
        i = self.depth
        self.tile_of[sp.order[i]] = t
        self.used.add(t)
        self.occupant[t] = i
        fd = self.freedeg
        for s in sp.tnbr[t]:
            fd[s] -= 1
        delta = sp.tile_cost[t]
        if self.comm_weight:
            w = sp.width
            tx, ty = t % w, t // w
            for p, b in sp.parents[i]:
                q = self.tile_of[p]
                delta += self.comm_weight * b * (abs(tx - q % w) + abs(ty - q // w))
        self.cost += delta
        self._deltas.append(delta)
        self.depth = i + 1

    def unplace(self) -> None:
        """Undo the last placement."""
        sp = self.space
        self.depth -= 1
        v = sp.order[self.depth]
        t = self.tile_of[v]
        self.tile_of[v] = -1
        self.used.discard(t)
        self.occupant[t] = -1
        fd = self.freedeg
        for s in sp.tnbr[t]:
            fd[s] += 1
        self.cost -= self._deltas.pop()

    def candidates(self) -> list[int]:
        """Feasible tiles for the vertex at position ``depth`` (unordered)."""
        return [t for t, _ in self._scored_candidates()]

    def _scored_candidates(self) -> list[tuple[int, int]]:
        """Feasible tiles with their slack: the fewest options left to an unplaced neighbour.

        Forward checking rejects a tile when an unplaced neighbour would keep no candidate, or
        when the unplaced neighbours together keep fewer tiles than they are (pigeonhole).
        """
        sp = self.space
        i = self.depth
        v = sp.order[i]
        used = self.used
        tile_of = self.tile_of
        tnbr = sp.tnbr
        parents = sp.parents[i]
        if parents:
            sets = sorted((tnbr[tile_of[p]] for p, _ in parents), key=len)
            cand = sets[0] - used
            for s in sets[1:]:
                cand &= s
                if not cand:
                    return []
        else:
            cand = (sp.domains[v] if sp.domains is not None else sp.allowed) - used
        need = len(sp.later[i])
        deg = sp.pdeg[v]
        dom = sp.domains[v] if sp.domains is not None else None
        feasible = sp.feasible
        forward = sp.forward[i]
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
            for _u, placed in forward:
                inter = nt
                for p in placed:
                    inter = inter & tnbr[tile_of[p]]
                    if not inter:
                        break
                size = len(inter)
                if not size:
                    slack = -1
                    break
                slack = min(slack, size)
                if len(forward) > 1:
                    union |= inter
            if slack < 0 or (len(forward) > 1 and len(union) < len(forward)):
                continue
            out.append((t, slack))
        return out

    def ordered_candidates(self, rng: random.Random | None, noise: float) -> list[int]:
        """Candidates sorted worst-first (so ``pop()`` yields the best) by the prior.

        The prior prefers tiles that leave the most options to the unplaced neighbours (least
        constraining value), tiles close to the placed neighbours (hops), tiles with room
        around them (a subtree still to come needs space) and cheap tiles. The weights were
        chosen on planted instances (docs/matcher.md).
        """
        scored = self._scored_candidates()
        if len(scored) <= 1:
            return [t for t, _ in scored]
        sp = self.space
        w = sp.width
        parents = sp.parents[self.depth]
        tile_of = self.tile_of
        fd = self.freedeg
        cost = sp.tile_cost
        placed = [(tile_of[p] % w, tile_of[p] // w) for p, _ in parents]
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

    def conflict_position(self) -> int:
        """Deepest placed position that can affect the candidates of the current position.

        The candidates of vertex ``v`` depend only on the tiles of its placed neighbours, of its
        unplaced neighbours' placed neighbours, and on which tiles within ``2h`` of a placed
        neighbour are used. Placements after the deepest of those positions cannot have caused
        an empty candidate set, and placing more vertices only removes candidates, so a search
        may jump straight back there (graph-based backjumping). Returns ``depth - 1`` when the
        vertex has no placed neighbour.
        """
        sp = self.space
        i = self.depth
        parents = sp.parents[i]
        if not parents:
            return i - 1
        pos = sp.pos
        c = max(pos[p] for p, _ in parents)
        for _u, placed in sp.forward[i]:
            for q in placed:
                c = max(c, pos[q])
        w, h = sp.width, sp.target.height
        t = self.tile_of[parents[0][0]]
        tx, ty = t % w, t // w
        r = 2 * sp.target.hops
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
        stack = [self.ordered_candidates(rng, noise)]
        backtracks = 0
        clock = time.perf_counter
        try:
            while True:
                cands = stack[-1]
                if cands:
                    self.place(cands.pop())
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
                    level = self.ordered_candidates(rng, noise)
                    if not level and backjump:
                        # Dead end at once: jump back to the deepest conflicting position.
                        target = self.conflict_position()
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
                    stack.append(level)
                    if not stats.nodes & 127 and clock() > deadline:
                        stats.timed_out = True
                        return
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
                    if not backtracks & 127 and clock() > deadline:
                        stats.timed_out = True
                        return
        finally:
            while self.depth > start:
                self.unplace()
