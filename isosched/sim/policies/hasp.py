"""HASP (Li et al., IEEE TC 73(2), 2024): hierarchical asynchronous parallelism for multi-NN tasks.

Tile-spatial and non-preemptive. Each task runs as a pipeline on its own spatial partition —
an aligned box of the budgets ladder holding the same TSS plan as IsoSched for that box
(``sim.plans.job_plan(model, shape)``, started through ``common.start_tss``) — on free tiles
only, and holds the whole partition until it finishes (resource isolation). Partitions are
re-planned at every job boundary (a release or a finish): the waiting jobs, most urgent first
(critical, then priority, then deadline), each take the box that suits the chip as it is then.
This is HASP's mapping (spatial partitioning re-tuned at task boundaries) in its strongest form
we can state honestly; what we add, which the paper does not have, is admission control and a
reserved partition for periodic critical streams (an option):

* **Sizing.** A job's options are the boxes on which it finishes by its deadline at the DRAM
  share it would get now (``sim.estimate_us``: DRAM bandwidth is shared). Its minimum is the
  smallest box on which it finishes within ``DEADLINE_SHARE`` of the time to its deadline (else
  the smallest option). It takes the fastest option whose box fits the free tiles left after the
  minimum boxes of the jobs waiting behind it (up to ``LOOKAHEAD`` of them), else its minimum,
  else any option that is free, smallest first. A job with no option is not started (it would
  miss anyway and only slow the others down); it waits, and is dropped at its deadline.
* **Admission control: running jobs.** A start is refused if it would make a running job of the
  same or a higher class (critical, then priority) that is now on time miss its deadline: every
  running job is re-priced at the DRAM share it would keep beside the newcomer.
* **Admission control: room for periodic critical streams.** Critical streams are learnt online
  from their released jobs (model, relative deadline, and period: the smallest gap seen between
  releases, the relative deadline until two are seen). A non-critical start is refused if some
  critical job — waiting now, or predicted (next releases at the period) before the newcomer
  would finish — would then find no free box of its minimum shape (timed at the DRAM share it
  would get beside the running jobs and the newcomer) by the latest time it can start and still
  meet its deadline (``ROOM_AT``). Tiles count as free then if their holders' finish estimates
  are earlier; predicted critical jobs placed before it hold theirs.
* **A reserved partition** (``RESERVE``). Non-critical jobs never take the tiles of one aligned
  box of the largest critical minimum shape (the last one in row order); critical jobs try it
  first.

What we chose, and why: admission control, with the reserved partition as an option that ships
off. Admission control keeps room exactly when critical releases are due and lets background
work use it in between; a reserved partition idles whenever no critical job runs in it.
Measured (seed 7; mean satisfaction / mean critical satisfaction):

* ``edge-8x8``, ``ad_urban`` ×12 and ×16: admission control 0.401 / 0.819; with the reserve on
  top 0.402 / 0.819; neither (``ADMISSION = 0``: the paper's partitioning with our sizing)
  0.382 / 0.278.
* ``edge-4x4``, ``ad_urban`` ×3 and ×4, ``ad_stress`` ×1.5 and ×2, ``ad_highway`` ×3:
  admission control 0.738 / 0.950; with the reserve 0.737 / 0.953; the reserve alone 0.722 /
  0.929; neither 0.733 / 0.939.

The reserve on top of admission control is a tie, so the simpler rule ships (ties keep the
shipped value); admission control is what keeps critical frames on time.

Never preempts.
"""

from __future__ import annotations

from dataclasses import dataclass

from isosched.sim.engine import JobState, Simulator
from isosched.sim.jobplan import JobPlan
from isosched.sim.occupancy import mask_of
from isosched.sim.policies.common import (
    DEADLINE_SHARE,
    Shape,
    by_urgency,
    rect_positions,
    shapes,
    start_tss,
)

__all__ = ["ADMISSION", "LOOKAHEAD", "RESERVE", "ROOM_AT", "RUNNERS", "STRICT", "TRIES", "Hasp"]

