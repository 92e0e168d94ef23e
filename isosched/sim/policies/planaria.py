"""Planaria (Ghodrati et al., MICRO 2020): dynamic architecture fission for multi-DNN inference.

Layer-temporal execution on a fissionable array. The chip is split into ``PODS`` equal pods
(Planaria's 16 subarrays; a pod is the smallest budget box holding at least 1/16 of the chip),
and a job runs on any number of whole pods. At every scheduling point (a release, a finish, a
checkpoint ending, a job reaching a layer boundary it was waiting for) the policy re-divides the
pods among the running and waiting jobs as the official artifact's scheduler does
(he-actlab/planaria.code, ``scheduler.py``; reference/isosched_paper.md §7.2):

1. **Minimal pods.** A job's minimum is the fewest pods on which its remaining work, priced
   with the pods' share of DRAM bandwidth (the artifact's per-subarray-count profiles), fits in
   ``SLACK_SHARE`` of the time to its deadline (the artifact uses all of it; a margin, tuned
   like every policy's constants, pays because bandwidth here is shared and a job's real speed
   varies with its co-runners, and because small partitions spill activations to DRAM).
2. **All minima fit:** every job gets its minimum, and the spare pods go to the jobs in
   proportion to ``priority / remaining time on the minimum`` (rounded; leftovers to the
   highest-priority jobs, over-allocation taken back from the lowest-priority jobs that stay
   above their minimum). A lone job gets the whole chip.
3. **They do not fit:** jobs that can still meet their deadline score
   ``priority / (slack × minimum)``, the others ``−priority / remaining time on the whole
   chip``; in descending score each gets its minimum while pods remain (the next one what is
   left), spare pods go in proportion to the positive scores; if no job can meet its deadline,
   pods go in proportion to ``|score|``.
4. **Fission and re-fusion** happen at layer boundaries: a running job whose share changes
   keeps running until its next layer boundary (a wake-up is set there), then shrinks — moving
   the live activations off the pods it gives up over the NoC — or grows onto free pods
   (:meth:`Simulator.resize`). A running job left without pods is preempted there: it
   checkpoints the activations it holds on-chip and restores them when it resumes. A waiting job
   starts once the free pods reach the smaller of its target and its minimum, and grows later.

Layer boundaries are the model's compute steps (a MAC layer and its epilogue) spread evenly over
the inference: the engine's progress is fluid, and its pieces are prefetch windows of several
layers, so the step count places ``len(steps)`` boundaries at equal fractions of the work.
Every profile looked up (cached by the plan book per model, tile count and share) and every pod
tested is charged as a lookup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import Shape, rect_positions, shapes
from isosched.sim.policies.podalloc import _min_pods, _time_to_cycles, allocate_arrays

__all__ = [
    "BOUNDARY_TOL_US",
    "ESTIMATED_SHARE",
    "PODS",
    "SLACK_SHARE",
    "Candidate",
    "Planaria",
    "allocate",
    "pod_shape",
]

#: Pods of the fissionable array (Planaria's 16 subarrays; fewer on chips too small for 16).
PODS = 16

#: A job's minimum is the fewest pods on which it finishes within this share of the time to its
#: deadline. 1.0 is the artifact's rule (no margin); tuned with ``bench/tune.py`` on ad_urban at
#: ×4, ×6, ×8 (mean satisfaction 0.25: 1.000, 0.5: 0.960, 0.75: 0.959, 1.0: 0.935).
SLACK_SHARE = 0.25

#: Price a job's remaining time on k pods at the DRAM share it would get beside the jobs using
#: DRAM now (``Simulator.estimate_us``, as IsoSched predicts); False: at the pods' share of the
#: bandwidth (the artifact's per-subarray-count profiles).
ESTIMATED_SHARE = False

#: Tests only: called instead of ``Planaria._division`` at every scheduling point (the same
#: arguments, the same answer expected), so the compiled division can be checked in whole
#: replays on a compiled module (whose methods cannot be patched).
DIVISION_HOOK: Callable[..., tuple[list[int], list[int], list[int]]] | None = None

#: A job this close past a layer boundary (µs of its work) is at it (event times are whole µs).
BOUNDARY_TOL_US = 1.0


class Candidate(NamedTuple):
    """A job competing for pods at one scheduling point.

    A named tuple: one is built per job at every scheduling point, so it must be cheap to make.

    Attributes
    ----------
    id : str
        Job id.
    priority : int
        User priority (higher is more important).
    min_pods : int or None
        Fewest pods on which it meets its deadline; None if even the whole chip is too slow.
    rem_min_us : float
        Remaining time on ``min_pods`` (inf when None), µs.
    rem_all_us : float
        Remaining time on every pod, µs.
    slack_us : float
        Time to its deadline, µs.
    demand : float
        Fraction of the DRAM bandwidth it would use alone on ``min_pods`` (MoCA's admission).
    """

    id: str
    priority: int
    min_pods: int | None
    rem_min_us: float
    rem_all_us: float
    slack_us: float
    demand: float = 0.0


#: Order in which the not-fit case hands out minima, from the candidates sorted by score
#: (descending) and the pods to divide.
Order = Callable[[list[tuple[Candidate, float]], int], list[tuple[Candidate, float]]]


def _give_back(
    targets: dict[str, int], cands: Sequence[Candidate], scores: dict[str, float], capacity: int
) -> None:
    """Fix rounding: over-allocation back from the lowest priorities, leftovers to the highest."""
    over = sum(targets.values()) - capacity
    by_prio = sorted(cands, key=lambda c: (c.priority, scores[c.id], c.id)) if over > 0 else []
    while over > 0:
        took = False
        for c in by_prio:
            floor = c.min_pods or 0
            if over > 0 and targets[c.id] - 1 >= floor and targets[c.id] > 0:
                targets[c.id] -= 1
                over -= 1
                took = True
        if not took:  # nobody can give without dropping below its minimum: lowest score gives
            for c in sorted(cands, key=lambda c: (scores[c.id], c.id)):
                while over > 0 and targets[c.id] > 0:
                    targets[c.id] -= 1
                    over -= 1
            break
    left = capacity - sum(targets.values())
    if left > 0 and cands:
        top = max(c.priority for c in cands)
        best = sorted((c for c in cands if c.priority == top), key=lambda c: (-scores[c.id], c.id))
        each, extra = divmod(left, len(best))
        for c in best:
            targets[c.id] += each
        targets[best[0].id] += extra  # the artifact draws this one at random


def allocate(
    cands: Sequence[Candidate], capacity: int, order: Order | None = None
) -> tuple[dict[str, int], list[str]]:
    """Pods per job by the Planaria artifact's rules (module docstring, steps 2 and 3).

    Parameters
    ----------
    cands : sequence of Candidate
        Running and waiting jobs.
    capacity : int
        Pods to divide.
    order : callable, optional
        Re-orders the score-sorted candidates before minima are handed out when they do not
        all fit (MoCA's memory-aware admission); default: descending score.

    Returns
    -------
    (dict, list)
        Pods per job id (summing to ``capacity`` when there are candidates), and the job ids in
        the order their pods should be handed out (descending score).
    """
    if not cands:
        return {}, []
    scores: dict[str, float] = {}
    targets = dict.fromkeys((c.id for c in cands), 0)
    fits = all(c.min_pods is not None for c in cands) and (
        sum(c.min_pods or 0 for c in cands) <= capacity
    )
    if fits:
        for c in cands:
            assert c.min_pods is not None
            targets[c.id] = c.min_pods
            scores[c.id] = c.priority / c.rem_min_us if c.rem_min_us > 0 else 0.0
        spare = capacity - sum(targets.values())
        total = sum(scores.values())
        ranked = sorted(cands, key=lambda c: (-scores[c.id], c.id))
        if total > 0:
            for c in ranked:
                targets[c.id] += round(scores[c.id] / total * spare)
        _give_back(targets, cands, scores, capacity)
        return targets, [c.id for c in ranked]
    for c in cands:
        if c.min_pods is not None:
            scores[c.id] = c.priority / max(c.slack_us, 1e-9) / c.min_pods
        else:
            scores[c.id] = -c.priority / max(c.rem_all_us, 1.0)
    ranked_pairs = sorted(((c, scores[c.id]) for c in cands), key=lambda p: (-p[1], p[0].id))
    if any(c.min_pods is not None for c in cands):
        pairs = order(ranked_pairs, capacity) if order is not None else ranked_pairs
        avail = capacity
        for c, _ in pairs:
            need = c.min_pods or 0
            give = need if avail >= need else avail
            targets[c.id] = give
            avail -= give
        spare = capacity - sum(targets.values())
        positive = sum(s for s in scores.values() if s >= 0)
        if spare > 0 and positive > 0:
            for c, s in pairs:
                if s >= 0:
                    targets[c.id] += round(s / positive * spare)
        _give_back(targets, cands, scores, capacity)
        return targets, [c.id for c, _ in pairs]
    # No job can meet its deadline: pods in proportion to |score|, most negative first.
    worst_first = sorted(ranked_pairs, key=lambda p: (p[1], p[0].id))
    total = abs(sum(s for _, s in worst_first)) or 1.0
    avail = capacity
    for c, s in worst_first:
        give = min(round(abs(s) / total * capacity), avail)
        targets[c.id] = give
        avail -= give
    return targets, [c.id for c, _ in worst_first]


@lru_cache(maxsize=64)
def _pod_shape(budgets: tuple[Shape, ...], tiles: int, pods: int) -> Shape:
    fit = [s for s in budgets if s[0] * s[1] * pods >= tiles]
    return fit[-1] if fit else budgets[0]


def pod_shape(sim: Simulator) -> Shape:
    """The pod: the smallest budget box of which at most ``PODS`` tile the chip."""
    return _pod_shape(tuple(shapes(sim)), sim.hw.tiles, PODS)


def done_now(js: JobState) -> float:
    """Fraction of its inference a job has completed (``Simulator.sync`` it first if running)."""
    return 1.0 - js.remaining


#: Per pieces tuple (by identity; the tuple is kept alive in the value): its cycles, DRAM bytes
#: and full-bandwidth cycles as rows of one array, and the sum of the last (sequential).
_ARRAYS: dict[int, tuple[tuple[tuple[float, float], ...], float, np.ndarray, float]] = {}


def piece_arrays(pieces: tuple[tuple[float, float], ...], bw: float) -> tuple[np.ndarray, float]:
    """``[cycles, bytes, max(cycles, bytes / bw)]`` per piece (3 × n) and the last row's sum."""
    got = _ARRAYS.get(id(pieces))
    if got is None or got[0] is not pieces or got[1] != bw:
        if len(_ARRAYS) > 65536:
            _ARRAYS.clear()
        full = [max(c, b / bw) for c, b in pieces]
        arr = np.array(
            [[c for c, _ in pieces], [b for _, b in pieces], full], dtype=np.float64
        ).reshape(3, len(pieces))
        got = _ARRAYS[id(pieces)] = (pieces, bw, arr, sum(full))
    return got[2], got[3]


def time_to_us(js: JobState, sim: Simulator, done: float, compiled: bool = True) -> float:
    """Time a running job needs, at its current DRAM share, to reach ``done`` of its inference.

    Progress is measured in full-bandwidth time (the engine's ``remaining``); the job's pieces
    run at ``max(cycles, bytes / (bandwidth × share))``. ``js`` must be synced.
    ``compiled=False`` walks the pieces in plain Python: the reference the tests compare with.
    """
    if not js.pieces:
        return max(0.0, done - done_now(js)) * js.latency_us
    bw = sim.dram_bytes_per_cycle
    share = max(js.dram_share, 1e-9)
    if compiled:
        arr, total = piece_arrays(js.pieces, bw)
        todo = max(0.0, done - done_now(js)) * total
        return sim.cycles_to_us(_time_to_cycles(arr, js.piece, js.piece_left, todo, bw, share))
    full = [max(c, b / bw) for c, b in js.pieces]
    todo = max(0.0, done - done_now(js)) * sum(full)
    cycles = 0.0
    left = js.piece_left
    for i in range(js.piece, len(js.pieces)):
        c, b = js.pieces[i]
        if full[i] <= 0:
            left = 1.0
            continue
        now_c = max(c, b / (bw * share))
        if todo <= left * full[i] + 1e-12:
            cycles += todo / full[i] * now_c
            break
        cycles += left * now_c
        todo -= left * full[i]
        left = 1.0
    return sim.cycles_to_us(cycles)


class Planaria:
    """Pods re-divided at every scheduling point; jobs grow, shrink and yield at layer bounds."""

    name = "planaria"
    kind = "lts"

    #: Whether candidates carry their DRAM demand (MoCA's admission needs it).
    needs_demand = False

    def __init__(self) -> None:
        self._steps: dict[str, int] = {}
        self._demand: dict[tuple[str, int], float] = {}
        self._woken: set[int] = set()
        self._pod_tiles = 1
        self._lat_table: dict[tuple[str, int], tuple[float, ...]] = {}
        # _candidates' profile table: one row per model (latency on 1..npods pods, µs), and the
        # DRAM demand of each model on 0..npods pods.
        self._rows_npods = 0
        self._rows: dict[str, int] = {}
        self._table: np.ndarray = np.empty((0, 0))
        self._dem_table: np.ndarray = np.empty((0, 1))
        # Per run (``_rank_of`` is its ``sim.jobs``), indexed by JobState.rank: priorities,
        # deadlines (µs), models and their profile rows (-1: not yet).
        self._rank_of: object = None
        self._g_prio: np.ndarray = np.empty(0, dtype=np.int64)
        self._g_deadline: np.ndarray = np.empty(0)
        self._g_model: list[str] = []
        self._g_row: np.ndarray = np.empty(0, dtype=np.int64)
        self._g_known: list[bool] = []  # whether _g_row holds the rank's row

    # ---- profiles (cached by the plan book; every look-up is charged) ---------------------
    def latencies(self, sim: Simulator, model: str, npods: int) -> tuple[float, ...]:
        """One inference of ``model`` on 1..``npods`` pods with their share of the bandwidth, µs.

        The plan book's profiles, gathered once per model.
        """
        key = (model, npods)
        got = self._lat_table.get(key)
        if got is None:
            got = tuple(
                sim.plans.lts(model, k * self._pod_tiles, k / npods).latency_us
                for k in range(1, npods + 1)
            )
            self._lat_table[key] = got
        return got

    def steps(self, sim: Simulator, model: str) -> int:
        """Layer boundaries of ``model``: its compute layers (each with its epilogue)."""
        got = self._steps.get(model)
        if got is None:
            got = self._steps[model] = max(
                1, sum(1 for lay in sim.plans.graph(model) if lay.is_compute)
            )
        return got

    def demand(self, sim: Simulator, model: str, tiles: int) -> float:
        """Fraction of the DRAM bandwidth a job of ``model`` uses alone on ``tiles`` tiles."""
        key = (model, tiles)
        got = self._demand.get(key)
        if got is None:
            p = sim.plans.lts(model, tiles, 1.0)
            bw = sim.dram_bytes_per_cycle
            full = sum(max(c, b / bw) for c, b in p.pieces)
            moved = sum(b for _, b in p.pieces)
            got = self._demand[key] = min(1.0, moved / bw / full) if full > 0 else 0.0
        return got

    # ---- layer boundaries ------------------------------------------------------------------
    def ready_at(self, sim: Simulator, js: JobState) -> float:
        """When a running job can next be resized or stopped, µs.

        Now at a layer boundary (or at most ``BOUNDARY_TOL_US`` of its work past one), else the
        next one; a job still restoring, reloading or pausing, when it resumes.
        """
        if js.progress_from_us > sim.now:
            return js.progress_from_us
        s = self.steps(sim, js.job.model)
        done = done_now(js)
        prev = math.floor(done * s + 1e-9) / s
        if self._since_us(sim, js, done - prev) <= BOUNDARY_TOL_US:
            return float(sim.now)
        return sim.now + time_to_us(js, sim, min(1.0, prev + 1.0 / s))

    def _since_us(self, sim: Simulator, js: JobState, work: float) -> float:
        """Time ``work`` (fraction of the inference) took at the current piece's rate, µs."""
        if not js.pieces or js.piece >= len(js.pieces):
            return work * js.latency_us
        bw = sim.dram_bytes_per_cycle
        _, total = piece_arrays(js.pieces, bw)
        c, b = js.pieces[js.piece]
        full = max(c, b / bw)
        rate = max(c, b / (bw * max(js.dram_share, 1e-9))) / full if full > 0 else 1.0
        return sim.cycles_to_us(work * total * rate)

    def _wake(self, sim: Simulator, t: float) -> None:
        key = math.ceil(t - 1e-9)
        if key in self._woken:
            return
        if len(self._woken) > 4096:
            self._woken = {w for w in self._woken if w >= sim.now}
        self._woken.add(key)
        sim.wake_at(t)

    # ---- candidates ------------------------------------------------------------------------
    def _candidate(self, sim: Simulator, js: JobState, npods: int) -> Candidate:
        """Minimal pods by binary search over its profiles (latency does not grow with pods).

        Every profile consulted is charged as a lookup.
        """
        model = js.job.model
        if ESTIMATED_SHARE:
            pt = self._pod_tiles

            def lat(k: int) -> float:
                return sim.estimate_us(sim.plans.lts(model, k * pt, 1.0).pieces)
        else:
            table = self.latencies(sim, model, npods)

            def lat(k: int) -> float:
                return table[k - 1]

        left = js.remaining
        slack = js.job.deadline_us - sim.now
        budget = SLACK_SHARE * slack
        rem_all = left * lat(npods)
        looked = 1
        if rem_all > budget:
            sim.charge(lookups=looked)
            return Candidate(js.job.job, js.job.priority, None, math.inf, rem_all, slack)
        lo, hi, rem_hi = 1, npods, rem_all
        while lo < hi:
            mid = (lo + hi) // 2
            r = left * lat(mid)
            looked += 1
            if r <= budget:
                hi, rem_hi = mid, r
            else:
                lo = mid + 1
        sim.charge(lookups=looked)
        tiles = hi * self._pod_tiles
        d = self.demand(sim, js.job.model, tiles) if self.needs_demand else 0.0
        return Candidate(js.job.job, js.job.priority, hi, rem_hi, rem_all, slack, d)

    def _index(self, sim: Simulator, jobs: Sequence[JobState], npods: int) -> np.ndarray:
        """The jobs' ranks (:attr:`JobState.rank`), every model given its row of profiles.

        Per run, the jobs' priorities, deadlines and profile rows are kept in arrays indexed by
        rank, so that a scheduling point gathers them for all jobs at once.
        """
        if self._rows_npods != npods:
            self._rows_npods, self._rows, self._table = npods, {}, np.empty((0, npods))
            self._dem_table = np.empty((0, npods + 1))
            self._rank_of = None
        if self._rank_of is not sim.jobs:
            ordered = sorted(sim.jobs.values(), key=lambda j: j.rank)
            self._g_prio = np.array([j.job.priority for j in ordered], dtype=np.int64)
            self._g_deadline = np.array([j.job.deadline_us for j in ordered], dtype=np.float64)
            self._g_model = [j.job.model for j in ordered]
            self._g_row = np.full(len(ordered), -1, dtype=np.int64)
            self._g_known = [False] * len(ordered)
            self._rank_of = sim.jobs
        ranks = [js.rank for js in jobs]
        if ranks and min(ranks) < 0:
            raise ValueError("a job without a rank: job states come from a Simulator")
        known = self._g_known
        for r in ranks:  # in the jobs' order: models get rows as they appear
            if known[r]:
                continue
            model = self._g_model[r]
            row = self._rows.get(model)
            if row is None:  # a model not seen yet: one more row of profiles
                row = self._rows[model] = len(self._rows)
                self._table = np.vstack([self._table, [self.latencies(sim, model, npods)]])
                dem = [0.0]
                if self.needs_demand:
                    dem += [
                        self.demand(sim, model, k * self._pod_tiles) for k in range(1, npods + 1)
                    ]
                else:
                    dem += [0.0] * npods
                self._dem_table = np.vstack([self._dem_table, [dem]])
            self._g_row[r] = row
            known[r] = True
        return np.array(ranks, dtype=np.int64)

    def _sizes(
        self, sim: Simulator, jobs: Sequence[JobState], npods: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_candidate`'s numbers for every job of ``jobs``, in one compiled pass.

        The same binary searches over the same profiles, with the same lookups charged in the
        same order. Returns the jobs' ranks, the minimal pods (0: none), the remaining time on
        them and on every pod (µs), the slacks (µs) and the DRAM demands on the minimal pods (0
        unless ``needs_demand``).
        """
        idx = self._index(sim, jobs, npods)
        rows = self._g_row[idx]
        slack = self._g_deadline[idx] - sim.now
        pods, rem_min, rem_all, looked = _min_pods(
            self._table,
            rows,
            np.array([js.remaining for js in jobs], dtype=np.float64),
            slack,
            SLACK_SHARE,
        )
        sim.charge_lookups(looked.tolist())
        demand = self._dem_table[rows, pods]  # column 0 (no pods) is 0
        return idx, pods, rem_min, rem_all, slack, demand

    def _candidates(self, sim: Simulator, jobs: Sequence[JobState], npods: int) -> list[Candidate]:
        """:meth:`_candidate` of every job in ``jobs`` (by :meth:`_sizes`; the tests compare)."""
        if ESTIMATED_SHARE or not jobs:
            return [self._candidate(sim, js, npods) for js in jobs]
        _, pods, rem_min, rem_all, slacks, demand = self._sizes(sim, jobs, npods)
        return [
            Candidate(js.job.job, js.job.priority, None, math.inf, rall, slack)
            if k == 0
            else Candidate(js.job.job, js.job.priority, k, rmin, rall, slack, d)
            for js, k, rmin, rall, slack, d in zip(
                jobs,
                pods.tolist(),
                rem_min.tolist(),
                rem_all.tolist(),
                slacks.tolist(),
                demand.tolist(),
                strict=True,
            )
        ]

    def compiled_order(self) -> bool | None:
        """Which order :func:`~isosched.sim.policies.podalloc.allocate_arrays` can apply.

        False: by score (Planaria's :meth:`order`); True: MoCA's memory-aware admission;
        None: no compiled equivalent (an overridden :meth:`order`).
        """
        return False if type(self).order is Planaria.order else None

    def _division(
        self, sim: Simulator, jobs: list[JobState], npods: int, capacity: int
    ) -> tuple[list[int], list[int], list[int]]:
        """Pods per job, the order they are handed out and the minimal pods, by position.

        ``targets[i]`` pods for ``jobs[i]``, ``order`` the positions in hand-out order,
        ``mins[i]`` its minimal pods (0: none meets its deadline). :func:`allocate` over
        :meth:`_candidates`, or its compiled copy over :meth:`_sizes` when there is one (the
        same answers; the tests compare).
        """
        memory_aware = self.compiled_order()
        if ESTIMATED_SHARE or memory_aware is None or not jobs:
            cands = self._candidates(sim, jobs, npods)
            by_id, ids = allocate(cands, capacity, self.order(sim))
            pos = {js.id: i for i, js in enumerate(jobs)}
            return (
                [by_id[js.id] for js in jobs],
                [pos[jid] for jid in ids],
                [c.min_pods or 0 for c in cands],
            )
        idx, pods, rem_min, rem_all, slacks, demand = self._sizes(sim, jobs, npods)
        got, order_idx = allocate_arrays(
            self._g_prio[idx],
            pods,
            rem_min,
            rem_all,
            slacks,
            demand,
            idx,
            capacity,
            memory_aware,
        )
        return got.tolist(), order_idx.tolist(), pods.tolist()

    def order(self, sim: Simulator) -> Order | None:
        """How minima are handed out when they do not all fit (Planaria: by score)."""
        return None

    # ---- actions ---------------------------------------------------------------------------
    def _start(self, sim: Simulator, js: JobState, tiles: list[int]) -> None:
        p = sim.plans.lts(js.job.model, len(tiles), 1.0)
        sim.count("placements")
        sim.start(js, tuple(tiles), p.latency_us, p.energy_pj, pieces=p.pieces)

    def _resize(self, sim: Simulator, js: JobState, tiles: list[int]) -> None:
        """Shrink or grow ``js`` to ``tiles`` at its layer boundary.

        Shrinking moves the live activations on the pods it gives up to the pods it keeps, every
        tile over its own link; growing reconfigures the fission network only.
        """
        old = len(js.tiles)
        p = sim.plans.lts(js.job.model, len(tiles), 1.0)
        pause_us = 0.0
        if len(tiles) < old:
            prof = sim.plans.lts(js.job.model, old, 1.0)
            state = prof.state_bytes(done_now(js), sim.dram_bytes_per_cycle)
            pw, ph = pod_shape(sim)
            cycles = state / old / sim.hw.noc.link_bytes_per_cycle + sim.hw.noc.hop_cycles * (
                pw + ph
            )
            pause_us = sim.cycles_to_us(cycles)
        sim.resize(js, tiles, p.latency_us, p.energy_pj, pause_us=pause_us, pieces=p.pieces)

    def _stop(self, sim: Simulator, js: JobState) -> None:
        """Preempt ``js`` at its layer boundary: checkpoint its on-chip activations."""
        prof = sim.plans.lts(js.job.model, len(js.tiles), 1.0)
        state = prof.state_bytes(done_now(js), sim.dram_bytes_per_cycle)
        drain = sim.cycles_to_us(sim.hw.preemption.drain_cycles)
        sim.preempt(js, drain, state_bytes=state, weight_bytes=0)

    # ---- the policy --------------------------------------------------------------------------
    def schedule(self, sim: Simulator) -> None:
        """Re-divide the pods and move every job towards its share (module docstring)."""
        running = sim.running()
        ready = sim.ready()
        if not running and not ready:
            return
        occ = sim.occupancy
        pods = rect_positions(sim, pod_shape(sim))
        npods = len(pods)
        self._pod_tiles = len(pods[0][1])
        sim.charge(lookups=npods)
        avail = occ.available_mask
        free = [i for i, (m, _) in enumerate(pods) if m & avail == m]
        owned: dict[str, list[int]] = {}
        for js in running:
            held = occ.held_mask(js.id)
            owned[js.id] = [i for i, (m, _) in enumerate(pods) if m & held == m]
        capacity = len(free) + sum(len(v) for v in owned.values())
        for js in running:
            sim.sync(js)  # progress up to now: boundaries, checkpoint sizes, remaining work
        jobs = [*running, *ready]
        divide = DIVISION_HOOK
        if divide is None:
            targets, order, mins = self._division(sim, jobs, npods, capacity)
        else:
            targets, order, mins = divide(self, sim, jobs, npods, capacity)
        # Shrink or stop the running jobs that give pods up, each at its layer boundary.
        for r in sorted(range(len(running)), key=lambda r: running[r].id):
            js = running[r]
            t, mine = targets[r], owned[js.id]
            if t >= len(mine):
                continue
            when = self.ready_at(sim, js)
            if when > sim.now:
                self._wake(sim, when)
            elif t == 0:
                self._stop(sim, js)
            else:
                self._resize(sim, js, [x for i in mine[:t] for x in pods[i][1]])
        # Grow running jobs and start waiting ones onto free pods, highest score first (a job
        # given no pods does nothing here).
        avail = occ.available_mask
        free = [i for i, (m, _) in enumerate(pods) if m & avail == m]
        for k in order:
            t = targets[k]
            if t == 0:
                continue
            js = jobs[k]
            if js.state == "running":
                mine = owned.get(js.id, [])
                if t <= len(mine) or not free:
                    continue
                when = self.ready_at(sim, js)
                if when > sim.now:
                    self._wake(sim, when)
                    continue
                gain, free = free[: t - len(mine)], free[t - len(mine) :]
                self._resize(sim, js, [x for i in sorted(mine + gain) for x in pods[i][1]])
            elif js.state == "waiting":
                need = min(t, mins[k] or t)
                if len(free) < need:
                    continue
                take, free = free[:t], free[t:]
                self._start(sim, js, [x for i in take for x in pods[i][1]])
