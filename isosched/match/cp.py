"""The ``cp`` engine: placement as a constraint problem over bit-set domains, with proofs.

Every pattern vertex has a domain: the set of tiles it may still take, one Python ``int``
(:mod:`isosched.match.bitmesh`). The engine is a complete depth-first search that propagates
after every assignment, which is what lets it prove quickly that a placement does not exist:

* **Static filtering** (before search): a vertex of degree ``d`` only goes on a tile with at
  least ``d`` usable neighbours; a vertex with ``k`` vertices within two pattern edges only on a
  tile with at least ``k`` usable tiles within two links (neighbourhood counting); a vertex of a
  connected pattern component of ``s`` vertices only on a tile of a connected region of the free
  area with at least ``s`` tiles (counting free tiles per region).
* **Distance filtering** from the mesh geometry: when ``v`` goes on tile ``t``, every vertex ``d``
  pattern edges from ``v`` (``d`` up to :data:`MAX_DIST`) keeps only the tiles within ``d`` links
  of ``t`` (a ball of the target graph, grown by bit shifts).
* **All-different**: the tile leaves every other domain; a domain of one tile assigns its vertex
  (unit propagation); and a counting Hall check over the domains sorted by size fails as soon as
  ``k`` vertices share fewer than ``k`` tiles (pigeonhole over every prefix).
* **Symmetry breaking**: vertices with the same neighbours (the slices of a split layer) are
  interchangeable, so they take tiles in increasing order; a placement that swaps them is the
  same placement for the scheduler. With costs, only vertices whose edges also carry the same
  bytes count as interchangeable.
* **Value order**: few free neighbours first (packing the free area from its edges), short edges;
  a hub (a vertex with many pattern neighbours, :func:`hub_degree`) takes the tiles with the
  most free neighbours first instead, which leaves room around it for its neighbours.
* **Restarts**: the first run follows the prior (the value order above); when a
  run fails more often than its share of a Luby sequence it restarts with a seeded, perturbed
  value order (perturbed in proportion to the target's degree: the keys count neighbours), and a
  seeded tie-break among the vertices of equal domain size. Limits grow
  without bound, so the search stays complete: a run that ends without reaching its limit has
  exhausted the space (a proof, or optimality when cost-aware).
* **Nogoods at restarts**: the tiles of the first branching vertex that a run refuted completely
  (tried and failed before the restart) leave that vertex's domain for every later run, so a
  restart never repeats a finished subtree, and proofs accumulate across runs. The root tile in
  progress at the restart (not refuted: its subtree was left unfinished) goes after every untried
  tile in later runs, so that restarts do not keep returning to one trap whose refutation is
  longer than a run (a pocket of the free area that seats a vertex but not its neighbours).

A node is one branching assignment (assignments implied by propagation are counted apart, as
``propagated``); budgets count nodes, the wall clock is only a safety stop.

The search below, over Python ``int`` bit sets, is the reference. By default :func:`cp_search`
runs the same search compiled (:mod:`isosched.match.cpcore`, numba, word arrays), which gives
the same placement, node counts and stop reason; ``CPModel(..., compiled=False)``, the matcher's
``engine="cp-py"`` or ``ISOSCHED_CP=py`` select the reference.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from isosched.match.bitmesh import BitMesh, tiles_of
from isosched.match.native import ENV_SWITCH, compiled_default
from isosched.match.search import SearchStats
from isosched.match.target import ChipTarget
from isosched.match.ullmann import EngineOutcome
from isosched.tilegraph import TileGraph

__all__ = ["ENV_SWITCH", "CPModel", "compiled_default", "cp_search"]

#: Vertices at most this many pattern edges apart constrain each other's tiles by distance.
MAX_DIST = 3
#: Above this many vertices, domains are kept only near placed vertices (lazy), and distances
#: only up to two edges.
EAGER_LIMIT = 300
#: Above this many vertices, the search keeps explicit domains only near placed vertices (the
#: root's counting check still covers every vertex).
ACTIVE_LIMIT = 32
#: Failures allowed to run ``i`` of the restart schedule: ``luby(i) * RESTART_FAILS``.
RESTART_FAILS = 64
#: Amplitude of the random perturbation of the value order after a restart, for a target whose
#: tiles have at most :data:`NOISE_DEGREE` links; it grows with the square of the target's
#: largest degree, since a value's key counts its free neighbours (at six hops a tile has up to
#: 84 links, and a fixed amplitude would leave the order after a restart almost what it was).
NOISE = 2.0
#: The degree at which the perturbation is :data:`NOISE`: an inner tile at two hops.
NOISE_DEGREE = 12
#: Amplitude of the random tie-break of the variable order after a restart (below 1: it only
#: orders vertices of equal domain size).
TIE_NOISE = 0.999
#: Keep the root nogoods of each restart (off only to measure what they bring).
ROOT_NOGOODS = True
#: Put the root value in progress at a restart after the untried ones in later runs.
ROOT_DEMOTE = True
#: Key added per demotion (larger than any key: demoted values come after every other).
DEMOTE = 1e6

Cancel = Callable[[], bool]


_warmed = False


def warm() -> None:
    """Load the compiled core once per process, before any search's clock starts.

    numba loads the core from its on-disk cache at its first call (about 1.5 s here), or
    compiles it on a fresh install (15–20 s); a search would otherwise spend that out of its
    wall-time budget. Two tiny searches (one found, one proved impossible) touch every compiled
    function. Nothing happens when ``cp`` runs the Python reference (``ISOSCHED_CP=py``).
    """
    global _warmed
    if _warmed or not compiled_default():
        return
    _warmed = True
    from isosched.match.target import mesh_target
    from isosched.tilegraph import TileVertex

    chain = TileGraph(tuple(TileVertex(x) for x in "abc"), ((0, 1, 1), (1, 2, 1)))
    cp_search(CPModel(chain, mesh_target(2, 2, 1), compiled=True), math.inf, cost_aware=True)
    triangle = TileGraph(chain.vertices, ((0, 1, 1), (1, 2, 1), (0, 2, 1)))
    cp_search(CPModel(triangle, mesh_target(3, 3, 1), compiled=True), math.inf, max_nodes=1000)


def _row_tiles(row: npt.NDArray[np.uint64]) -> list[int]:
    """Tile indices of a word row, ascending."""
    return tiles_of(int.from_bytes(row.astype("<u8").tobytes(), "little"))


def restart_noise(model: CPModel) -> float:
    """Amplitude of the value-order perturbation after a restart (see :data:`NOISE`)."""
    return NOISE * (max(1, model.max_degree) / NOISE_DEGREE) ** 2


#: A vertex with at least this share of the target's largest degree in pattern neighbours is a
#: hub: it prefers tiles with many free neighbours (room for its neighbours), where every other
#: vertex prefers few (packing the free area from its edges).
HUB_SHARE = 0.3
#: ... and at least this many pattern neighbours (at two hops, a planted transformer's vertices of
#: degree 4-5 pack better from the edges).
HUB_MIN = 6


def hub_degree(model: CPModel) -> int:
    """Pattern degree from which a vertex prefers tiles with many free neighbours."""
    return max(HUB_MIN, math.ceil(HUB_SHARE * model.max_degree))


def tie_breaks(seed: int, run: int, n: int) -> list[float]:
    """Per-vertex additions to the domain size in the variable order of restart ``run``.

    The first run adds nothing; later ones a seeded random number below :data:`TIE_NOISE`.
    """
    if run <= 1:
        return [0.0] * n
    rng = random.Random(2 * (seed * 1_000_003 + run) + 1)
    return [TIE_NOISE * rng.random() for _ in range(n)]


def luby(i: int) -> int:
    """The ``i``-th term (from 1) of the Luby sequence 1, 1, 2, 1, 1, 2, 4, ..."""
    k = 1
    while (1 << k) - 1 < i:
        k += 1
    while True:
        if i == (1 << k) - 1:
            return 1 << (k - 1)
        i -= (1 << (k - 1)) - 1
        k = 1
        while (1 << k) - 1 < i:
            k += 1


def _pair_bytes(
    pattern: TileGraph, indptr: npt.NDArray[np.int64], indices: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Bytes per entry of the undirected CSR.

    The sum over the pattern's edges (either way, self loops aside) between the entry's row and
    its neighbour, in int64 (a tile graph document's bytes are at most 2**40 per edge).
    """
    n = indptr.size - 1
    e = np.asarray(pattern.edges, dtype=np.int64).reshape(-1, 3)
    e = e[e[:, 0] != e[:, 1]]
    lo, hi = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
    keys, inv = np.unique(lo * n + hi, return_inverse=True)
    sums = np.zeros(keys.size, dtype=np.int64)
    np.add.at(sums, inv.reshape(-1), e[:, 2])
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    want = np.minimum(rows, indices) * n + np.maximum(rows, indices)
    at = np.searchsorted(keys, want)
    if want.size and (int(at.max()) >= keys.size or not np.array_equal(keys[at], want)):
        raise RuntimeError("a neighbour entry has no edge: the CSR is not the pattern's")
    out: npt.NDArray[np.int64] = sums[at]
    return out