Pieces = tuple[tuple[float, float], ...]

#: Waiting jobs whose minimum boxes are kept free for, behind a starting job.
LOOKAHEAD = 8

#: Waiting jobs that fail to start at one scheduling point, at most, before the rest wait their
#: turn (bounds a decision's cost when many jobs wait and admission refuses them).
TRIES = 16

#: Admission control (running jobs kept on time, room for critical streams): 1 on, 0 off (then
#: only sizing remains: a job is still not started on a box where it would miss).
ADMISSION = 1

#: Admission keeps running jobs on time: 2 those of the newcomer's class or above, 1 those
#: strictly above, 0 none.
RUNNERS = 2

#: A critical job must find its box free this far into its slack (the time between its release
#: and the latest start that meets its deadline): 0 at its release, 1 at its latest start.
ROOM_AT = 1.0

#: Refuse a start whenever critical jobs would lack room beside it (1), or only when they
#: would have had room without it (0).
STRICT = 1

#: Keep one partition free of non-critical jobs for critical streams: 1 on, 0 off.
RESERVE = 0


@dataclass
class _Stream:
    """A periodic critical stream as seen so far."""

    model: str
    deadline_us: int  # relative
    priority: int
    last_us: int
    period_us: float  # the smallest gap seen; the relative deadline until two releases
    seen: int

    def releases(self, after: float, until: float) -> list[int]:
        """Predicted releases in ``(after, until)``."""
        out = []
        t = self.last_us + self.period_us
        while t <= after:
            t += self.period_us
        while t < until:
            out.append(int(t))
            t += self.period_us
        return out


@dataclass(frozen=True)
class _Need:
    """A critical job to keep room for: its box shape, latest start and end."""

    shape: Shape
    start_by: float
    end: float


