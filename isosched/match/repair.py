"""Min-conflicts repair: a local search over complete placements (the ``repair`` engine).

The complete engines (``cp``, ``ullmann``) extend a partial placement one vertex at a time and
backtrack; on a fragmented free area at five or six hops their first choices can doom a subtree
that takes tens of thousands of nodes to leave. A local search sidesteps that: every pattern
vertex always has a tile, and the search moves one vertex at a time (to a free tile, or by
swapping tiles with another vertex) to reduce the *excess* of the placement, the sum over the
pattern's edges of how many hops each spans beyond the bound. Excess 0 is a valid placement.

* **Start.** Vertices are placed in breadth-first order from a root, each on the usable tile that
  adds the least excess with its placed neighbours (ties by distance, then at random); the first
  on the tile nearest the usable area's centroid.
* **Step.** A vertex with excess (drawn uniformly) moves to the tile, or
  swaps with the vertex on the tile, that lowers the total *weighted* excess most (ties at
  random). The tile a vertex just left is taboo to it for :data:`TABU` steps; one step in
  :data:`NOISE_PER_MILLE` moves it to a random tile instead (a random walk that leaves plateaus).
* **Breakout weights.** Every edge weighs 1 at the start of a run. When no move lowers the chosen
  vertex's weighted excess (a local minimum for it), each of its stretched edges weighs
  :data:`WEIGHT_STEP` more from then on, so that edges that stay stretched come to dominate the
  score and the search moves elsewhere to relieve them (Morris's breakout method). The weights
  steer the search only: "found" is excess 0, and the partial and the reported excess are the
  plain ones.
* **Restarts.** A run ends after ``base × Luby(run)`` steps without an answer (the Luby sequence
  1, 1, 2, 1, 1, 2, 4, ...); the next one starts again from a random root with its own random
  stream.

It never proves that no placement exists (a stop is ``found``, ``budget`` or ``cancelled``), so
the placer runs it between turns of ``cp``, which does (:mod:`isosched.match.placer`). A step
evaluates every usable tile for one vertex: it costs about as much as a ``cp`` node on a 16×16
chip, and counts as one node of a budget per 256 usable tiles (:func:`step_nodes`). The random
stream is a 32-bit xorshift in plain integer arithmetic, so the kernel gives the same answer
compiled (numba) and interpreted; the interpreted kernel is the reference (``ISOSCHED_CP=py``,
the switch of :mod:`isosched.match.cp`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from isosched.match import native
from isosched.match.native import compiled_default
from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph

__all__ = [
    "NOISE_PER_MILLE",
    "RUN_BASE",
    "RepairModel",
    "STEP_TILES",
    "TABU",
    "WEIGHT_STEP",
    "RepairOutcome",
    "repair_search",
    "step_nodes",
]

IntArray = npt.NDArray[np.int64]

#: The tile a vertex left is taboo to it for this many steps.
TABU = 10
#: Steps (per thousand) that move the chosen vertex to a random tile.
NOISE_PER_MILLE = 20
#: Weight added to the stretched edges of a vertex that no move improves (0: no weighting).
WEIGHT_STEP = 1
#: Steps of a run are ``RUN_BASE × Luby(run)``.
RUN_BASE = 1_000
#: A step counts as one node of a budget per this many usable tiles (or part of it).
STEP_TILES = 256
#: Steps per call of the kernel; the driver checks the wall clock and the cancel hook between.
SLICE = 256
M32 = 0xFFFFFFFF
#: Models with at most this many usable tiles read an edge's excess from a table (8 bytes per pair
#: of usable tiles); larger ones compute it in the kernel. Chips of at most this many tiles keep one
#: table per bound (512 KiB at most, 8 kept per process), whose rows and columns give a model's
#: table faster than computing it.
TABLE_SLOTS = 256

# Scalar slots of the resumable kernel's state (an int64 array).
R_RAND = 0  # xorshift32 state of the current run
R_STEPS = 1  # steps taken over all runs
R_RUN = 2  # current run (0-based)
R_LEFT = 3  # steps left in the current run (0: start a new run)
R_TOTAL = 4  # excess of the current placement
R_BEST = 5  # least excess seen
R_SEED = 6
R_BASE = 7
R_FOUND = 8  # 1 once a placement of excess 0 is held
R_START = 9  # 1: the first run starts from the given partial placement
R_NOISE = 10  # NOISE_PER_MILLE
R_TABU = 11  # TABU
R_WEIGHT = 12  # WEIGHT_STEP (0: every edge weighs 1 throughout)
R_SIZE = 13


def step_nodes(tiles: int) -> int:
    """Nodes of a budget that one step on ``tiles`` usable tiles counts as (at least 1).

    A step evaluates every usable tile for one vertex, so its cost grows with the chip; a ``cp``
    node's much less. On chips of up to 256 tiles a step costs about a ``cp`` node (1-3 µs on
    16×16).
    """
    return max(1, -(-tiles // STEP_TILES))


def _kernel(
    indptr: IntArray,
    nbr: IntArray,
    sx: IntArray,
    sy: IntArray,
    dex: IntArray,
    hops: int,
    st: IntArray,
    pos: IntArray,
    occ: IntArray,
    exc: IntArray,
    taboo_v: IntArray,
    taboo_until: IntArray,
    best: IntArray,
    order: IntArray,
    start: IntArray,
    acc: IntArray,
    mark: IntArray,
    wq: IntArray,
    rev: IntArray,
    uexc: IntArray,
    max_steps: int,
) -> None:
    """Run up to ``max_steps`` steps (runs restart inside); state lives in the arrays.

    Written for numba and for the interpreter alike: integers only, no calls but ``abs``,
    ``max`` and ``range``. Scoring a step's candidate tiles, the hot part, reads an edge's excess
    from ``dex`` (slots × slots), or computes it from the coordinates when ``dex`` is empty
    (models above :data:`TABLE_SLOTS` slots); the rest (a run's start, the breakout weights, the
    books after a move: a few edges each) always computes it.
    """
    n = indptr.size - 1
    m = sx.size
    tab = dex.shape[0] == m
    done = 0
    while done < max_steps and st[R_FOUND] == 0:
        if st[R_LEFT] == 0:
            # ---- a new run: its stream, a root, the greedy start ----
            run = st[R_RUN]
            rs = (st[R_SEED] * 1000003 + run * 7919 + 12345) & M32
            if rs == 0:
                rs = 1
            # Luby(run + 1), as isosched.match.cp.luby computes it
            i = run + 1
            k = 1
            while (1 << k) - 1 < i:
                k += 1
            while i != (1 << k) - 1:
                i -= (1 << (k - 1)) - 1
                k = 1
                while (1 << k) - 1 < i:
                    k += 1
            st[R_LEFT] = st[R_BASE] * (1 << (k - 1))
            for v in range(n):
                pos[v] = -1
            for s in range(m):
                occ[s] = -1
                taboo_v[s] = -1
                taboo_until[s] = 0
            for q in range(nbr.size):
                wq[q] = 1
            root = 0
            if run > 0:
                rs ^= (rs << 13) & M32
                rs ^= rs >> 17
                rs ^= (rs << 5) & M32
                root = rs % n
            # breadth-first order from the root, then from each unreached vertex (occ[v] = -2
            # marks vertex v as reached: a pattern has no more vertices than there are tiles)
            tail = 0
            for r0 in range(n):
                r = (root + r0) % n
                if occ[r] == -2:
                    continue
                occ[r] = -2
                order[tail] = r
                tail += 1
                head = tail - 1
                while head < tail:
                    v = order[head]
                    head += 1
                    for q in range(indptr[v], indptr[v + 1]):
                        u = nbr[q]
                        if occ[u] != -2:
                            occ[u] = -2
                            order[tail] = u
                            tail += 1
            for s in range(m):
                occ[s] = -1
            if run == 0 and st[R_START] == 1:
                for v in range(n):
                    if start[v] >= 0:
                        pos[v] = start[v]
                        occ[start[v]] = v
            cx2 = 0
            cy2 = 0
            for s in range(m):
                cx2 += sx[s]
                cy2 += sy[s]
            for j in range(n):
                v = order[j]
                if pos[v] >= 0:
                    continue
                bc = -1
                bs = -1
                ties = 0
                for s in range(m):
                    if occ[s] >= 0:
                        continue
                    c = 0
                    placed = 0
                    for q in range(indptr[v], indptr[v + 1]):
                        p = pos[nbr[q]]
                        if p >= 0:
                            d = abs(sx[s] - sx[p]) + abs(sy[s] - sy[p])
                            c += 4096 * max(0, d - hops) + d
                            placed += 1
                    if placed == 0:  # nearest the centroid (coordinates scaled by m)
                        c = abs(sx[s] * m - cx2) + abs(sy[s] * m - cy2)
                    if bs < 0 or c < bc:
                        bc = c
                        bs = s
                        ties = 1
                    elif c == bc:
                        ties += 1
                        rs ^= (rs << 13) & M32
                        rs ^= rs >> 17
                        rs ^= (rs << 5) & M32
                        if rs % ties == 0:
                            bs = s
                pos[v] = bs
                occ[bs] = v
            total = 0
            for v in range(n):
                c = 0
                cw = 0
                for q in range(indptr[v], indptr[v + 1]):
                    p = pos[nbr[q]]
                    e = max(0, abs(sx[pos[v]] - sx[p]) + abs(sy[pos[v]] - sy[p]) - hops)
                    c += e
                    cw += wq[q] * e
                uexc[v] = c
                exc[v] = cw
                total += c
            st[R_TOTAL] = total // 2
            st[R_RAND] = rs
            st[R_RUN] = run + 1
            st[R_STEPS] += 1
            done += 1
        else:
            # ---- one step ----
            rs = st[R_RAND]
            step = st[R_STEPS]
            rs ^= (rs << 13) & M32
            rs ^= rs >> 17
            rs ^= (rs << 5) & M32
            # a vertex with excess, uniformly at random
            cnt = 0
            for v in range(n):
                if exc[v] > 0:
                    cnt += 1
            want = rs % cnt
            x = -1
            for v in range(n):
                if exc[v] > 0:
                    if want == 0:
                        x = v
                        break
                    want -= 1
            px = pos[x]
            rs ^= (rs << 13) & M32
            rs ^= rs >> 17
            rs ^= (rs << 5) & M32
            bs = -1
            bd = 0
            if rs % 1000 < st[R_NOISE]:
                rs ^= (rs << 13) & M32
                rs ^= rs >> 17
                rs ^= (rs << 5) & M32
                bs = rs % m
            else:
                # delta(s) = acc[s] - exc[x] + (C[y] - exc[y] + 2 [y ~ x] exc(d(s, px)) if a
                # vertex y holds s): acc[s] is x's excess on s with its neighbours where they
                # are, C[y] is y's excess on px with its neighbours where they are (x's edge,
                # if any, is then 0 long on both sides and its term is added back)
                for s in range(m):
                    acc[s] = 0
                for q in range(indptr[x], indptr[x + 1]):
                    u = nbr[q]
                    mark[u] = wq[q]
                    wu = wq[q]
                    pu = pos[u]
                    if tab:
                        row = dex[pu]
                        for s in range(m):
                            acc[s] += wu * row[s]
                    else:
                        for s in range(m):
                            acc[s] += wu * max(0, abs(sx[s] - sx[pu]) + abs(sy[s] - sy[pu]) - hops)
                ties = 0
                for s in range(m):
                    if s == px or (taboo_v[s] == x and taboo_until[s] > step):
                        continue
                    y = occ[s]
                    delta = acc[s] - exc[x]
                    if y >= 0:
                        # C[y] - exc[y] >= -exc[y] and the edge term >= 0: a tile whose bound
                        # already exceeds the best delta can neither win nor tie, so C[y] is
                        # only computed for the others (the same scan, draws and answer)
                        if bs >= 0 and delta - exc[y] > bd:
                            continue
                        c = 0
                        for q in range(indptr[y], indptr[y + 1]):
                            p = pos[nbr[q]]
                            c += wq[q] * (
                                dex[px, p]
                                if tab
                                else max(0, abs(sx[px] - sx[p]) + abs(sy[px] - sy[p]) - hops)
                            )
                        delta += c - exc[y]
                        if mark[y] > 0:
                            e = (
                                dex[s, px]
                                if tab
                                else max(0, abs(sx[s] - sx[px]) + abs(sy[s] - sy[px]) - hops)
                            )
                            delta += 2 * mark[y] * e
                    if bs < 0 or delta < bd:
                        bd = delta
                        bs = s
                        ties = 1
                    elif delta == bd:
                        ties += 1
                        rs ^= (rs << 13) & M32
                        rs ^= rs >> 17
                        rs ^= (rs << 5) & M32
                        if rs % ties == 0:
                            bs = s
                for q in range(indptr[x], indptr[x + 1]):
                    mark[nbr[q]] = 0
                if st[R_WEIGHT] > 0 and bd >= 0:
                    # stuck: x's stretched edges weigh more from now on (breakout); each adds
                    # its stretch once more per weight step to the excess of both its ends
                    for q in range(indptr[x], indptr[x + 1]):
                        u = nbr[q]
                        e = max(0, abs(sx[px] - sx[pos[u]]) + abs(sy[px] - sy[pos[u]]) - hops)
                        if e > 0:
                            wq[q] += st[R_WEIGHT]
                            wq[rev[q]] += st[R_WEIGHT]
                            exc[x] += st[R_WEIGHT] * e
                            exc[u] += st[R_WEIGHT] * e
            st[R_RAND] = rs
            st[R_STEPS] = step + 1
            st[R_LEFT] -= 1
            done += 1
            if bs >= 0 and bs != px:
                y = occ[bs]
                taboo_v[px] = x
                taboo_until[px] = step + 1 + st[R_TABU]
                pos[x] = bs
                occ[bs] = x
                occ[px] = y
                if y >= 0:
                    pos[y] = px
                # the excess of the moved vertices, recounted, and of their other neighbours,
                # by the change of their edge to the moved vertex (y went from bs to px)
                for w in (x, y):
                    if w < 0:
                        continue
                    was = px if w == x else bs
                    now = pos[w]
                    for q in range(indptr[w], indptr[w + 1]):
                        u = nbr[q]
                        if u in (x, y):
                            continue
                        pu = pos[u]
                        e0 = max(0, abs(sx[was] - sx[pu]) + abs(sy[was] - sy[pu]) - hops)
                        e1 = max(0, abs(sx[now] - sx[pu]) + abs(sy[now] - sy[pu]) - hops)
                        if e1 != e0:
                            uexc[u] += e1 - e0
                            exc[u] += wq[rev[q]] * (e1 - e0)
                    c = 0
                    cw = 0
                    for q in range(indptr[w], indptr[w + 1]):
                        p = pos[nbr[q]]
                        e = max(0, abs(sx[now] - sx[p]) + abs(sy[now] - sy[p]) - hops)
                        c += e
                        cw += wq[q] * e
                    uexc[w] = c
                    exc[w] = cw
                total = 0
                for v in range(n):
                    total += uexc[v]
                st[R_TOTAL] = total // 2
        if st[R_TOTAL] < st[R_BEST]:
            st[R_BEST] = st[R_TOTAL]
            for v in range(n):
                best[v] = pos[v] if uexc[v] == 0 else -1
        if st[R_TOTAL] == 0:
            st[R_FOUND] = 1
            for v in range(n):
                best[v] = pos[v]


def _compiled_kernel() -> Callable[..., None]:
    """The kernel compiled by numba (cached on disk; loaded once per process)."""
    return native.compiled(_kernel)


def _use_compiled(compiled: bool | None) -> bool:
    return compiled_default() if compiled is None else compiled


_warmed = False


def warm() -> None:
    """Load the compiled kernel once per process, before any clock starts.

    numba reads its disk cache at the first call; nothing happens for the reference
    (``ISOSCHED_CP=py``).
    """
    global _warmed
    if _warmed or not compiled_default():
        return
    _warmed = True
    indptr = np.array([0, 1, 2], dtype=np.int64)
    nbr = np.array([1, 0], dtype=np.int64)
    st, bufs = _state(2, 0, RUN_BASE, indptr, nbr)
    xy = np.array([0, 1], dtype=np.int64)
    zero = np.zeros(2, dtype=np.int64)
    _compiled_kernel()(indptr, nbr, xy, zero, excess_table(xy, zero, 1), 1, st, *bufs, 2)


@dataclass(frozen=True, slots=True)
class RepairOutcome:
    """What a repair search ended with.

    Attributes
    ----------
    tiles : tuple of int or None
        Tile index per pattern vertex, when a placement was found.
    partial : tuple of int
        The lowest-excess placement seen, restricted to vertices with no stretched edge (``-1``
        for the others): a valid partial placement.
    stop : str
        ``found``, ``budget`` or ``cancelled``.
    steps, runs : int
        Steps (a run's greedy start counts as one) and runs.
    excess : int
        Least total excess seen (hops beyond the bound, summed over the edges).
    wall_limited : bool
        The wall clock, not the step budget, ended it.
    """

    tiles: tuple[int, ...] | None
    partial: tuple[int, ...]
    stop: str
    steps: int
    runs: int
    excess: int
    wall_limited: bool = False


def _state(
    m: int, seed: int, base: int, indptr: IntArray, nbr: IntArray, rev: IntArray | None = None
) -> tuple[IntArray, tuple[IntArray, ...]]:
    """The kernel's state and buffers for a pattern (CSR ``indptr``, ``nbr``) on ``m`` tiles.

    ``rev`` (:func:`_reverse` of the CSR, which the kernel only reads) is computed when not given.
    """
    n = indptr.size - 1
    st = np.zeros(R_SIZE, dtype=np.int64)
    st[R_SEED] = seed
    st[R_BASE] = base
    st[R_BEST] = np.iinfo(np.int64).max
    st[R_NOISE] = NOISE_PER_MILLE
    st[R_TABU] = TABU
    st[R_WEIGHT] = WEIGHT_STEP
    bufs = (
        np.full(n, -1, dtype=np.int64),  # pos
        np.full(m, -1, dtype=np.int64),  # occ
        np.zeros(n, dtype=np.int64),  # exc
        np.full(m, -1, dtype=np.int64),  # taboo_v
        np.zeros(m, dtype=np.int64),  # taboo_until
        np.full(n, -1, dtype=np.int64),  # best
        np.zeros(max(n, m), dtype=np.int64),  # order
        np.full(n, -1, dtype=np.int64),  # start
        np.zeros(m, dtype=np.int64),  # acc
        np.zeros(n, dtype=np.int64),  # mark
        np.ones(nbr.size, dtype=np.int64),  # wq
        _reverse(indptr, nbr) if rev is None else rev,  # rev
        np.zeros(n, dtype=np.int64),  # uexc
    )
    return st, bufs


def start_slots(start: Sequence[int], slot_of: IntArray, n: int) -> IntArray:
    """Slot per vertex of a start (tile per vertex, ``-1``: none), ``-1`` where it is ignored.

    A tile that is not usable (``slot_of`` is ``-1`` or out of range) is ignored, and so is a
    tile that an earlier vertex took; vertices beyond ``start``'s length have none, and entries
    beyond ``n`` are ignored.
    """
    first = np.full(n, -1, dtype=np.int64)
    given = np.asarray(start, dtype=np.int64)[:n]
    first[: given.size] = given
    slot = np.full(n, -1, dtype=np.int64)
    on = (first >= 0) & (first < slot_of.size)
    slot[on] = slot_of[first[on]]
    kept = np.flatnonzero(slot >= 0)
    _, once = np.unique(slot[kept], return_index=True)  # a tile's first vertex keeps it
    out = np.full(n, -1, dtype=np.int64)
    out[kept[once]] = slot[kept[once]]
    return out


def _reverse(indptr: IntArray, nbr: IntArray) -> IntArray:
    """``rev[q]``: the position of entry ``q``'s edge in its other end's neighbour list."""
    n = indptr.size - 1
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    key = src * n + nbr
    order = np.argsort(key, kind="stable")
    return order[np.searchsorted(key[order], nbr * n + src)].astype(np.int64)


def excess_table(sx: IntArray, sy: IntArray, hops: int) -> IntArray:
    """Hops beyond ``hops`` between every two slots at ``(sx, sy)`` (slots × slots, int64)."""
    d = np.abs(sx[:, None] - sx[None, :]) + np.abs(sy[:, None] - sy[None, :])
    out: IntArray = np.maximum(d - hops, 0).astype(np.int64)
    return out


@functools.lru_cache(maxsize=8)
def _chip_excess(width: int, height: int, hops: int) -> IntArray:
    """:func:`excess_table` of every tile of a chip (read-only; kept per chip and bound)."""
    tiles = np.arange(width * height, dtype=np.int64)
    out = excess_table(tiles % width, tiles // width, hops)
    out.setflags(write=False)
    return out


def pattern_csr(pattern: TileGraph) -> tuple[IntArray, IntArray]:
    """Undirected CSR of the pattern (no self loops, no repeated neighbours)."""
    indptr, indices = pattern.undirected_csr()
    return np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class RepairModel:
    """Static arrays of one pattern/target pair; searches only read them.

    Attributes
    ----------
    indptr, nbr, rev : ndarray of int64
        The pattern's undirected CSR and each entry's twin (:func:`_reverse`).
    slots : ndarray of int64
        The usable tiles, in index order (a slot is a position in it).
    sx, sy : ndarray of int64
        Each slot's coordinates.
    slot_of : ndarray of int64
        Each tile's slot (``-1``: not usable).
    dex : ndarray of int64, shape (slots, slots) or (0, 0)
        Hops beyond the target's bound between two slots (``max(0, XY distance - hops)``), which
        the kernel reads an edge's excess from; empty above :data:`TABLE_SLOTS` slots (the kernel
        then computes it).
    hops : int
        The target's bound.
    """

    indptr: IntArray
    nbr: IntArray
    rev: IntArray
    slots: IntArray
    sx: IntArray
    sy: IntArray
    slot_of: IntArray
    dex: IntArray
    hops: int

    @classmethod
    def of(cls, pattern: TileGraph, target: ChipTarget) -> RepairModel:
        """The arrays of ``pattern`` on ``target`` (the matcher keeps one per pair)."""
        slots = np.flatnonzero(target.allowed).astype(np.int64)
        slot_of = np.full(target.size, -1, dtype=np.int64)
        slot_of[slots] = np.arange(slots.size)
        indptr, nbr = pattern_csr(pattern)
        sx, sy = slots % target.width, slots // target.width
        if slots.size > TABLE_SLOTS:
            dex = np.zeros((0, 0), dtype=np.int64)  # the kernel computes the excess
        elif target.size <= TABLE_SLOTS:  # rows and columns of the chip's table: cheaper
            chip = _chip_excess(target.width, target.height, target.hops)
            dex = chip.take(slots, axis=0).take(slots, axis=1)
        else:
            dex = excess_table(sx, sy, target.hops)
        return cls(
            indptr,
            nbr,
            _reverse(indptr, nbr),
            slots,
            sx,
            sy,
            slot_of,
            dex,
            target.hops,
        )


def repair_search(
    pattern: TileGraph,
    target: ChipTarget,
    deadline: float,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    cancel: Callable[[], bool] | None = None,
    compiled: bool | None = None,
    base: int = RUN_BASE,
    start: Sequence[int] | None = None,
    model: RepairModel | None = None,
) -> RepairOutcome:
    """Search for a placement of ``pattern`` on ``target``'s usable tiles by local repair.

    Parameters
    ----------
    pattern, target : TileGraph, ChipTarget
        What to place, and where (every allowed tile is usable; tile costs are ignored).
    deadline : float
        ``time.perf_counter()`` value after which the search stops (a safety net when
        ``max_steps`` is set; checked every :data:`SLICE` steps).
    seed : int
        Random seed (``0 <= seed < 2**31``): the same seed and steps give the same answer.
    max_steps : int, optional
        Step budget (``None``: only the deadline bounds it).
    cancel : callable, optional
        Polled between slices; true stops the search with ``cancelled``.
    compiled : bool, optional
        Force the compiled kernel or the interpreted reference (default: compiled unless
        ``ISOSCHED_CP=py``).
    base : int
        Steps of a run before the Luby factor.
    start : sequence of int, optional
        Tile per vertex (``-1``: none) that the first run keeps before its greedy start: e.g.
        the deepest partial placement of a complete search. Tiles that are not usable, or
        taken twice, are ignored.
    model : RepairModel, optional
        ``RepairModel.of(pattern, target)``, when the caller keeps it for several searches.

    Raises
    ------
    ValueError
        On a seed out of range, or a ``model`` built for another target (bound, chip or usable
        tiles) or another number of pattern vertices.
    """
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must be in [0, 2**31), got {seed}")
    n = len(pattern)
    if model is None:
        model = RepairModel.of(pattern, target)
    elif (
        model.hops != target.hops
        or model.slot_of.size != target.size
        or model.indptr.size != n + 1
        or not np.array_equal(model.slots, np.flatnonzero(target.allowed))
        or not np.array_equal(model.sx, model.slots % target.width)
    ):
        raise ValueError("the repair model was built for another target or pattern")
    if n == 0 or n > model.slots.size:
        return RepairOutcome(None, (-1,) * n, "budget", 0, 0, 0)
    indptr, nbr, slots, sx, sy = model.indptr, model.nbr, model.slots, model.sx, model.sy
    st, bufs = _state(int(slots.size), seed, max(1, base), indptr, nbr, model.rev)
    if start is not None:
        bufs[7][:] = start_slots(start, model.slot_of, n)
        st[R_START] = 1
    fn: Callable[..., None] = _compiled_kernel() if _use_compiled(compiled) else _kernel
    stop = "budget"
    wall = False
    while st[R_FOUND] == 0:
        left = SLICE if max_steps is None else min(SLICE, max_steps - int(st[R_STEPS]))
        if left <= 0:
            break
        if cancel is not None and cancel():
            stop = "cancelled"
            break
        if time.perf_counter() > deadline:
            wall = True
            break
        fn(indptr, nbr, sx, sy, model.dex, target.hops, st, *bufs, left)
    best = bufs[5]
    steps, runs, excess = int(st[R_STEPS]), int(st[R_RUN]), int(st[R_BEST])
    if st[R_FOUND]:
        tiles = tuple(slots[best].tolist())
        return RepairOutcome(tiles, tiles, "found", steps, runs, 0)
    partial = tuple(np.where(best >= 0, slots[np.maximum(best, 0)], -1).tolist())
    return RepairOutcome(None, partial, stop, steps, runs, max(0, excess), wall)