class CPModel:
    """Static data of one pattern/target pair: initial domains, distance layers, twins.

    Parameters
    ----------
    pattern, target : TileGraph, ChipTarget
        The instance.
    feasible : callable (vertex, tile) -> bool, optional
        The matcher's semantic hook (disables symmetry breaking: it may tell twins apart).
    weighted_twins : bool
        Treat vertices as interchangeable only when their edges carry the same bytes (needed
        when costs are optimised).
    compiled : bool, optional
        Build the word arrays of the compiled search (:mod:`isosched.match.cpcore`) instead of
        the Python reference's ``int`` bit sets; by default :func:`compiled_default`.

    Attributes
    ----------
    proof : str or None
        Why no placement exists, when static filtering already shows it.
    """

    def __init__(
        self,
        pattern: TileGraph,
        target: ChipTarget,
        feasible: Callable[[int, int], bool] | None = None,
        weighted_twins: bool = False,
        compiled: bool | None = None,
    ) -> None:
        self.pattern, self.target = pattern, target
        self.n = n = len(pattern)
        self.eager = n <= EAGER_LIMIT
        self.width = target.width
        self.proof: str | None = None
        indptr, indices = pattern.undirected_csr()
        ip, ix = indptr.tolist(), indices.tolist()
        self.padj: list[list[int]] = [ix[ip[v] : ip[v + 1]] for v in range(n)]
        self.pdeg = pdeg = [len(a) for a in self.padj]
        #: Bytes between each neighbour entry's two ends, summed over the edges joining them.
        self.pw = _pair_bytes(pattern, indptr, indices)
        self.after, self.before = self._twins(feasible is not None, weighted_twins)
        deg = np.diff(target.indptr)[target.allowed]
        #: Largest number of links of a usable tile.
        self.max_degree = int(deg.max()) if deg.size else 0
        self.order = self._static_order()
        self.compiled = compiled_default() if compiled is None else compiled
        self.arrays: dict[str, Any] = {}
        if self.compiled:
            self.layers: list[list[tuple[int, list[int]]]] = []
            self.dom0: list[int] = []
            self._compiled_setup(indptr, indices, feasible)
        else:
            self.layers, within2 = self._distance_layers()
            self.dom0 = self._initial_domains(self.mesh, pdeg, within2, feasible)

    @functools.cached_property
    def tile_cost(self) -> list[float]:
        """Cost of each tile (the reference's list)."""
        out: list[float] = self.target.tile_cost.tolist()
        return out

    @functools.cached_property
    def padj_w(self) -> list[list[tuple[int, int]]]:
        """Per vertex, ``(neighbour, bytes between them)`` in neighbour order."""
        w, ip = self.pw.tolist(), self.pattern.undirected_csr()[0].tolist()
        return [list(zip(self.padj[v], w[ip[v] : ip[v + 1]], strict=True)) for v in range(self.n)]

    @property
    def mesh(self) -> BitMesh:
        """The target's ``int`` bit sets (the reference's; built once per target)."""
        return BitMesh.of(self.target)

    def _compiled_setup(
        self,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int64],
        feasible: Callable[[int, int], bool] | None,
    ) -> None:
        """The static data as word arrays, by :func:`isosched.match.cpcore.build_arrays`."""
        from isosched.match import cpcore

        n, target = self.n, self.target
        cap = MAX_DIST if self.eager else 2
        (nbr, balls, dom0, lay_ptr, lay_d, lay_uptr, lay_u, pdeg, within2, psize) = (
            cpcore.build_arrays(
                n,
                indptr,
                indices,
                target.size,
                target.allowed,
                target.indptr,
                target.indices,
                cap,
                cap,
            )
        )
        if feasible is not None:
            for v in range(n):
                for t in _row_tiles(dom0[v]):
                    if not feasible(v, t):
                        dom0[v, t >> 6] &= ~np.uint64(1 << (t & 63))
        for v in np.flatnonzero(~dom0.any(axis=1)).tolist()[:1]:
            self.proof = (
                f"vertex {self.pattern.vertices[v].id!r} fits no tile (degree {pdeg[v]}, "
                f"{within2[v]} vertices within two edges, component of {psize[v]})"
            )

        def csr(rows: list[tuple[int, ...]]) -> tuple[npt.NDArray[np.int64], ...]:
            ptr = np.zeros(n + 1, dtype=np.int64)
            ptr[1:] = np.cumsum([len(r) for r in rows])
            flat = [u for r in rows for u in r]
            return ptr, np.asarray(flat, dtype=np.int64)

        aip, aix = csr(self.after)
        bip, bix = csr(self.before)
        self.arrays = {
            "nbr": nbr,
            "balls": balls,
            "dom0": dom0,
            "pip": indptr,
            "pix": indices,
            "pw": self.pw,
            "lay_ptr": lay_ptr,
            "lay_d": lay_d,
            "lay_uptr": lay_uptr,
            "lay_u": lay_u,
            "aip": aip,
            "aix": aix,
            "bip": bip,
            "bix": bix,
            "rank": np.asarray(self.rank, dtype=np.int64),
            "order": np.asarray(self.order, dtype=np.int64),
            "tile_cost": np.asarray(target.tile_cost, dtype=np.float64),
        }

    def _distance_layers(self) -> tuple[list[list[tuple[int, list[int]]]], list[int]]:
        """Vertices exactly ``d`` edges away (2 <= d <= the cap), and counts within two edges.

        Per vertex, ``(d, vertices)`` pairs, and the number of vertices within two edges (itself
        included); breadth-first over bit sets.
        """
        n = self.n
        adj = [0] * n
        for v in range(n):
            m = 0
            for u in self.padj[v]:
                m |= 1 << u
            adj[v] = m
        self.adjmask = adj
        cap = MAX_DIST if self.eager else 2
        layers: list[list[tuple[int, list[int]]]] = [[] for _ in range(n)]
        within2 = [0] * n
        for v in range(n):
            seen = adj[v] | (1 << v)
            front = adj[v]
            for d in range(2, cap + 1):
                nxt = 0
                for u in tiles_of(front):
                    nxt |= adj[u]
                nxt &= ~seen
                seen |= nxt
                if d == 2:
                    within2[v] = seen.bit_count()
                if not nxt:
                    break
                layers[v].append((d, tiles_of(nxt)))
                front = nxt
            if within2[v] == 0:
                within2[v] = seen.bit_count()
        return layers, within2

    def _twins(
        self, hooked: bool, weighted: bool
    ) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        """Interchangeable vertices, chained: ``after[v]`` must take a higher tile than ``v``."""
        n = self.n
        after: list[tuple[int, ...]] = [() for _ in range(n)]
        before: list[tuple[int, ...]] = [() for _ in range(n)]
        if hooked:
            return after, before
        groups: dict[tuple[object, ...], list[int]] = {}
        for v in range(n):
            if weighted:
                nb: tuple[object, ...] = tuple(sorted(self.padj_w[v]))
                closed: tuple[object, ...] = tuple(sorted([*self.padj_w[v], (v, -1)]))
            else:
                nb = tuple(self.padj[v])
                closed = tuple(sorted([*self.padj[v], v]))
            groups.setdefault(("open", *nb), []).append(v)
            groups.setdefault(("closed", *closed), []).append(v)
        taken = [False] * n
        for key, vs in groups.items():
            if len(vs) < 2 or any(taken[v] for v in vs):
                continue
            if key[0] == "closed" and weighted:
                # Closed twins are adjacent: their edges must also carry equal bytes to each
                # other, which the key (their own weight marked -1) does not show; skip them.
                continue
            for a, b in itertools.pairwise(vs):
                after[a] += (b,)
                before[b] += (a,)
            for v in vs:
                taken[v] = True
        return after, before

    def _static_order(self) -> list[int]:
        """Order in which a lazy search opens new components: earliest DAG source first."""
        from isosched.match.search import _topological_rank

        topo = _topological_rank(self.n, self.pattern.edges)
        order = sorted(range(self.n), key=lambda v: (topo[v], -self.pdeg[v], v))
        self.rank = [0] * self.n
        for i, v in enumerate(order):
            self.rank[v] = i
        return order

    def _initial_domains(
        self,
        bm: BitMesh,
        pdeg: list[int],
        within2: list[int],
        feasible: Callable[[int, int], bool] | None,
    ) -> list[int]:
        n = self.n
        tiles = tiles_of(bm.allowed)
        tdeg = {t: bm.nbr[t].bit_count() for t in tiles}
        t2 = {t: bm.ball(t, 2).bit_count() for t in tiles}
        # Connected regions of the free area (target graph), by growing balls to a fixed point.
        region: dict[int, int] = {}
        left = bm.allowed
        while left:
            comp = left & -left
            while True:
                grown = bm.link_step(comp)
                if grown == comp:
                    break
                comp = grown
            size = comp.bit_count()
            for t in tiles_of(comp):
                region[t] = size
            left &= ~comp
        # Size of each vertex's connected pattern component.
        psize = [0] * n
        adj = self.adjmask
        for v in range(n):
            if psize[v]:
                continue
            comp = 1 << v
            front = comp
            while front:
                nxt = 0
                for u in tiles_of(front):
                    nxt |= adj[u]
                front = nxt & ~comp
                comp |= nxt
            for u in tiles_of(comp):
                psize[u] = comp.bit_count()
        cache: dict[tuple[int, int, int], int] = {}
        dom0 = []
        for v in range(n):
            key = (pdeg[v], within2[v], psize[v])
            m = cache.get(key)
            if m is None:
                m = 0
                for t in tiles:
                    if tdeg[t] >= key[0] and t2[t] >= key[1] and region[t] >= key[2]:
                        m |= 1 << t
                cache[key] = m
            if feasible is not None:
                m = sum(1 << t for t in tiles_of(m) if feasible(v, t))
            dom0.append(m)
            if not m and self.proof is None:
                self.proof = (
                    f"vertex {self.pattern.vertices[v].id!r} fits no tile (degree {key[0]}, "
                    f"{key[1]} vertices within two edges, component of {key[2]})"
                )
        return dom0