class Hasp:
    """TSS partitions on free tiles, re-planned at job boundaries, with admission control."""

    name = "hasp"
    kind = "tss"

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._seen: set[str] = set()
        # Per decision: critical boxes, start estimates, tiles held and until when.
        self._boxes: dict[tuple[str, int, int], tuple[float, Shape] | None] = {}
        self._est: dict[int, tuple[Pieces, float]] = {}
        self._held: list[tuple[int, float]] | None = None
        self._tol: list[tuple[tuple[bool, int], float]] | None = None
        self._reserved: int | None = None
        self._price = _Pricing()

    def schedule(self, sim: Simulator) -> None:
        """Place waiting jobs, most urgent first, on free partitions they are admitted to."""
        ready = by_urgency(sim.ready())
        self._learn(sim, ready)
        if not ready:
            return
        smallest = shapes(sim)[-1]
        small = smallest[0] * smallest[1]
        minimum: dict[str, tuple[float, JobPlan] | None] = {}
        options: dict[str, list[tuple[float, JobPlan]]] = {}

        def opts(js: JobState) -> list[tuple[float, JobPlan]]:
            if js.id not in options:
                options[js.id] = self._options(js, sim)
                minimum[js.id] = self._minimum(js, sim, options[js.id])
            return options[js.id]

        self._boxes.clear()
        self._est.clear()
        self._held = None
        self._tol = None
        self._reserved = None
        tried = 0
        for i, js in enumerate(ready):
            if sim.occupancy.free_tiles < small or tried >= TRIES:
                return
            if not opts(js):
                continue
            least = minimum[js.id]
            behind = 0
            for k in ready[i + 1 : i + 1 + LOOKAHEAD]:
                if opts(k) and (m := minimum[k.id]) is not None:
                    behind += _area(m[1])
            if not self._place(js, sim, options[js.id], least, behind):
                tried += 1

    # ---- learning the critical streams -------------------------------------------------
    def _learn(self, sim: Simulator, ready: list[JobState]) -> None:
        for js in [*ready, *sim.holding()]:
            j = js.job
            if not j.critical or js.id in self._seen:
                continue
            self._seen.add(js.id)
            rel = j.deadline_us - j.release_us
            st = self._streams.get(j.stream)
            if st is None:
                self._streams[j.stream] = _Stream(j.model, rel, j.priority, j.release_us, rel, 1)
                continue
            gap = abs(j.release_us - st.last_us)
            if gap > 0:
                st.period_us = gap if st.seen == 1 else min(st.period_us, gap)
                st.seen += 1
            st.last_us = max(st.last_us, j.release_us)
            st.model, st.deadline_us, st.priority = j.model, rel, j.priority

    # ---- sizing ------------------------------------------------------------------------
    def _options(self, js: JobState, sim: Simulator) -> list[tuple[float, JobPlan]]:
        """(time at the share it would get now, plan) of every box it makes its deadline on."""
        slack = js.job.deadline_us - sim.now
        out = []
        for plan in sim.plans.job_plans(js.job.model):
            t = self._estimate(sim, plan.base_timing.pieces)
            if t <= slack:
                out.append((t, plan))
        return out

    def _estimate(self, sim: Simulator, pieces: Pieces) -> float:
        """``sim.estimate_us``, cached until the next start of this decision."""
        got = self._est.get(id(pieces))
        if got is None or got[0] is not pieces:
            got = self._est[id(pieces)] = (pieces, sim.estimate_us(pieces))
        return got[1]

    @staticmethod
    def _minimum(
        js: JobState, sim: Simulator, options: list[tuple[float, JobPlan]]
    ) -> tuple[float, JobPlan] | None:
        if not options:
            return None
        slack = js.job.deadline_us - sim.now
        share = [o for o in options if o[0] <= DEADLINE_SHARE * slack]
        return min(share or options, key=lambda o: (_area(o[1]), o[0]))

    def _place(
        self,
        js: JobState,
        sim: Simulator,
        options: list[tuple[float, JobPlan]],
        least: tuple[float, JobPlan] | None,
        behind: int,
    ) -> bool:
        free_n = sim.occupancy.free_tiles
        floor = _area(least[1]) if least is not None else 0
        roomy = sorted(
            (o for o in options if _area(o[1]) <= max(free_n - behind, floor)),
            key=lambda o: (o[0], _area(o[1])),
        )
        if least is not None and least in roomy:
            # The fastest box that leaves the others room, else the minimum.
            roomy = [o for o in roomy if o[0] <= least[0]] + [least]
        rest = sorted((o for o in options if o not in roomy), key=lambda o: (_area(o[1]), o[0]))
        avail = sim.occupancy.available_mask
        if self._reserved is None:
            self._reserved = self._reserved_mask(sim) if RESERVE else 0
        reserved = self._reserved
        if not js.job.critical:
            avail &= ~reserved
        tried: set[Shape] = set()
        for t, plan in [*roomy, *rest]:
            if plan.box in tried or _area(plan) > free_n:
                continue
            tried.add(plan.box)
            tiles = self._free_box(sim, plan.box, avail, reserved if js.job.critical else 0)
            if tiles is None:
                continue
            if ADMISSION and not self._admits(js, sim, plan, t, tiles):
                continue
            sim.count("placements")
            start_tss(js, sim, tiles, plan, _area(plan) / sim.hw.tiles)
            self._est.clear()  # the DRAM load changed
            self._tol = None
            if self._held is not None:
                self._held.append((mask_of(tiles), sim.finish_estimate_us(js)))
            return True
        return False

    @staticmethod
    def _free_box(sim: Simulator, shape: Shape, avail: int, prefer: int) -> tuple[int, ...] | None:
        """The first free aligned box of ``shape``, those inside ``prefer`` first."""
        positions = rect_positions(sim, shape)
        order = [p for p in positions if not p[0] & ~prefer] if prefer else []
        order += [p for p in positions if p not in order]
        for n, (m, tiles) in enumerate(order, 1):
            if m & avail == m:
                sim.charge(lookups=n)
                return tiles
        sim.charge(lookups=len(order))
        return None

    # ---- admission control -----------------------------------------------------------------
    def _admits(
        self, js: JobState, sim: Simulator, plan: JobPlan, t: float, tiles: tuple[int, ...]
    ) -> bool:
        """Whether starting ``js`` keeps running jobs on time and critical streams room."""
        return (not RUNNERS or self._keeps_runners(js, sim, plan)) and (
            js.job.critical or self._keeps_room(js, sim, plan, t, tiles)
        )

    def _keeps_runners(self, js: JobState, sim: Simulator, plan: JobPlan) -> bool:
        """No running job of ``js``'s class or above that is on time misses beside it."""
        mine = (js.job.critical, js.job.priority)
        new = self._price.demand(plan.base_timing.pieces, sim)
        for theirs, tolerance in self._tolerances(sim):
            if theirs < mine or (theirs == mine and RUNNERS < 2):
                continue
            if new > tolerance:
                return False
        return True

    def _tolerances(self, sim: Simulator) -> list[tuple[tuple[bool, int], float]]:
        """(class, DRAM demand a newcomer may add before it would miss) per running job on time.

        Each is priced over its remaining work at its share; cached until the next start of
        this decision.
        """
        if self._tol is not None:
            return self._tol
        running = [r for r in sim.running() if r.pieces]
        sim.charge(lookups=len(running))
        demand = {r.id: self._price.demand(r.pieces, sim) for r in running}
        total = sum(demand.values())
        out = []
        for r in running:
            d = demand[r.id]
            sim.sync(r)
            left = r.job.deadline_us - sim.now
            if left <= 0 or d <= 0 or total <= 0:
                continue
            if r.remaining * self._price.time_us(r.pieces, d / total, sim) > left:
                continue  # late already: not a newcomer's doing
            lo, hi = 1, 256  # the smallest share (in 1/256) on which it still makes it
            while lo < hi:
                mid = (lo + hi) // 2
                if r.remaining * self._price.time_us(r.pieces, mid / 256, sim) <= left:
                    hi = mid
                else:
                    lo = mid + 1
            out.append(((r.job.critical, r.job.priority), d / (lo / 256) - total))
        self._tol = out
        return out

    def _keeps_room(
        self, js: JobState, sim: Simulator, plan: JobPlan, t: float, tiles: tuple[int, ...]
    ) -> bool:
        """Whether the critical jobs due while ``js`` runs still find their boxes in time."""
        if not self._streams:
            return True
        end = sim.now + t
        load = sum(self._price.demand(r.pieces, sim) for r in sim.running())
        mine = self._price.demand(plan.base_timing.pieces, sim)
        with_me = self._needs(sim, end, load + mine)
        if with_me == []:
            return True
        if self._held is None:
            self._held = [
                (sim.occupancy.held_mask(r.id), sim.finish_estimate_us(r)) for r in sim.holding()
            ]
        held = self._held
        if with_me is not None and self._room(sim, with_me, [*held, (mask_of(tiles), end)]):
            return True
        if STRICT:
            return False
        # Refused only if it is this start that takes the room.
        alone = self._needs(sim, end, load)
        return alone is None or not self._room(sim, alone, held)

    def _needs(self, sim: Simulator, until: float, load: float) -> list[_Need] | None:
        """Critical jobs waiting now or released before ``until``, by when they need a box.

        ``None`` if a predicted one has no box it can make its deadline on beside a DRAM
        ``load`` (the sum of the running jobs' demands).
        """
        out = []
        for w in sim.ready():
            if w.job.critical:
                m = self._critical_box(sim, w.job.model, w.job.deadline_us - sim.now, load)
                if m is None:
                    continue  # late already: no room helps it
                slack = w.job.deadline_us - m[0] - w.job.release_us
                start_by = w.job.release_us + ROOM_AT * slack
                out.append(_Need(m[1], start_by, start_by + m[0]))
        for st in self._streams.values():
            for rel in st.releases(sim.now, until):
                m = self._critical_box(sim, st.model, st.deadline_us, load)
                if m is None:
                    return None
                start_by = rel + ROOM_AT * (st.deadline_us - m[0])
                out.append(_Need(m[1], start_by, start_by + m[0]))
        return sorted(out, key=lambda n: n.start_by)

    def _critical_box(
        self, sim: Simulator, model: str, window: float, load: float
    ) -> tuple[float, Shape] | None:
        """(time, shape) of a critical job's minimum box for a ``window`` to its deadline.

        Timed at the DRAM share it would get beside a ``load`` (cached for the decision).
        """
        key = (model, int(window), round(load * 256))
        if key in self._boxes:
            return self._boxes[key]
        fits = []
        for shape, plan in zip(shapes(sim), sim.plans.job_plans(model), strict=True):
            pieces = plan.base_timing.pieces
            u = self._price.demand(pieces, sim)
            t = self._price.time_us(pieces, u / (u + load) if u > 0 else 1.0, sim)
            if t <= window:
                fits.append((shape[0] * shape[1], t, shape))
        got = None
        if fits:
            share = [f for f in fits if f[1] <= DEADLINE_SHARE * window]
            _, t, shape = min(share or fits)
            got = (t, shape)
        self._boxes[key] = got
        return got

    @staticmethod
    def _room(sim: Simulator, needs: list[_Need], held: list[tuple[int, float]]) -> bool:
        """Each need in turn finds a box free of the tiles held past its latest start."""
        placed = list(held)
        for need in needs:
            at = max(need.start_by, sim.now)
            busy = 0
            for m, until in placed:
                if until > at:
                    busy |= m
            positions = rect_positions(sim, need.shape)
            sim.charge(lookups=len(positions))
            spot = next((m for m, _ in positions if not m & busy), None)
            if spot is None:
                return False
            placed.append((spot, need.end))
        return True

    # ---- the static alternative --------------------------------------------------------------
    def _reserved_mask(self, sim: Simulator) -> int:
        """The last aligned box of the largest critical minimum shape (``RESERVE``)."""
        boxes = [
            m[1]
            for st in self._streams.values()
            if (m := self._critical_box(sim, st.model, st.deadline_us, 0.0)) is not None
        ]
        if not boxes:
            return 0
        shape = max(boxes, key=lambda s: s[0] * s[1])
        return rect_positions(sim, shape)[-1][0]


