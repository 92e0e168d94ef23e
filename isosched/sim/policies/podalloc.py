"""The LTS pod policies' compiled kernels (numba).

Planaria's pod allocation over arrays (the same rules as ``allocate``), Planaria's pod sizing
and boundary walk, MoCA's share search.

They live apart from the policies' modules, which are compiled ahead of time by mypyc
(``isosched.native``): a function cannot be both.

:func:`~isosched.sim.policies.planaria.allocate` is the reference: readable, over
:class:`~isosched.sim.policies.planaria.Candidate` objects, with MoCA's admission order as a
callable. Planaria and MoCA re-divide the pods at every scheduling point among every running and
waiting job (about 80 of them at each of 90,000 points in an overloaded replay), so the
simulator runs this compiled copy: the same arithmetic in the same order (Python's ``round`` is
``np.rint``: both round half to even), the same sort keys (ties broken by the job id's rank in
the sorted ids, which orders them as the ids do) — and the tests check that both give the same
pods and order on random inputs and on whole replays.

Arrays, one entry per candidate: ``prio`` (int), ``minp`` (minimal pods, 0 for "none"),
``rem_min`` and ``rem_all`` (µs), ``slack`` (µs), ``demand`` (fraction of the bandwidth),
``rank`` (position of the job id among the sorted ids; unique).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["allocate_arrays"]


@njit(cache=True)
def _sorted(first: np.ndarray, second: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Indices sorted by (first, second, rank), each ascending (stable merges)."""
    idx = np.argsort(rank, kind="mergesort")
    idx = idx[np.argsort(second[idx], kind="mergesort")]
    return idx[np.argsort(first[idx], kind="mergesort")]


@njit(cache=True)
def _round(x: float) -> int:
    return int(np.rint(x))


@njit(cache=True)
def _give_back(
    targets: np.ndarray,
    prio: np.ndarray,
    minp: np.ndarray,
    scores: np.ndarray,
    rank: np.ndarray,
    capacity: int,
) -> None:
    """Rounding fixed: over-allocation back from the lowest priorities, leftovers to the top."""
    n = targets.shape[0]
    over = targets.sum() - capacity
    if over > 0:
        by_prio = _sorted(prio.astype(np.float64), scores, rank)
        while over > 0:
            took = False
            for c in by_prio:
                if over > 0 and targets[c] - 1 >= minp[c] and targets[c] > 0:
                    targets[c] -= 1
                    over -= 1
                    took = True
            if not took:
                zero = np.zeros(n)
                for c in _sorted(scores, zero, rank):
                    while over > 0 and targets[c] > 0:
                        targets[c] -= 1
                        over -= 1
                break
    left = capacity - targets.sum()
    if left > 0 and n > 0:
        top = prio.max()
        m = 0
        for i in range(n):
            if prio[i] == top:
                m += 1
        sel = np.empty(m, dtype=np.int64)
        m = 0
        for i in range(n):
            if prio[i] == top:
                sel[m] = i
                m += 1
        best = sel[_sorted(-scores[sel], np.zeros(m), rank[sel])]
        each = left // m
        extra = left - each * m
        for c in best:
            targets[c] += each
        targets[best[0]] += extra


@njit(cache=True)
def _memory_aware(
    pairs: np.ndarray, prio: np.ndarray, minp: np.ndarray, demand: np.ndarray, capacity: int
) -> np.ndarray:
    """MoCA's admission order (``moca.memory_aware_order``) of the score-sorted ``pairs``."""
    rest = list(pairs)
    out = np.empty(pairs.shape[0], dtype=np.int64)
    k = 0
    load = 0.0
    pods = 0
    while len(rest) > 0 and pods < capacity:
        pick = 0
        if load + demand[rest[0]] > 1.0:
            p = prio[rest[0]]
            for i in range(len(rest)):
                c = rest[i]
                if prio[c] == p and load + demand[c] <= 1.0:
                    pick = i
                    break
        c = rest.pop(pick)
        out[k] = c
        k += 1
        load += demand[c]
        pods += minp[c]
    for c in rest:
        out[k] = c
        k += 1
    return out