class _State:
    __slots__ = ("active", "cost", "dom", "free", "placed", "tile_of")

    def __init__(
        self,
        dom: list[int],
        tile_of: list[int],
        free: int,
        cost: float,
        active: list[int],
        placed: int,
    ) -> None:
        self.dom, self.tile_of, self.free = dom, tile_of, free
        self.cost, self.active, self.placed = cost, active, placed

    def copy(self) -> _State:
        return _State(
            self.dom[:], self.tile_of[:], self.free, self.cost, self.active[:], self.placed
        )


@dataclass(frozen=True)
class _Limits:
    """What one :func:`cp_search` call asks of either implementation (see its parameters)."""

    deadline: float
    seed: int
    cost_aware: bool
    comm_weight: float
    max_nodes: int | None
    cancel: Cancel | None
    restarts: bool

    def fail_limit(self, run: int) -> int | None:
        """Failures allowed to restart ``run`` (``None``: no restarts)."""
        return luby(run) * RESTART_FAILS if self.restarts else None

    def rng_key(self, run: int) -> int:
        """Seed of the perturbed value order of restart ``run`` (from 2)."""
        return self.seed * 1_000_003 + run


class _Search:
    def __init__(self, model: CPModel, lim: _Limits) -> None:
        self.m = model
        self.deadline = lim.deadline
        self.seed = lim.seed
        self.cost_aware = lim.cost_aware
        self.cw = lim.comm_weight if lim.cost_aware else 0.0
        self.max_nodes = lim.max_nodes if lim.max_nodes is not None else -1
        self.cancel = lim.cancel
        self.stats = SearchStats()
        self.best: list[int] | None = None
        self.best_cost = math.inf
        self.partial: list[int] = [-1] * model.n
        self.partial_n = 0
        self.stop = ""  # "budget" or "cancelled" when stopped early
        self.propagated = 0
        self.fail_why = ""
        #: The initial domains less the root nogoods of earlier runs.
        self.dom0 = list(model.dom0)
        self.tie = [0.0] * model.n
        self.noise = restart_noise(model)
        self.hub = hub_degree(model)
        #: Root values in progress at earlier restarts (vertex, tile) -> how often.
        self.demoted: dict[tuple[int, int], int] = {}
        self.nogoods = 0

    # ---- propagation -------------------------------------------------------------------------
    def assign(self, st: _State, v: int, t: int) -> bool:
        """Place ``v`` on ``t`` and propagate to a fixed point of the cheap rules."""
        m = self.m
        dom, tile_of = st.dom, st.tile_of
        dom0, padj, layers = self.dom0, m.padj, m.layers
        after, before = m.after, m.before
        nbr, ball = m.mesh.nbr, m.mesh.ball
        cw, w = self.cw, m.width
        queue = [(v, t)]
        first = True
        while queue:
            v, t = queue.pop()
            cur = tile_of[v]
            if cur >= 0:
                if cur == t:
                    continue
                return False
            bit = 1 << t
            if not st.free & bit or (dom[v] >= 0 and not dom[v] & bit):
                return False
            if not first:
                self.propagated += 1
            first = False
            tile_of[v] = t
            st.free &= ~bit
            st.placed += 1
            dom[v] = bit
            if self.cost_aware:
                c = m.tile_cost[t]
                if cw:
                    tx, ty = t % w, t // w
                    for u, b in m.padj_w[v]:
                        q = tile_of[u]
                        if q >= 0 and b:
                            c += cw * b * (abs(tx - q % w) + abs(ty - q // w))
                st.cost += c
                if st.cost >= self.best_cost:
                    return False
            active = st.active
            free = st.free
            nb = nbr[t]
            for u in padj[v]:
                if tile_of[u] < 0:
                    d = dom[u]
                    if d < 0:
                        d = dom0[u] & free
                        active.append(u)
                    dom[u] = d & nb
            for dist, us in layers[v]:
                reach = ball(t, dist)
                for u in us:
                    if tile_of[u] < 0:
                        d = dom[u]
                        if d < 0:
                            d = dom0[u] & free
                            active.append(u)
                        dom[u] = d & reach
            for u in after[v]:
                if tile_of[u] < 0:
                    d = dom[u]
                    if d < 0:
                        d = dom0[u] & free
                        active.append(u)
                    dom[u] = d & ~((bit << 1) - 1)
            for u in before[v]:
                if tile_of[u] < 0:
                    d = dom[u]
                    if d < 0:
                        d = dom0[u] & free
                        active.append(u)
                    dom[u] = d & (bit - 1)
            keep = []
            notbit = ~bit
            for u in active:
                if tile_of[u] >= 0:
                    continue
                d = dom[u] & notbit
                if not d:
                    return False
                dom[u] = d
                if not d & (d - 1):
                    queue.append((u, d.bit_length() - 1))
                keep.append(u)
            st.active = keep
        return self.hall(st)

    def hall(self, st: _State) -> bool:
        """Counting all-different: every k domains together must hold at least k tiles."""
        dom = st.dom
        left = self.m.n - st.placed
        if left > st.free.bit_count():
            return False
        doms = sorted((dom[u] for u in st.active), key=int.bit_count)
        union = 0
        for k, d in enumerate(doms, 1):
            union |= d
            if union.bit_count() < k:
                return False
        return True

    # ---- ordering ----------------------------------------------------------------------------
    def select(self, st: _State) -> int:
        """Smallest domain first (ties: the run's tie-break, then earliest in topological order)."""
        d, rank, tie = st.dom, self.m.rank, self.tie
        best, key = -1, (1e300, 0)
        for u in st.active:
            c = d[u].bit_count() + tie[u]
            k = (c, rank[u])
            if k < key:
                best, key = u, k
        if best >= 0:
            return best
        tile_of = st.tile_of
        return next(v for v in self.m.order if tile_of[v] < 0)

    def values(
        self, st: _State, v: int, rng: random.Random | None, at_root: bool = False
    ) -> list[int]:
        """Tiles of ``v``'s domain, best last (few free neighbours, a hub many; short edges)."""
        m = self.m
        d = st.dom[v]
        tiles = tiles_of(d if d >= 0 else self.dom0[v] & st.free)
        if len(tiles) <= 1:
            return tiles
        nbr, free, w = m.mesh.nbr, st.free, m.width
        placed = [st.tile_of[u] for u in m.padj[v] if st.tile_of[u] >= 0]
        cost = m.tile_cost if self.cost_aware else None
        sign = 1.0 if m.pdeg[v] < self.hub else -1.0
        keys = []
        for t in tiles:
            k = sign * (nbr[t] & free).bit_count()
            if placed:
                tx, ty = t % w, t // w
                for q in placed:
                    k += abs(tx - q % w) + abs(ty - q // w)
            if cost is not None:
                k += cost[t]
            if rng is not None:
                k += self.noise * rng.random()
            if at_root and self.demoted:
                k += DEMOTE * self.demoted.get((v, t), 0)
            keys.append((k, t))
        keys.sort(reverse=True)
        return [t for _, t in keys]

    # ---- search ------------------------------------------------------------------------------
    def root(self) -> _State | None:
        m = self.m
        allowed = m.mesh.allowed
        if m.eager:
            st = _State(list(m.dom0), [-1] * m.n, allowed, 0.0, list(range(m.n)), 0)
            if not self.hall(st):
                self.fail_why = "counting all-different at the root: too few tiles for a group"
                return None
            if m.n > ACTIVE_LIMIT:
                # Checked once over every vertex; below the root, only the vertices near placed
                # ones keep explicit domains, so a node costs what the frontier holds.
                st = _State([-1] * m.n, [-1] * m.n, allowed, 0.0, [], 0)
        else:
            st = _State([-1] * m.n, [-1] * m.n, allowed, 0.0, [], 0)
        return st

    def out_of_budget(self) -> bool:
        if self.stats.nodes >= self.max_nodes >= 0 or time.perf_counter() > self.deadline:
            self.stop = "budget"
            self.stats.timed_out = True
            return True
        if self.cancel is not None and self.cancel():
            self.stop = "cancelled"
            return True
        return False

    def run(self, root: _State, fail_limit: int | None, rng: random.Random | None) -> str:
        """One run of the search; ``found``, ``exhausted``, ``restart`` or ``stopped``.

        ``root`` is never changed but by the nogoods a restart records.
        """
        m, stats = self.m, self.stats
        n = m.n
        v0 = self.select(root)
        root_vals = self.values(root, v0, rng, at_root=True)
        stack = [(root, v0, root_vals[:])]
        fails = 0
        while stack:
            if self.out_of_budget():
                return "stopped"
            st, v, vals = stack[-1]
            if not vals:
                stack.pop()
                continue
            t = vals.pop()
            child = st.copy()
            stats.nodes += 1
            ok = self.assign(child, v, t)
            if child.placed > self.partial_n:
                self.partial_n = child.placed
                self.partial = child.tile_of[:]
            if child.placed > stats.max_depth:
                stats.max_depth = child.placed
            if not ok:
                fails += 1
                stats.backtracks += 1
                if fail_limit is not None and fails > fail_limit:
                    # root values tried before the one in progress (all, when a root value
                    # failed) are refuted: later runs never take them again
                    left = len(stack[0][2]) + (1 if len(stack) > 1 else 0)
                    if len(stack) > 1 and ROOT_DEMOTE:
                        # the root value in progress goes after the untried ones next time
                        key = (v0, root_vals[left - 1])
                        self.demoted[key] = self.demoted.get(key, 0) + 1
                    for t in root_vals[left:] if ROOT_NOGOODS else ():
                        self.nogoods += 1
                        self.dom0[v0] &= ~(1 << t)
                        if root.dom[v0] >= 0:
                            root.dom[v0] &= ~(1 << t)
                    return "restart"
                continue
            if child.placed == n:
                if child.cost < self.best_cost or self.best is None:
                    self.best, self.best_cost = child.tile_of[:], child.cost
                stats.extra["solutions"] = stats.extra.get("solutions", 0) + 1
                if not self.cost_aware:
                    return "found"
                continue
            u = self.select(child)
            stack.append((child, u, self.values(child, u, rng)))
        return "exhausted"


def cp_search(
    model: CPModel,
    deadline: float,
    seed: int = 0,
    cost_aware: bool = False,
    comm_weight: float = 1.0,
    max_nodes: int | None = None,
    cancel: Cancel | None = None,
    restarts: bool = True,
) -> EngineOutcome:
    """Search ``model`` for a placement (the cheapest, when ``cost_aware``) or prove none exists.

    Parameters
    ----------
    model : CPModel
        The instance.
    deadline : float
        ``time.perf_counter()`` value at which to stop (a safety stop; ``max_nodes`` decides).
    seed : int
        Seed of the perturbed value orders after restarts.
    cost_aware : bool
        Branch and bound on the placement cost until the space is exhausted or the budget ends.
    comm_weight : float
        Weight of byte-hops against preemption cost.
    max_nodes : int, optional
        Branching assignments allowed.
    cancel : callable, optional
        Polled once per node by the reference and between slices (64-128 nodes) by the
        compiled core, so the two may stop at different nodes; when it returns true the search
        stops as ``cancelled``.
    restarts : bool
        Restart on a Luby schedule (off: one plain depth-first run).

    Returns
    -------
    EngineOutcome
        ``stop`` is ``found``, ``impossible``, ``budget`` or ``cancelled``; ``partial`` the
        deepest partial placement reached.
    """
    lim = _Limits(deadline, seed, cost_aware, comm_weight, max_nodes, cancel, restarts)
    if model.compiled:
        return _cp_search_compiled(model, lim)
    s = _Search(model, lim)

    def outcome(stop: str, detail: str) -> EngineOutcome:
        s.stats.extra["propagated"] = s.propagated
        out = EngineOutcome(s.best, s.best_cost if s.best else math.inf, s.stats, detail)
        out.stop = stop
        out.partial = s.partial
        return out

    if model.proof is not None:
        s.stats.exhausted = True
        return outcome("impossible", f"proved: {model.proof}")
    root = s.root()
    if root is None:
        s.stats.exhausted = True
        return outcome("impossible", f"proved: {s.fail_why}")
    i = 0
    while True:
        i += 1
        rng = random.Random(lim.rng_key(i)) if i > 1 else None
        s.tie = tie_breaks(seed, i, model.n)
        how = s.run(root, lim.fail_limit(i), rng)
        s.stats.extra["restarts"] = i - 1
        s.stats.extra["nogoods"] = s.nogoods
        if how == "found":
            return outcome("found", "found")
        if how == "exhausted":
            s.stats.exhausted = True
            if s.best is not None:
                return outcome("found", "optimal: search space exhausted")
            return outcome("impossible", "proved: search space exhausted")
        if how == "stopped":
            if s.best is not None:
                return outcome("found", "found")
            if s.stop == "cancelled":
                return outcome("cancelled", "cancelled")
            return outcome("budget", "budget exhausted before a placement was found")


#: Nodes of the first slice of the compiled search; slices double up to :data:`SLICE_MAX`
#: (between slices Python checks the wall clock and the cancel hook: at most a few hundred
#: microseconds apart on a 16×16 chip).
SLICE_MIN = 64
SLICE_MAX = 128
#: Largest seed magnitude whose restarts the compiled core sets up itself (its keys stay within
#: 63 bits); larger seeds return to Python at every restart, with the same answers.
INCORE_SEED = 1 << 31
#: Initial length of the compiled search's propagation queue (``None``: enough for every
#: instance met so far; a full queue is grown and the node run again, with the same answer).
QUEUE_LEN: int | None = None


def _words(flags: npt.NDArray[np.bool_], w: int) -> npt.NDArray[np.uint64]:
    """One bit per flag, tile ``t`` at bit ``t % 64`` of word ``t // 64``, in ``w`` words."""
    bits = np.zeros(64 * w, dtype=np.uint8)
    bits[: flags.size] = flags
    return np.packbits(bits, bitorder="little").view("<u8").astype(np.uint64)


def _mt_state(key: int) -> npt.NDArray[np.uint64]:
    """State of ``random.Random(key)``'s Mersenne Twister after seeding.

    CPython seeds from an ``int`` by ``init_by_array`` over the 32-bit words of ``abs(key)``.
    """
    from isosched.match import cpcore

    key = abs(key)
    words = []
    while True:
        words.append(key & 0xFFFFFFFF)
        key >>= 32
        if not key:
            break
    out: npt.NDArray[np.uint64] = cpcore.mt_seed(np.asarray(words, dtype=np.uint64))
    return out


def _cp_search_compiled(model: CPModel, lim: _Limits) -> EngineOutcome:
    """:func:`cp_search` on the compiled core: the same answer, nodes and stop reason."""
    from isosched.match import cpcore as c

    deadline, cancel, cost_aware = lim.deadline, lim.cancel, lim.cost_aware

    a = model.arrays
    n, size = model.n, model.target.size
    w = a["dom0"].shape[1]
    stats = SearchStats()
    s = np.zeros(c.NS, dtype=np.int64)
    f = np.array([0.0, math.inf, TIE_NOISE])
    # restarts set up inside the compiled core (no return to Python between runs)
    s[c.S_INCORE] = lim.restarts and abs(lim.seed) < INCORE_SEED
    s[c.S_SEED] = lim.seed if s[c.S_INCORE] else 0
    s[c.S_FAILBASE] = RESTART_FAILS
    best = np.full(n, -1, dtype=np.int64)
    partial = np.full(n, -1, dtype=np.int64)

    def outcome(stop: str, detail: str) -> EngineOutcome:
        stats.nodes = int(s[c.S_NODES])
        stats.backtracks = int(s[c.S_BACKTRACKS])
        stats.max_depth = int(s[c.S_MAXDEPTH])
        if s[c.S_SOLUTIONS]:
            stats.extra["solutions"] = int(s[c.S_SOLUTIONS])
        stats.extra["propagated"] = int(s[c.S_PROPAGATED])
        tiles = best.tolist() if s[c.S_HAVE_BEST] else None
        out = EngineOutcome(tiles, float(f[1]) if tiles else math.inf, stats, detail)
        out.stop = stop
        out.partial = partial.tolist()
        return out

    if model.proof is not None:
        stats.exhausted = True
        return outcome("impossible", f"proved: {model.proof}")
    allowed = _words(model.target.allowed, w)
    dom = np.zeros((n, w), dtype=np.uint64)
    dom0 = a["dom0"].copy()  # less the root nogoods of earlier runs
    act = np.zeros(n, dtype=np.uint8)
    active = np.zeros(n, dtype=np.int64)
    alen = 0
    if model.eager:
        if not c.root_hall(dom0, allowed, n):
            stats.exhausted = True
            return outcome(
                "impossible",
                "proved: counting all-different at the root: too few tiles for a group",
            )
        if n <= ACTIVE_LIMIT:
            dom[:] = dom0
            act[:] = 1
            active[:] = np.arange(n)
            alen = n
    s[c.S_ALEN] = alen
    free = allowed.copy()
    tile_of = np.full(n, -1, dtype=np.int64)
    saved = np.zeros(n, dtype=np.int64)
    cap_tr = n * min(n, 64) + 64
    tr_u = np.zeros(cap_tr, dtype=np.int64)
    tr_a = np.zeros(cap_tr, dtype=np.uint8)
    tr_w = np.zeros((cap_tr, w), dtype=np.uint64)
    tr_t = np.zeros(n + 1, dtype=np.int64)
    levels = n + 2
    lv_var = np.zeros(levels, dtype=np.int64)
    lv_voff = np.zeros(levels, dtype=np.int64)
    lv_vlen = np.zeros(levels, dtype=np.int64)
    lv_dtr = np.zeros(levels, dtype=np.int64)
    lv_ttr = np.zeros(levels, dtype=np.int64)
    lv_free = np.zeros((levels, w), dtype=np.uint64)
    lv_cost = np.zeros(levels, dtype=np.float64)
    lv_placed = np.zeros(levels, dtype=np.int64)
    lv_aoff = np.zeros(levels, dtype=np.int64)
    lv_alen = np.zeros(levels, dtype=np.int64)
    vbuf = np.zeros(4 * size + 8, dtype=np.int64)
    abuf = np.zeros(4 * n + 8, dtype=np.int64)
    tmp = np.zeros(size, dtype=np.int64)
    keys = np.zeros(size, dtype=np.float64)
    mt = np.zeros(624, dtype=np.uint64)
    dem = np.zeros((64, 2), dtype=np.int64)  # root (vertex, tile) demoted at restarts
    pent = np.zeros(size, dtype=np.float64)
    # the propagation queue (vertex, tile), grown when full
    qlen = QUEUE_LEN if QUEUE_LEN is not None else max(size + 2, 2 * n + 2)
    qv = np.zeros(qlen, dtype=np.int64)
    qt = np.zeros(qlen, dtype=np.int64)
    # the search's work rows
    wk = np.zeros((6, max(size + 2, 2 * n + 2, 258)), dtype=np.int64)
    wk[4, :size] = np.arange(size) % model.width  # the tiles' coordinates
    wk[5, :size] = np.arange(size) // model.width
    union = np.zeros(w, dtype=np.uint64)
    rk = np.zeros(size, dtype=np.uint64)
    cw = lim.comm_weight if cost_aware else 0.0
    budget = lim.max_nodes if lim.max_nodes is not None else -1
    stop = ""

    def out_of_time() -> bool:
        nonlocal stop
        if time.perf_counter() > deadline:
            stop = "budget"
            stats.timed_out = True
            return True
        if cancel is not None and cancel():
            stop = "cancelled"
            return True
        return False

    i = 0
    slice_nodes = SLICE_MIN
    how = -1
    while True:
        i += 1
        s[c.S_RUN] = i
        limit = lim.fail_limit(i)
        s[c.S_LIMIT] = -1 if limit is None else limit
        s[c.S_KEEP_NOGOODS] = ROOT_NOGOODS
        if i > 1:
            mt[:] = _mt_state(lim.rng_key(i))
            s[c.S_MTI] = 624
        tie = np.asarray(tie_breaks(lim.seed, i, n), dtype=np.float64)
        start = True
        while True:
            if budget >= 0 and s[c.S_NODES] >= budget:
                how = c.R_BUDGET
            elif out_of_time():
                how = -1
            else:
                how = c.search_slice(
                    start, budget, slice_nodes, s, f, mt, dom, act, tile_of, free, active,
                    saved, tr_u, tr_a, tr_w, tr_t, lv_var, lv_voff, lv_vlen, lv_dtr, lv_ttr,
                    lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, vbuf, abuf, best, partial,
                    tmp, keys, rk, dom0, a["nbr"], a["balls"], a["pip"], a["pix"], a["pw"],
                    a["lay_ptr"], a["lay_d"], a["lay_uptr"], a["lay_u"], a["aip"], a["aix"],
                    a["bip"], a["bix"], a["rank"], a["order"], a["tile_cost"], cost_aware, cw,
                    model.width, restart_noise(model), tie, hub_degree(model), dem,
                    pent, DEMOTE if ROOT_DEMOTE else 0.0, qv, qt, wk, union,
                )  # fmt: skip
                start = False
            if how == c.R_SLICE:
                slice_nodes = min(2 * slice_nodes, SLICE_MAX)
                continue
            if how == c.R_GROW:
                if s[c.S_DTR] + n + 1 > len(tr_u):
                    tr_u = np.concatenate([tr_u, np.zeros_like(tr_u)])
                    tr_a = np.concatenate([tr_a, np.zeros_like(tr_a)])
                    tr_w = np.concatenate([tr_w, np.zeros_like(tr_w)])
                if s[c.S_VTOP] + size > len(vbuf):
                    vbuf = np.concatenate([vbuf, np.zeros_like(vbuf)])
                if len(abuf) < (s[c.S_DEPTH] + 2) * n:
                    abuf = np.concatenate([abuf, np.zeros_like(abuf)])
                if s[c.S_NDEM] >= len(dem):
                    dem = np.concatenate([dem, np.zeros_like(dem)])
                if s[c.S_QFULL]:
                    s[c.S_QFULL] = 0
                    qv = np.concatenate([qv, np.zeros_like(qv)])
                    qt = np.concatenate([qt, np.zeros_like(qt)])
                continue
            break
        stats.extra["restarts"] = int(s[c.S_RUN]) - 1
        stats.extra["nogoods"] = int(s[c.S_NOGOODS])
        if how == c.R_FOUND:
            return outcome("found", "found")
        if how == c.R_EXHAUSTED:
            stats.exhausted = True
            if s[c.S_HAVE_BEST]:
                return outcome("found", "optimal: search space exhausted")
            return outcome("impossible", "proved: search space exhausted")
        if how == c.R_RESTART:
            continue
        # stopped: the node budget, the wall clock or the cancel hook
        if how == c.R_BUDGET:
            stop = "budget"
            stats.timed_out = True
        if s[c.S_HAVE_BEST]:
            return outcome("found", "found")
        if stop == "cancelled":
            return outcome("cancelled", "cancelled")
        return outcome("budget", "budget exhausted before a placement was found")