def _area(plan: JobPlan) -> int:
    return plan.box[0] * plan.box[1]


class _Pricing:
    """Whole-inference DRAM demand and time of piece lists, cached for one run (one chip)."""

    def __init__(self) -> None:
        self.demands: dict[int, tuple[Pieces, float]] = {}
        self.times: dict[tuple[int, int], tuple[Pieces, float]] = {}

    def demand(self, pieces: Pieces, sim: Simulator) -> float:
        """Share of the DRAM bandwidth a job would use alone over its inference."""
        got = self.demands.get(id(pieces))
        if got is not None and got[0] is pieces:
            return got[1]
        bw = sim.dram_bytes_per_cycle
        total = sum(max(c, b / bw) for c, b in pieces)
        moved = sum(b for _, b in pieces) / bw
        d = min(1.0, moved / total) if total > 0 else 0.0
        self.demands[id(pieces)] = (pieces, d)
        return d

    def time_us(self, pieces: Pieces, share: float, sim: Simulator) -> float:
        """A whole inference at a ``share`` of the bandwidth, µs (shares on a 1/256 grid)."""
        q = max(1, round(share * 256))
        got = self.times.get((id(pieces), q))
        if got is not None and got[0] is pieces:
            return got[1]
        bw = sim.dram_bytes_per_cycle * q / 256
        t = sim.cycles_to_us(sum(max(c, b / bw) for c, b in pieces))
        self.times[(id(pieces), q)] = (pieces, t)
        return t
