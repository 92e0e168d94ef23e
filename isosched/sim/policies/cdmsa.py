"""CD-MSA (Wang, Bai and Sun, IEEE TPDS 2023): deadline-aware multi-DNN scheduling.

Cooperative, deadline- and laxity-aware scheduling on a multi-systolic-array (MSA) accelerator,
layer-temporal. What is modelled, and how:

* **Arrays.** The chip is a set of equal arrays, the quarter-chip partitions (``M`` = 4 of them).
  A job runs on a *gang* of ``g`` arrays (1, 2 or 4: the aligned boxes of the budgets ladder made
  of whole arrays), its layers spread over the gang (the LTS profile on the gang's tiles).
* **Schedulability test** (the density test). A job's density on ``g`` arrays is
  ``g × remaining(g) / time to its deadline``, with ``remaining(g)`` priced at the gang's
  proportional DRAM share (each array brings its share of the bandwidth; conservative, since
  the bandwidth is shared). The gang a job *needs* is the one on which it makes its deadline at
  the least density (the widest within ``GANG_TOLERANCE`` of it: same capacity, sooner done);
  where DRAM bandwidth binds, as on the edge chips, that is often all four arrays. Jobs are
  admitted earliest deadline first (least laxity on ties; ``CRITICAL_FIRST`` can put critical
  and higher-priority jobs first) while the densities at their needed gangs sum to at most
  ``M``. A job that cannot finish by its deadline on any gang is not started.
* **Dispatch and ganging** (task-level parallelism). Admitted waiting jobs are dispatched in
  that order, then the deferred ones (those the test refused), each on a free gang: the one it
  needs; a wider one when arrays are free that no job waiting behind it needs and the density
  test holds with its larger density (it finishes sooner); else a narrower one on which it still
  makes its deadline, if the density test allows. Behind an admitted job that waits its turn,
  later jobs only backfill: they must be done by its projected start. When no job waits, a
  running job grows onto the free arrays of a larger aligned gang around it (a resize: it pays
  the pipeline drain; its activations stay in the SRAM they are in).
* **Cooperative preemption** (laxity-aware). An admitted job without arrays first checks whether
  it can wait: running jobs free arrays (by their finish estimates, after the admitted jobs ahead
  of it take theirs) in time for it to finish on its needed gang. Only if not does it take a
  gang from running jobs: deferred or doomed ones first, then admitted ones ganged wider than
  their need, then admitted ones whose laxity absorbs the delay; fewest bytes to save next.
  Victims stop at their next layer boundary (the drain: the hardware's drain plus a mean layer
  time), write the activations they hold on-chip to DRAM (``common.lts_state_bytes``) and read
  them back when they resume, on whatever gang they get (the engine charges the restore). One
  preemption or fusion per scheduling point; a job is preempted (or hosts a guest) at most
  ``MAX_PREEMPTIONS`` times.
* **Dynamic task fusion** (the paper's "logically multi-threading" tasks; our model). Before
  preempting, the job is *fused* into a running job's stream: it runs as a guest on that host's
  gang from the host's next layer boundary, and the host continues on the same arrays when the
  guest is done. Both contexts stay on-chip when the host's live activations plus the guest's
  peak live activations fit in half the gang's SRAM (the other half is the LTS cost model's
  weight prefetch window): the switch then costs the drain only, no checkpoint and no restore.
  A fusion is chosen only when the guest makes its deadline on the host's gang and an admitted
  host still makes its own after the pause; when no such pure fusion exists the job preempts,
  and failing that it fuses with the host's excess activations written to DRAM and read back.
  Fusions are counted (``fusions``); in the job records the host's drain is a ``checkpoint``
  interval and the fusion one of its preemptions.

Not modelled: the interleaving of fused tasks' layers on one array instruction by instruction
(the engine gives a tile to one job at a time) and preemption inside a layer.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from isosched.sim.engine import JobState, Simulator
from isosched.sim.occupancy import mask_of
from isosched.sim.policies.common import (
    boundary_us,
    drain_us,
    lts,
    lts_state_bytes,
    rect_positions,
    shapes,
)

__all__ = ["CdMsa"]

#: ``JobState.extra`` keys: a fused host's tiles and guest; a guest's host.
HOME = "cdmsa_home"
GUEST = "cdmsa_guest"
HOST = "cdmsa_host"

Tiles = tuple[int, ...]

#: Order of admission and dispatch: 0 earliest deadline first (least laxity on ties), as in the
#: paper; 1 critical and higher-priority jobs first in both, then EDF; 2 critical and higher
#: priority first in admission only, dispatch EDF. (Our traces carry criticality and priority;
#: the paper's workloads carry deadlines only.) Measured on edge-4x4 (seed 7; ad_urban ×3 and ×4,
#: ad_stress ×1.5 and ×2, ad_highway ×3), mean satisfaction / critical satisfaction: 0 gives
#: 0.942 / 0.910, 1 gives 0.842 / 0.963; on the tuning scenario (edge-8x8 ad_urban ×8–×16) all
#: values meet every deadline. 0 ships: higher mean satisfaction, and the paper's rule.
CRITICAL_FIRST = 0

#: Running jobs grow onto free arrays nobody waits for (1) or not (0).
GROW = 1

#: A job needs the widest gang whose density is within this fraction of its least density (it
#: finishes sooner for about the same share of the chip's capacity).
GANG_TOLERANCE = 0.05

#: A job is preempted (or hosts a guest) at most this many times: it bounds thrashing.
MAX_PREEMPTIONS = 2


@dataclass
class _Chip:
    """The arrays of a chip: one array's shape and tiles, their number, gang shapes by size."""

    array: tuple[int, int]
    area: int
    count: int
    gangs: dict[int, tuple[int, int]]

    @classmethod
    def of(cls, sim: Simulator) -> _Chip:
        ladder = shapes(sim)
        idx = min(2, len(ladder) - 1)
        array = ladder[idx]
        area = array[0] * array[1]
        gangs = {s[0] * s[1] // area: s for s in ladder[: idx + 1]}
        return cls(array, area, sim.hw.tiles // area, dict(sorted(gangs.items())))


@dataclass
class _Point:
    """One scheduling point: estimates cached for its duration."""

    sim: Simulator
    chip: _Chip
    latency: dict[tuple[str, int], float]
    rems: dict[tuple[str, int], float] = field(default_factory=dict)
    gangs: dict[str, int | None] = field(default_factory=dict)

    @property
    def now(self) -> int:
        return self.sim.now

    def rem(self, j: JobState, g: int) -> float:
        """Time left for ``j`` on ``g`` arrays at their proportional DRAM share, µs."""
        key = (j.id, g)
        got = self.rems.get(key)
        if got is None:
            lat = self.latency.get((j.job.model, g))
            if lat is None:
                lat = lts(j, self.sim, g * self.chip.area).latency_us
                self.latency[(j.job.model, g)] = lat
            if j.state == "running":
                self.sim.sync(j)
            got = self.rems[key] = j.remaining * lat
        return got

    def window(self, j: JobState) -> float:
        return max(j.job.deadline_us - self.now, 1.0)

    def g_min(self, j: JobState) -> int | None:
        """The gang ``j`` needs (``None`` if it makes its deadline on none).

        The widest on which it makes its deadline at a density within ``GANG_TOLERANCE`` of the
        least.
        """
        if j.id in self.gangs:
            return self.gangs[j.id]
        ok = [
            (self.density(j, g), g)
            for g in self.chip.gangs
            if self.rem(j, g) <= j.job.deadline_us - self.now
        ]
        least = min((d for d, _ in ok), default=None)
        got = None
        if least is not None:
            got = max(g for d, g in ok if d <= least * (1 + GANG_TOLERANCE))
        self.gangs[j.id] = got
        return got

    def g_cur(self, j: JobState) -> int:
        return max(1, len(j.tiles) // self.chip.area)

    def laxity(self, j: JobState, g: int) -> float:
        return j.job.deadline_us - self.now - self.rem(j, g)

    def density(self, j: JobState, g: int) -> float:
        return g * self.rem(j, g) / self.window(j)

    def free_arrays(self) -> int:
        avail = self.sim.occupancy.available_mask
        return sum(m & avail == m for m, _ in rect_positions(self.sim, self.chip.array))


class _Turns:
    """When admitted jobs that must wait get their gang: list scheduling on array counts.

    Running jobs free their arrays at their finish estimates; each waiting job, in dispatch
    order, takes its gang as soon as enough arrays are free and frees it after its estimated
    time (alignment is not modelled).
    """

    def __init__(self, pt: _Point) -> None:
        self.pt = pt
        self.events = [(pt.sim.finish_estimate_us(r), pt.g_cur(r)) for r in pt.sim.holding()]
        heapq.heapify(self.events)
        self.free = pt.free_arrays()
        self.t = float(pt.now)

    def take(self, j: JobState, g: int) -> float:
        """When ``j`` gets ``g`` arrays after the jobs taken before it (inf: never)."""
        while self.free < g:
            if not self.events:
                return math.inf
            when, n = heapq.heappop(self.events)
            self.t = max(self.t, when)
            self.free += n
        self.free -= g
        heapq.heappush(self.events, (self.t + self.pt.rem(j, g), g))
        return self.t


class CdMsa:
    """EDF with laxity, a density test, ganged arrays, cooperative preemption and task fusion."""

    name = "cdmsa"
    kind = "lts"

    def __init__(self) -> None:
        self._latency: dict[tuple[str, int], float] = {}  # (model, arrays) -> µs

    def schedule(self, sim: Simulator) -> None:
        """Resume fused hosts, admit, dispatch, wait or preempt (fuse), gang idle arrays."""
        pt = _Point(sim, _Chip.of(sim), self._latency)
        self._resume_hosts(pt)

        keys: dict[str, tuple[Any, ...]] = {}

        def edf(j: JobState) -> tuple[Any, ...]:
            got = keys.get(j.id)
            if got is None:
                g = pt.g_min(j) or max(pt.chip.gangs)
                got = keys[j.id] = (j.job.deadline_us, pt.laxity(j, g), j.id)
            return got

        def urgent(j: JobState) -> tuple[Any, ...]:
            return (not j.job.critical, -j.job.priority, *edf(j))

        admit_key = urgent if CRITICAL_FIRST else edf
        key = urgent if CRITICAL_FIRST == 1 else edf

        # ---- the schedulability (density) test -------------------------------------------
        ready = sim.ready()
        reserved = [sim.jobs[i] for i in sorted(set(sim.occupancy.reserved.values()))]
        active = [*sim.holding(), *reserved, *ready]
        sim.charge(lookups=len(active))
        need: dict[str, int] = {}
        admitted: set[str] = set()
        total = 0.0
        for j in sorted(active, key=admit_key):
            g = pt.g_min(j)
            if g is None:
                continue  # doomed: it cannot finish in time on any gang
            need[j.id] = g
            d = pt.density(j, g)
            if total + d <= pt.chip.count:
                admitted.add(j.id)
                total += d
        # Running admitted jobs may hold wider gangs than they need: their extra density.
        for j in sim.running():
            if j.id in admitted:
                total += pt.density(j, pt.g_cur(j)) - pt.density(j, need[j.id])
        spare = pt.chip.count - total

        # ---- dispatch, wait, fuse or preempt -------------------------------------------
        waiting = [j for j in ready if HOME not in j.extra and j.id in need]
        queue = sorted((j for j in waiting if j.id in admitted), key=key) + sorted(
            (j for j in waiting if j.id not in admitted), key=key
        )
        behind = [0] * (len(queue) + 1)  # arrays wanted by the jobs after each one
        for i in range(len(queue) - 1, -1, -1):
            behind[i] = behind[i + 1] + need[queue[i].id]
        turn: _Turns | None = None  # projected turns of the admitted jobs that must wait
        shadow: float | None = None  # projected start of the first of them
        acted = False
        for i, j in enumerate(queue):
            added = self._start_free(pt, j, need[j.id], behind[i + 1], spare, shadow)
            if added is not None:
                spare -= added
                continue
            if j.id not in admitted:
                continue
            if turn is None:
                turn = _Turns(pt)
            start = turn.take(j, need[j.id])
            if start + pt.rem(j, need[j.id]) <= j.job.deadline_us:
                if shadow is None:
                    shadow = start  # it waits its turn: later starts must not delay it
                continue
            if not acted:
                acted = (
                    self._fuse(pt, j, admitted, spill=False)
                    or self._preempt(pt, j, need[j.id], admitted, need)
                    or self._fuse(pt, j, admitted, spill=True)
                )
        if GROW and all(k.state != "waiting" for k in queue):
            self._grow(pt, admitted, spare, key)

    # ---- starting ------------------------------------------------------------------------
    @staticmethod
    def _start(sim: Simulator, j: JobState, tiles: Tiles) -> None:
        p = lts(j, sim, len(tiles), 1.0)
        sim.count("placements")
        share = len(tiles) / sim.hw.tiles
        sim.start(j, tiles, p.latency_us, p.energy_pj, dram_share=share, pieces=p.pieces)

    @staticmethod
    def _reserve(sim: Simulator, j: JobState, tiles: Tiles) -> None:
        p = lts(j, sim, len(tiles), 1.0)
        sim.count("placements")
        sim.reserve(
            j,
            tiles,
            latency_us=p.latency_us,
            energy_pj=p.energy_pj,
            dram_share=len(tiles) / sim.hw.tiles,
            pieces=p.pieces,
        )

    def _resume_hosts(self, pt: _Point) -> None:
        """Fused hosts whose guest is done continue on their own arrays (restoring any spill)."""
        sim = pt.sim
        for h in sim.ready():
            home = h.extra.get(HOME)
            if home is None:
                continue
            guest = sim.jobs[h.extra[GUEST]]
            if guest.state in ("running", "checkpointing") or guest.reservation is not None:
                continue
            del h.extra[HOME]
            m = mask_of(home)
            if m & sim.occupancy.available_mask == m:
                sim.charge(lookups=1)
                self._start(sim, h, home)

    def _free_gang(self, pt: _Point, g: int) -> Tiles | None:
        """The first free aligned gang of ``g`` arrays, charging the positions tested."""
        avail = pt.sim.occupancy.available_mask
        positions = rect_positions(pt.sim, pt.chip.gangs[g])
        for n, (m, tiles) in enumerate(positions, 1):
            if m & avail == m:
                pt.sim.charge(lookups=n)
                return tiles
        pt.sim.charge(lookups=len(positions))
        return None

    def _start_free(
        self,
        pt: _Point,
        j: JobState,
        g_need: int,
        behind: int,
        spare: float,
        shadow: float | None,
    ) -> float | None:
        """Start ``j`` on a free gang; returns the density it adds beyond its need, or ``None``.

        Its own gang (least density) unless a wider one is free that no waiting job needs and
        the density test allows (it finishes sooner), else a narrower one on which it still
        makes its deadline, if the density test allows. Behind an admitted job that waits its
        turn it only backfills: it must be done by that job's projected start (``shadow``).
        """
        free = pt.free_arrays()
        if free == 0:
            return None
        gangs = sorted(pt.chip.gangs, reverse=True)
        wider = [g for g in gangs if g > g_need and g <= free - behind]
        narrower = [g for g in gangs if g < g_need and pt.rem(j, g) <= j.job.deadline_us - pt.now]
        for g in [*wider, g_need, *narrower]:
            if g > free:
                continue
            extra = pt.density(j, g) - pt.density(j, g_need)
            if g != g_need and extra > spare:
                continue
            if g > g_need and pt.rem(j, g) >= pt.rem(j, g_need):
                continue
            if shadow is not None and pt.now + pt.rem(j, g) > shadow:
                continue
            tiles = self._free_gang(pt, g)
            if tiles is not None:
                self._start(pt.sim, j, tiles)
                return max(extra, 0.0)
        return None

    # ---- task fusion -----------------------------------------------------------------------
    @staticmethod
    def _is_guest(sim: Simulator, v: JobState) -> bool:
        """A guest whose host waits for its arrays."""
        host = v.extra.get(HOST)
        return (
            host is not None
            and sim.jobs[host].extra.get(GUEST) == v.id
            and (HOME in sim.jobs[host].extra)
        )

    def _takeable(self, sim: Simulator, v: JobState) -> bool:
        """Whether ``v`` may be preempted or host a guest.

        It must be running, not a guest whose host waits, and preempted fewer than
        ``MAX_PREEMPTIONS`` times.
        """
        return (
            v.state == "running" and v.preemptions < MAX_PREEMPTIONS and not self._is_guest(sim, v)
        )

    def _fuse(self, pt: _Point, j: JobState, admitted: set[str], *, spill: bool) -> bool:
        """Run ``j`` as a guest on a host's gang (contexts on-chip, or the excess spilled)."""
        sim = pt.sim
        running = sim.running()
        sim.charge(lookups=len(running))
        best: tuple[tuple[float, ...], JobState, int] | None = None
        for h in running:
            g = pt.g_cur(h)
            if not self._takeable(sim, h) or len(h.tiles) != g * pt.chip.area:
                continue
            d = drain_us(h, sim)
            if pt.now + d + pt.rem(j, g) > j.job.deadline_us:
                continue
            sram = len(h.tiles) * sim.hw.tile.sram_bytes
            peak = max(lts(j, sim, len(h.tiles)).live_bytes, default=0)
            excess = max(0, _state_bytes(h, sim) - max(0, sram // 2 - peak))
            if excess and not spill:
                continue
            moved = 2 * sim.dram_us(excess, h.dram_share)
            if h.id in admitted and pt.laxity(h, g) - d - pt.rem(j, g) - moved < 0:
                continue
            cost = (float(excess), float(h.id in admitted), -pt.laxity(h, g))
            if best is None or cost < best[0]:
                best = (cost, h, excess)
        if best is None:
            return False
        _, h, excess = best
        home = h.tiles
        sim.preempt(h, drain_us(h, sim), excess, credit_us=boundary_us(h, sim))
        h.extra[HOME] = home
        h.extra[GUEST] = j.id
        j.extra[HOST] = h.id
        self._reserve(sim, j, home)
        sim.count("fusions")
        return True

    # ---- cooperative preemption ------------------------------------------------------------
    def _preempt(
        self, pt: _Point, j: JobState, g: int, admitted: set[str], need: dict[str, int]
    ) -> bool:
        """Take a gang of ``g`` arrays from the running jobs that can best afford it."""
        sim = pt.sim
        occ = sim.occupancy
        positions = rect_positions(sim, pt.chip.gangs[g])
        sim.charge(lookups=len(positions))
        reserved = mask_of(occ.reserved)
        best: tuple[tuple[float, ...], list[JobState], Tiles] | None = None
        for m, tiles in positions:
            if m & reserved:
                continue
            victims = [sim.jobs[o] for o in sorted(occ.holders(m))]
            if not victims or not all(self._takeable(sim, v) for v in victims):
                continue
            cost = self._victims_cost(pt, j, g, victims, admitted, need)
            if cost is not None and (best is None or cost < best[0]):
                best = (cost, victims, tiles)
        if best is None:
            return False
        _, victims, tiles = best
        for v in victims:
            sim.preempt(v, drain_us(v, sim), _state_bytes(v, sim), credit_us=boundary_us(v, sim))
        self._reserve(sim, j, tiles)
        return True

    @staticmethod
    def _victims_cost(
        pt: _Point,
        j: JobState,
        g: int,
        victims: list[JobState],
        admitted: set[str],
        need: dict[str, int],
    ) -> tuple[float, ...] | None:
        """(class, bytes to save, start) of taking these victims' arrays, or ``None``.

        ``None`` if ``j`` would still miss or an admitted victim could not absorb the delay.
        Class 0: deferred or doomed victims only; 1: admitted ones ganged wider than their
        need; 2: the others.
        """
        sim = pt.sim
        start = float(pt.now)
        worst = 0
        moved = 0
        for v in victims:
            state = _state_bytes(v, sim)
            moved += state
            stop = drain_us(v, sim) + sim.dram_us(state, v.dram_share)
            start = max(start, pt.now + stop)
            if v.id not in admitted:
                continue
            gv = pt.g_cur(v)
            ran = boundary_us(v, sim)  # its run to the boundary is its own work
            delay = stop - ran + sim.dram_us(state, v.dram_share) + pt.rem(j, g)
            if pt.laxity(v, gv) - delay < 0:
                return None
            worst = max(worst, 1 if gv > need.get(v.id, gv) else 2)
        if start + pt.rem(j, g) > j.job.deadline_us:
            return None
        return (float(worst), float(moved), start)

    # ---- growing onto idle arrays -----------------------------------------------------------
    def _grow(
        self,
        pt: _Point,
        admitted: set[str],
        spare: float,
        key: Callable[[JobState], tuple[Any, ...]],
    ) -> None:
        """Running jobs, most urgent first, take the free arrays of a larger gang around them."""
        sim = pt.sim
        pause = sim.cycles_to_us(sim.hw.preemption.drain_cycles)
        for j in sorted(sim.running(), key=key):
            if pt.free_arrays() == 0:
                return
            if self._is_guest(sim, j) or j.progress_from_us > pt.now or j.hold_since == pt.now:
                continue  # a guest, restoring, or placed at this very point
            g0 = pt.g_cur(j)
            mine = sim.occupancy.held_mask(j.id)
            for g in sorted(pt.chip.gangs, reverse=True):
                if g <= g0:
                    break
                if pt.rem(j, g) + pause >= pt.rem(j, g0):
                    continue
                extra = pt.density(j, g) - pt.density(j, g0)
                if j.id in admitted and extra > spare:
                    continue
                avail = sim.occupancy.available_mask | mine
                positions = rect_positions(sim, pt.chip.gangs[g])
                sim.charge(lookups=len(positions))
                spot = next((t for m, t in positions if m & mine == mine and m & avail == m), None)
                if spot is None:
                    continue
                p = lts(j, sim, len(spot), 1.0)
                sim.count("placements")
                sim.resize(j, spot, p.latency_us, p.energy_pj, pause_us=pause, pieces=p.pieces)
                if j.id in admitted:
                    spare -= extra
                break


def _state_bytes(js: JobState, sim: Simulator) -> int:
    """Activations ``js`` holds on-chip at its next layer boundary (none before it started)."""
    sim.sync(js)
    return 0 if js.remaining >= 1.0 else lts_state_bytes(js, sim)
