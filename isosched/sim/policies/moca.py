"""MoCA (Kim et al., HPCA 2023): memory-centric adaptive execution for multi-tenant DNNs.

Layer-temporal on pods of the chip, divided among the jobs by priority and latency target as in
Planaria (:mod:`~isosched.sim.policies.planaria`: minimal pods by deadline, spare pods by score,
jobs resized and preempted at layer boundaries), plus MoCA's two memory-side mechanisms
(ucb-bar/MoCA README; reference/isosched_paper.md §7.4):

* **Memory-aware co-location** (MoCA's scheduler). When the jobs' minimal pods do not all fit,
  the jobs that get them are chosen in descending score, but among jobs of the same priority one
  whose DRAM demand still fits the bandwidth left by those already admitted goes before one that
  would oversubscribe it: a compute-bound job is co-located with memory-bound ones in preference
  to another memory-bound job (:func:`memory_aware_order`).
* **Bandwidth throttling** (MoCA's runtime and per-tile access-rate limiter). Every running job
  has a dynamic score, ``priority × predicted latency / latency target``; the prediction is the
  time since release plus the remaining work at its current rate, so a throttled job's score
  rises. Contention is declared when the jobs' demands (each the fraction of the bandwidth it
  would use alone) add up to more than the bandwidth; the engine then splits the bandwidth in
  proportion to demand. A job that would miss its latency target on that split, but would meet
  it with more bandwidth, is given the share it needs, taken from jobs of lower score, highest
  score first; a job gives up bandwidth only down to what it needs itself and never below
  ``KEEP_SHARE`` of its split (co-runners are throttled, not starved)
  (:func:`bandwidth_shares`). Without contention, or when nobody is at risk, nobody is
  throttled. The shares are handed to the engine as weights (share = demand × weight / Σ),
  recomputed at every scheduling point and, while a job is throttled, whenever a running job
  ends its current piece (a prefetch window of layers: its demand changes there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.planaria import Candidate, Order, Planaria, piece_arrays, time_to_us
from isosched.sim.policies.podalloc import _need_share

__all__ = [
    "KEEP_SHARE",
    "THROTTLE",
    "Moca",
    "bandwidth_shares",
    "memory_aware_order",
    "need_share",
]

#: Throttle DRAM bandwidth for jobs at risk (False: the engine's demand split only). Tuned with
#: ``bench/tune.py`` on ad_urban at ×4, ×6, ×8, ×10: equal up to ×8; at ×10 0.738 vs 0.693.
THROTTLE = True

#: A throttled job keeps at least this share of its demand-proportional bandwidth (same sweep:
#: 0.0: 0.723, 0.25: 0.738, 0.5: 0.734 at ×10).
KEEP_SHARE = 0.25


def bandwidth_shares(
    demands: Sequence[float],
    needs: Sequence[float | None],
    scores: Sequence[float],
    fixed: int = 0,
) -> list[float]:
    """MoCA's bandwidth allocation under contention, as shares of the bandwidth.

    Parameters
    ----------
    demands : sequence of float
        Fraction of the bandwidth each job would use alone.
    needs : sequence of float or None
        Smallest share on which each job meets its latency target (None: no share does; such
        a job is not raised and gives down to its floor).
    scores : sequence of float
        Dynamic scores (higher first).
    fixed : int
        Further jobs demanding all of the bandwidth that are neither throttled nor boosted
        (checkpointing); they count in the split only.

    Returns
    -------
    list of float
        Each job's share: the demand-proportional split, with at-risk jobs (need above their
        split) raised to their need, highest score first, by taking from jobs of lower score,
        lowest first, each down to the larger of its own need and ``KEEP_SHARE`` of its split;
        a job that cannot be raised that far is left as it is.
    """
    total = sum(demands) + fixed
    base = [d / total if total > 0 else 0.0 for d in demands]
    share = list(base)
    floor = [max(n or 0.0, KEEP_SHARE * b) for n, b in zip(needs, base, strict=True)]
    n = len(demands)
    at_risk = sorted(
        (i for i in range(n) if needs[i] is not None and (needs[i] or 0.0) > share[i] + 1e-12),
        key=lambda i: (-scores[i], i),
    )
    raised: set[int] = set()
    for i in at_risk:
        extra = (needs[i] or 0.0) - share[i]
        donors = sorted(
            (j for j in range(n) if j not in raised and j != i and scores[j] < scores[i]),
            key=lambda j: (scores[j], j),
        )
        if sum(max(0.0, share[j] - floor[j]) for j in donors) < extra - 1e-12:
            continue
        for j in donors:
            give = min(extra, max(0.0, share[j] - floor[j]))
            share[j] -= give
            share[i] += give
            extra -= give
            if extra <= 1e-12:
                break
        raised.add(i)
    return share


def memory_aware_order(
    pairs: list[tuple[Candidate, float]], capacity: int
) -> list[tuple[Candidate, float]]:
    """Re-order score-sorted candidates for admission (MoCA's memory-aware co-location).

    Repeatedly take the highest-scored candidate left, unless it would push the admitted jobs'
    DRAM demand past the bandwidth while a candidate of the same priority would not: then take
    the best such one instead. Once the admitted minima fill ``capacity`` pods the rest keep
    their order (they get no pods).
    """
    rest = list(pairs)
    out: list[tuple[Candidate, float]] = []
    load = 0.0
    pods = 0
    while rest and pods < capacity:
        pick = 0
        if load + rest[0][0].demand > 1.0:
            prio = rest[0][0].priority
            for i, (c, _) in enumerate(rest):
                if c.priority == prio and load + c.demand <= 1.0:
                    pick = i
                    break
        c, s = rest.pop(pick)
        out.append((c, s))
        load += c.demand
        pods += c.min_pods or 0
    return out + rest


def piece_demand(js: JobState, sim: Simulator) -> float:
    """Share of the bandwidth a running job's current piece would use alone (synced)."""
    if js.piece >= len(js.pieces):
        return 0.0
    c, b = js.pieces[js.piece]
    bw = sim.dram_bytes_per_cycle
    t = max(c, b / bw)
    return (b / bw) / t if t > 0 else 0.0


def need_share(sim: Simulator, js: JobState, compiled: bool = True) -> float | None:
    """:meth:`Moca.need` without its charge.

    ``compiled=False`` searches in plain Python: the reference the tests compare with.
    """
    end_us = js.job.deadline_us - max(float(sim.now), js.progress_from_us)
    if js.piece >= len(js.pieces):
        return 0.0
    if end_us <= 0:
        return None
    budget = end_us / sim.cycles_to_us(1.0)  # cycles
    bw = sim.dram_bytes_per_cycle
    if compiled:
        arr, _ = piece_arrays(js.pieces, bw)
        share = _need_share(arr, js.piece, js.piece_left, budget, bw)
        return None if share < 0.0 else share
    c0, b0 = js.pieces[js.piece]
    rest = [(c0 * js.piece_left, b0 * js.piece_left), *js.pieces[js.piece + 1 :]]
    turn = sorted((b / (bw * c) if c > 0 else (math.inf if b > 0 else 0.0), c, b) for c, b in rest)
    compute = 0.0  # cycles of the pieces already compute-bound
    moved = sum(b for _, _, b in turn)  # bytes of the others
    lo = 0.0
    for k in range(len(turn) + 1):
        hi = turn[k][0] if k < len(turn) else math.inf
        room = budget - compute
        if room > 0:
            share = max(lo, moved / (bw * room) if moved > 0 else 0.0)
            if share < hi or k == len(turn):
                return share if share <= 1.0 + 1e-12 else None
        if k < len(turn):
            compute += turn[k][1]
            moved -= turn[k][2]
        lo = hi
    return None


class Moca(Planaria):
    """Planaria's pods with memory-aware admission and DRAM bandwidth throttling."""

    name = "moca"
    kind = "lts"
    needs_demand = True

    def order(self, sim: Simulator) -> Order | None:
        """Memory-aware admission when the minima do not all fit."""
        return memory_aware_order

    def compiled_order(self) -> bool | None:
        """The compiled allocation applies the memory-aware order (:meth:`order`)."""
        return True if type(self).order is Moca.order else None

    def score(self, sim: Simulator, js: JobState) -> float:
        """Dynamic score: priority × predicted latency / latency target (module docstring)."""
        left = time_to_us(js, sim, 1.0)
        target = max(js.job.deadline_us - js.job.release_us, 1.0)
        return js.job.priority * (sim.now - js.job.release_us + left) / target

    def need(self, sim: Simulator, js: JobState) -> float | None:
        """Smallest share of the bandwidth on which ``js`` meets its deadline (None: none).

        Its remaining time at share ``s`` is ``Σ max(cycles, bytes / (bandwidth × s))`` over
        the rest of its pieces: between two consecutive turning points (the shares at which
        pieces become compute-bound) it is ``C + B / (bandwidth × s)``, solved for ``s``
        (compiled; :func:`need_share` with ``compiled=False`` is the same in plain Python).
        """
        sim.charge(lookups=1)
        return need_share(sim, js)

    def schedule(self, sim: Simulator) -> None:
        """Divide the pods as Planaria, then throttle DRAM bandwidth (module docstring)."""
        super().schedule(sim)
        if THROTTLE:
            self.throttle(sim)

    def throttle(self, sim: Simulator) -> None:
        """Set every running job's DRAM weight so that the engine's split is MoCA's.

        While some job is throttled, the runtime looks again when the next running job ends its
        current piece (prefetch window of layers), where demands change.
        """
        jobs: list[JobState] = []
        demands: list[float] = []
        moving: list[bool] = []
        fixed = 0
        for js in sim.holding():
            if js.state == "checkpointing":
                fixed += 1
                sim.set_dram_weight(js, 1.0)
            elif js.state == "running" and js.pieces:
                # As the engine counts it: a resumed job moving state or weights wants it all.
                mv = js.progress_from_us > sim.now and js.preemptions > 0
                jobs.append(js)
                moving.append(mv)
                demands.append(1.0 if mv else piece_demand(js, sim))
        total = sum(demands) + fixed
        fractions = [d / total for d in demands] if total > 0 else demands
        if total <= 1.0:
            shares = demands  # no contention: every job gets what it demands
        else:
            # A job moving its state back in keeps its split: it needs all of it, gives nothing.
            needs = [
                f if mv else self.need(sim, j)
                for j, mv, f in zip(jobs, moving, fractions, strict=True)
            ]
            scores = [self.score(sim, js) for js in jobs]
            fractions = bandwidth_shares(demands, needs, scores, fixed)
            shares = [f * total for f in fractions]  # weights relative to the demand split
        throttled = False
        for js, d, s in zip(jobs, demands, shares, strict=True):
            w = s / d if d > 0 else 1.0
            throttled = throttled or abs(w - 1.0) > 1e-9
            sim.set_dram_weight(js, w)
        if throttled:
            ends = [self._piece_end_us(sim, js, f) for js, f in zip(jobs, fractions, strict=True)]
            self._wake(sim, min(ends))

    def _piece_end_us(self, sim: Simulator, js: JobState, share: float) -> float:
        """When ``js`` ends its current piece at ``share`` of the bandwidth, µs."""
        if js.piece >= len(js.pieces):
            return math.inf
        c, b = js.pieces[js.piece]
        cycles = js.piece_left * max(c, b / (sim.dram_bytes_per_cycle * max(share, 1e-9)))
        return max(float(sim.now), js.progress_from_us) + sim.cycles_to_us(cycles)