@njit(cache=True)
def allocate_arrays(
    prio: np.ndarray,
    minp: np.ndarray,
    rem_min: np.ndarray,
    rem_all: np.ndarray,
    slack: np.ndarray,
    demand: np.ndarray,
    rank: np.ndarray,
    capacity: int,
    memory_aware: bool,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Pods per candidate and the order they are handed out (``planaria.allocate``'s rules).

    ``memory_aware`` applies MoCA's admission order when the minima do not all fit.
    """
    n = prio.shape[0]
    targets = np.zeros(n, dtype=np.int64)
    scores = np.zeros(n)
    if n == 0:
        return targets, np.zeros(0, dtype=np.int64)
    fits = True
    need = 0
    for i in range(n):
        if minp[i] == 0:
            fits = False
        need += minp[i]
    fits = fits and need <= capacity
    zero = np.zeros(n)
    if fits:
        for i in range(n):
            targets[i] = minp[i]
            scores[i] = prio[i] / rem_min[i] if rem_min[i] > 0 else 0.0
        spare = capacity - targets.sum()
        total = 0.0
        for i in range(n):
            total += scores[i]
        ranked = _sorted(-scores, zero, rank)
        if total > 0:
            for c in ranked:
                targets[c] += _round(scores[c] / total * spare)
        _give_back(targets, prio, minp, scores, rank, capacity)
        return targets, ranked
    some = False
    for i in range(n):
        if minp[i] > 0:
            scores[i] = prio[i] / max(slack[i], 1e-9) / minp[i]
            some = True
        else:
            scores[i] = -prio[i] / max(rem_all[i], 1.0)
    ranked = _sorted(-scores, zero, rank)
    if some:
        pairs = _memory_aware(ranked, prio, minp, demand, capacity) if memory_aware else ranked
        avail = capacity
        for c in pairs:
            give = minp[c] if avail >= minp[c] else avail
            targets[c] = give
            avail -= give
        spare = capacity - targets.sum()
        positive = 0.0
        for i in range(n):
            if scores[i] >= 0:
                positive += scores[i]
        if spare > 0 and positive > 0:
            for c in pairs:
                if scores[c] >= 0:
                    targets[c] += _round(scores[c] / positive * spare)
        _give_back(targets, prio, minp, scores, rank, capacity)
        return targets, pairs
    worst_first = _sorted(scores, zero, rank)
    s = 0.0
    for c in worst_first:
        s += scores[c]
    total = abs(s)
    if total == 0:
        total = 1.0
    avail = capacity
    for c in worst_first:
        give = min(_round(abs(scores[c]) / total * capacity), avail)
        targets[c] = give
        avail -= give
    return targets, worst_first


@njit(cache=True)
def _time_to_cycles(
    arr: np.ndarray, piece: int, left: float, todo: float, bw: float, share: float
) -> float:  # pragma: no cover - compiled
    """:func:`time_to_us`'s walk over the pieces, in cycles (the same operations in order)."""
    cycles = 0.0
    for i in range(piece, arr.shape[1]):
        full = arr[2, i]
        if full <= 0:
            left = 1.0
            continue
        now_c = max(arr[0, i], arr[1, i] / (bw * share))
        if todo <= left * full + 1e-12:
            cycles += todo / full * now_c
            break
        cycles += left * now_c
        todo -= left * full
        left = 1.0
    return cycles


@njit(cache=True)
def _min_pods(
    table: np.ndarray, row: np.ndarray, left: np.ndarray, slack: np.ndarray, slack_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """:meth:`Planaria._candidate`'s binary search for many jobs (0 pods: even all are too slow).

    ``table[row[i]]`` is job i's latency on 1..npods pods, µs; ``left`` its remaining fraction
    and ``slack`` its time to the deadline, µs. Returns the minimal pods, the remaining time on
    them and on every pod (µs), and the profiles each search looked up.
    """
    n = left.shape[0]
    npods = table.shape[1]
    pods = np.zeros(n, dtype=np.int64)
    rem_min = np.full(n, np.inf)
    rem_all = np.empty(n)
    looked = np.ones(n, dtype=np.int64)
    for i in range(n):
        lat = table[row[i]]
        budget = slack_share * slack[i]
        ra = left[i] * lat[npods - 1]
        rem_all[i] = ra
        if ra > budget:
            continue
        lo = 1
        hi = npods
        rh = ra
        k = 1
        while lo < hi:
            mid = (lo + hi) // 2
            r = left[i] * lat[mid - 1]
            k += 1
            if r <= budget:
                hi = mid
                rh = r
            else:
                lo = mid + 1
        pods[i] = hi
        rem_min[i] = rh
        looked[i] = k
    return pods, rem_min, rem_all, looked


@njit(cache=True)
def _need_share(
    arr: np.ndarray, piece: int, piece_left: float, budget: float, bw: float
) -> float:  # pragma: no cover - compiled
    """:func:`need_share`'s search in plain Python, compiled (-1: no share does)."""
    m = arr.shape[1] - piece
    t = np.empty(m)
    c = np.empty(m)
    b = np.empty(m)
    for k in range(m):
        ck = arr[0, piece + k]
        bk = arr[1, piece + k]
        if k == 0:
            ck = ck * piece_left
            bk = bk * piece_left
        c[k] = ck
        b[k] = bk
        if ck > 0:
            t[k] = bk / (bw * ck)
        elif bk > 0:
            t[k] = np.inf
        else:
            t[k] = 0.0
    # Sort (t, c, b) lexicographically, as Python sorts the tuples (insertion sort: m is small).
    for k in range(1, m):
        tk, ck, bk = t[k], c[k], b[k]
        j = k - 1
        while j >= 0 and (t[j] > tk or (t[j] == tk and (c[j] > ck or (c[j] == ck and b[j] > bk)))):
            t[j + 1], c[j + 1], b[j + 1] = t[j], c[j], b[j]
            j -= 1
        t[j + 1], c[j + 1], b[j + 1] = tk, ck, bk
    compute = 0.0
    moved = 0.0
    for k in range(m):
        moved += b[k]
    lo = 0.0
    for k in range(m + 1):
        hi = t[k] if k < m else np.inf
        room = budget - compute
        if room > 0:
            share = moved / (bw * room) if moved > 0 else 0.0
            share = max(lo, share)
            if share < hi or k == m:
                return share if share <= 1.0 + 1e-12 else -1.0
        if k < m:
            compute += c[k]
            moved -= b[k]
        lo = hi
    return -1.0
