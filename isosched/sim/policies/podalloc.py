"""Planaria's pod allocation over arrays, compiled (numba): the same rules as ``allocate``.

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
