"""IsoSched (Zhao et al., arXiv 2509.12208): preemptive tile-spatial scheduling by isomorphism.

Every job runs as a TSS pipeline planned by ILP + LCS for a tile budget (a box of the budgets
ladder) and holds exactly the tiles its tile graph uses — any set of tiles into which the plan's
footprint pattern embeds, not a rectangle. The rules, in the order they apply at every
scheduling point (jobs most urgent first; a preempted job before new work of its priority):

1. **Size.** A job's *minimum budget* is the smallest on which it alone finishes within
   ``DEADLINE_SHARE`` of the time to its deadline (else the smallest on which it still makes
   it). It takes more when tiles would otherwise idle: the fastest plan whose tiles fit the
   free tiles left after the minimum budgets of the jobs still waiting behind it (an idle chip
   is wasted throughput). When two or more waiting jobs compete — their minimum budgets do not
   all fit the free tiles — the multi-job CP-SAT model (:func:`~isosched.plan.allocate_jobs`,
   deterministic-time limit ``MULTIJOB_DTIME``) sizes them; its deterministic time is charged.
2. **Place on free tiles** through the placer: the plan's library (translations × symmetries,
   bit tests) for each candidate budget from the preferred one down, then one online match
   (``NODE_BUDGET`` matcher nodes) for the preferred budget that fits the free tiles.
3. **Wait or preempt.** If nothing fits, the job waits when the tiles of running jobs free up in
   time for it to meet its deadline on its minimum budget. Otherwise it is placed on free plus
   preemptible tiles — those of running jobs of strictly lower priority preempted fewer than
   ``MAX_PREEMPTIONS`` times — taking only the tiles it needs from the cheapest victims. A
   victim's cost is its drain, checkpoint, restore and reload time, plus ``MISS_PENALTY_US``
   per unit of priority (plus one) when the delay would make it miss its own deadline. One
   preemption decision per scheduling point bounds the decision's cost.
4. **Victims** stop at a data-tile boundary, write their current segment's live state to DRAM
   (nothing when they stop between segments or while they load weights), and resume — first
   among jobs of their priority — wherever their pattern embeds again (same plan: restore state
   and reload the segment's weights), or under another budget if only that fits (restarting
   the current segment).

Every placement's work (images tested, matcher nodes, CP-SAT deterministic time) is charged
in simulated time through the hardware file's ``scheduler`` section. All the online matches of
one scheduling point share ``DECISION_NODES`` matcher nodes, so a decision's cost is bounded
however many jobs wait; the rest wait for the next scheduling point.

**Ablations** are options of this one policy (``ABLATIONS`` names them as policies):
``preempt=False`` never preempts (rule 3 waits); ``library=False`` skips the plan's library
and places by online match only; ``rectangles=True`` gives every job its plan's whole box as
an axis-aligned rectangle (either orientation) of free tiles — or of free and victims' tiles,
the victims being every job the rectangle touches — instead of an arbitrary tile set;
``lcs=False`` plans every budget without Layer Concatenate and Split (each compute layer on one
tile of its own, :func:`~isosched.plan.options.single_tile_options`) and schedules as IsoSched
does otherwise.
"""

from __future__ import annotations

import math
from typing import Any

from isosched.match.placer import TOO_FEW_TILES, PlacerAnswer, Victim, place
from isosched.plan.multijob import JobDemand, allocate_jobs
from isosched.sim.engine import JobState, Simulator
from isosched.sim.jobplan import JobPlan, PlacedTiming, placed_timing
from isosched.sim.policies.common import DEADLINE_SHARE, boundary_us, by_urgency, drain_us

__all__ = [
    "ABLATIONS",
    "LOOKAHEAD",
    "MAX_PREEMPTIONS",
    "MISS_PENALTY_US",
    "DECISION_NODES",
    "MULTIJOB_DTIME",
    "NODE_BUDGET",
    "ONLINE_TRIES",
    "IsoSched",
]

#: Matcher search nodes of one online match (machine-independent budget).
NODE_BUDGET = 150

#: A job is preempted at most this many times (bounds thrashing of background work).
MAX_PREEMPTIONS = 2

#: Cost added per (priority + 1) of a victim that the preemption would make miss, µs.
MISS_PENALTY_US = 1e6

#: Plans an online match is tried for, at most, when the library misses.
ONLINE_TRIES = 2

#: Matcher nodes all the online matches of one scheduling point may take together: the work of
#: ``ONLINE_TRIES`` matches, so a decision's charged time stays bounded however many jobs wait
#: (without it, an overloaded chip made decisions of over a second of simulated time).
DECISION_NODES = ONLINE_TRIES * NODE_BUDGET

#: Waiting jobs sized at one scheduling point (most urgent first); the others wait their turn.
LOOKAHEAD = 8

#: Deterministic-time limit of one multi-job sizing (CP-SAT "deterministic seconds").
MULTIJOB_DTIME = 0.005


def mirrors_base(plan: JobPlan, tiles: tuple[int, ...], width: int) -> bool:
    """Whether ``tiles`` translate and mirror the plan's own placement, with no transpose.

    Such an image routes every edge along the mirror of its route in the plan (XY routing),
    so it keeps the plan's hops and link loads, hence its timing. A transposed image turns XY
    routes into YX ones and may load the links differently.
    """
    base = plan.base
    if not base:
        return True
    x0, y0 = base[0]
    t0 = tiles[0]
    u0, v0 = t0 % width, t0 // width
    for sx in (1, -1):
        for sy in (1, -1):
            if all(
                (t % width - u0, t // width - v0) == (sx * (x - x0), sy * (y - y0))
                for t, (x, y) in zip(tiles, base, strict=True)
            ):
                return True
    return False


def _remaining_on(js: JobState, plan: JobPlan) -> float:
    """Work left (fraction of an inference) if ``js`` continues under ``plan``."""
    if js.plan is None or js.plan.budget == plan.budget or js.timing is None:
        return js.remaining
    seg = js.current_segment()
    done = js.plan.segments[seg - 1].layers if seg > 0 else 0
    j = 0
    for i, s in enumerate(plan.segments):
        if s.layers <= done:
            j = i + 1
    j = min(j, len(plan.segments) - 1)
    return 1.0 - plan.base_timing.segment_start(j)


def _bytes(v: JobState, sim: Simulator) -> tuple[int, int]:
    """(live state, weights to reload) of a victim preempted now, bytes (0, 0 for LTS jobs).

    What :meth:`Simulator.preempt` will write and reload after its drain credit
    (``boundary_us``): nothing when it stops with nothing live, except that a weight load's
    part already done is done again (counted here as reloaded weights).
    """
    if v.plan is None:
        return 0, 0
    sim.sync(v)
    seg = v.plan.segments[v.current_segment()]
    if sim.nothing_live(v, boundary_us(v, sim)):
        if v.piece < len(v.pieces) and v.pieces[v.piece][0] <= 0.0:
            return 0, int((1.0 - v.piece_left) * seg.weight_bytes)
        return 0, 0
    return seg.state_bytes, seg.weight_bytes


#: IsoSched's own options.
DEFAULTS = {"preempt": True, "library": True, "rectangles": False, "lcs": True}

#: Ablation policies: name -> options of :class:`IsoSched`.
ABLATIONS: dict[str, dict[str, bool]] = {
    "isosched-no-preempt": {"preempt": False},
    "isosched-no-library": {"library": False},
    "isosched-rectangles": {"rectangles": True},
    "isosched-no-lcs": {"lcs": False},
}


def _rectangle(
    plan: JobPlan,
    free: int,
    width: int,
    height: int,
    victims: dict[str, Victim] | None = None,
) -> PlacerAnswer:
    """A rectangle of the plan's box (either orientation) for the rectangles ablation.

    The first all-free one in row-major order; else, with ``victims``, the cheapest one over
    free and victims' tiles, taking every victim it touches. Its tiles are the plan's own
    layout moved into it, transposed in the other orientation (:func:`_rect_answer`).
    """
    box = plan.box
    best: tuple[float, tuple[int, int, bool], tuple[str, ...]] | None = None
    tested = 0
    for bw, bh in dict.fromkeys([box, (box[1], box[0])]):
        if bw > width or bh > height:
            continue
        turned = (bw, bh) != box
        row = (1 << bw) - 1
        for y in range(height - bh + 1):
            for x in range(width - bw + 1):
                mask = 0
                for dy in range(bh):
                    mask |= row << ((y + dy) * width + x)
                tested += 1
                taken = mask & ~free
                if not taken:
                    return _rect_answer(plan, (x, y, turned), width, (), 0.0, tested)
                if not victims:
                    continue
                names = tuple(sorted(n for n, v in victims.items() if v.mask & mask))
                covered = 0
                for n in names:
                    covered |= victims[n].mask
                if taken & ~covered:
                    continue  # a tile neither free nor a victim's
                cost = sum(victims[n].cost for n in names)
                if best is None or cost < best[0]:
                    best = (cost, (x, y, turned), names)
    if best is None:
        return PlacerAnswer(False, (), "none", (), 0.0, tested, 0, "too few tiles", 0.0)
    return _rect_answer(plan, best[1], width, best[2], best[0], tested)


def _rect_answer(
    plan: JobPlan,
    at: tuple[int, int, bool],
    width: int,
    victims: tuple[str, ...],
    cost: float,
    tested: int,
) -> PlacerAnswer:
    """The plan's layout in the rectangle whose corner is ``at[:2]``, transposed if ``at[2]``.

    A plan fills its box, so the tiles are the rectangle's; vertex by vertex they are the
    plan's placement moved (timed as planned) or transposed (re-timed as placed: XY routes
    become YX ones).
    """
    x, y, turned = at
    x0 = min(bx for bx, _ in plan.base)
    y0 = min(by for _, by in plan.base)
    tiles = tuple(
        (y + bx - x0) * width + x + by - y0 if turned else (y + by - y0) * width + x + bx - x0
        for bx, by in plan.base
    )
    return PlacerAnswer(True, tiles, "library", victims, cost, tested, 0, "", 0.0)


class IsoSched:
    """Preemptive TSS placed by subgraph isomorphism on per-tile occupancy.

    Parameters
    ----------
    preempt, library, rectangles : bool
        Ablation switches (see the module docstring); the defaults are IsoSched itself.
    """

    kind = "tss"

    def __init__(
        self,
        *,
        preempt: bool = True,
        library: bool = True,
        rectangles: bool = False,
        lcs: bool = True,
    ) -> None:
        self._nodes_left = DECISION_NODES
        # Options of a waiting job, reused while nothing they depend on has changed.
        self._opts: dict[str, tuple[tuple[Any, ...], list[tuple[float, JobPlan]]]] = {}
        self.preempt = preempt
        self.library = library
        self.rectangles = rectangles
        self.lcs = lcs
        options = {"preempt": preempt, "library": library, "rectangles": rectangles, "lcs": lcs}
        self.name = next((n for n, o in ABLATIONS.items() if {**DEFAULTS, **o} == options), "")
        self.name = self.name or "isosched"

    def _online(
        self,
        sim: Simulator,
        plan: JobPlan,
        free: int,
        victims: dict[str, Victim] | None = None,
    ) -> PlacerAnswer | None:
        """One online match within what is left of the scheduling point's node budget.

        The work is charged; ``None`` when the budget is spent.
        """
        budget = min(NODE_BUDGET, self._nodes_left)
        if budget <= 0:
            return None
        w, h = sim.hw.width, sim.hw.height
        ans = place(plan.pattern, plan.hops, free, w, h, victims=victims, node_budget=budget)
        self._nodes_left -= ans.nodes
        sim.charge(nodes=ans.nodes)
        if ans.wall_limited:
            sim.wall_limited = True
        if not ans.found and ans.detail != TOO_FEW_TILES:
            sim.count("placement_failures")
        return ans

    def schedule(self, sim: Simulator) -> None:
        """Size, place, and preempt for the waiting jobs (see the module docstring)."""
        ready = by_urgency(sim.ready())
        if not ready:
            return
        self._nodes_left = DECISION_NODES
        free_n = sim.occupancy.free_tiles
        lowest = min(
            (r.job.priority for r in sim.running() if r.preemptions < MAX_PREEMPTIONS),
            default=None,
        )
        # Only the first LOOKAHEAD waiting jobs are sized: the rest cannot be placed before them.
        head = ready[:LOOKAHEAD]
        minimum = {js.id: self._minimum(js, sim) for js in head}
        behind = [0] * (len(head) + 1)
        for i in range(len(head) - 1, -1, -1):
            p = minimum[head[i].id]
            behind[i] = behind[i + 1] + (p.tiles if p is not None else 0)
        sized = self._multijob(head, minimum, sim) if free_n else {}
        preempted = not self.preempt  # the no-preemption ablation never preempts
        for i, js in enumerate(ready):
            can_preempt = not preempted and lowest is not None and lowest < js.job.priority
            free_n = sim.occupancy.free_tiles
            if not free_n and not can_preempt:
                continue
            options = self._options(js, sim)
            if not options:
                continue  # it would miss its deadline on any budget: it cannot start usefully
            own = js.plan
            if own is not None and not self._must_preempt(js, sim, own):
                # A victim resumes on its own plan (isomorphic resume) unless waiting for room
                # for it would miss its deadline; only then does it restart under another.
                options = [o for o in options if o[1] is own] or options
            least = minimum.get(js.id) if i < len(head) else self._minimum(js, sim)
            rest = behind[i + 1] if i < len(head) else 0
            if free_n and self._place_free(js, sim, options, least, sized.get(js.id), rest):
                continue
            if can_preempt and self._must_preempt(js, sim, least):
                preempted = self._preempt(js, sim, options)

    # ---- sizing ------------------------------------------------------------------------
    def _options(self, js: JobState, sim: Simulator) -> list[tuple[float, JobPlan]]:
        """Plans on which the job alone still meets its deadline: (time left µs, plan)."""
        key = (sim.state_key(), js.version, js.remaining, id(js.plan))
        got = self._opts.get(js.id)
        if got is not None and got[0] == key:
            return got[1]
        slack = js.job.deadline_us - sim.now
        out = []
        for plan in sim.plans.job_plans(js.job.model, self.lcs):
            # At the DRAM share it would get beside the running jobs.
            t = _remaining_on(js, plan) * sim.estimate_us(plan.base_timing.pieces)
            if t <= slack:
                out.append((t, plan))
        if len(self._opts) > 4096:
            self._opts.clear()
        self._opts[js.id] = (key, out)
        return out

    def _minimum(self, js: JobState, sim: Simulator) -> JobPlan | None:
        """Smallest plan meeting the deadline share (else the deadline), or ``None``."""
        opts = self._options(js, sim)
        if not opts:
            return None
        slack = js.job.deadline_us - sim.now
        share = [p for t, p in opts if t <= DEADLINE_SHARE * slack]
        pool = share or [p for _, p in opts]
        return min(pool, key=lambda p: (p.tiles, p.budget))

    def _multijob(
        self, ready: list[JobState], minimum: dict[str, JobPlan | None], sim: Simulator
    ) -> dict[str, int]:
        """Budgets (tiles) of competing waiting jobs by the multi-job CP-SAT model."""
        free = sim.occupancy.free_tiles
        contenders: list[JobState] = []
        need = 0
        for js in ready:  # the most urgent jobs, up to the first whose minimum does not fit
            p = minimum[js.id]
            if p is None:
                continue
            contenders.append(js)
            need += p.tiles
            if need > free:
                break
        if len(contenders) < 2 or need <= free:
            return {}
        demands = []
        for js in contenders:
            opts: dict[int, float] = {}
            for t, plan in self._options(js, sim):
                if plan.tiles not in opts or t < opts[plan.tiles]:
                    opts[plan.tiles] = t
            demands.append(
                JobDemand(
                    js.id,
                    js.job.priority + (100 if js.job.critical else 0),
                    js.job.deadline_us - sim.now,
                    tuple(sorted(opts.items())),
                )
            )
        result = allocate_jobs(demands, free, dtime_limit=MULTIJOB_DTIME)
        sim.charge(dtime=result.deterministic_time)
        if result.wall_limited:
            sim.wall_limited = True
        return {a.job: a.tiles for a in result.allocations}

    # ---- placing -----------------------------------------------------------------------
    def _candidates(
        self,
        options: list[tuple[float, JobPlan]],
        minimum: JobPlan | None,
        sized: int | None,
        cap: int,
    ) -> list[JobPlan]:
        """Plans to try, preferred first."""
        plans = [p for _, p in sorted(options, key=lambda o: (o[0], o[1].tiles))]
        if sized is not None:
            if sized == 0:
                return []
            chosen = [p for p in plans if p.tiles == sized]
            rest = [p for p in plans if p.tiles < sized]
            return chosen + sorted(rest, key=lambda p: -p.tiles)
        floor = minimum.tiles if minimum is not None else 0
        roomy = [p for p in plans if p.tiles <= max(cap, floor)]
        tight = sorted((p for p in plans if p not in roomy), key=lambda p: p.tiles)
        return roomy + tight

    def _place_free(
        self,
        js: JobState,
        sim: Simulator,
        options: list[tuple[float, JobPlan]],
        minimum: JobPlan | None,
        sized: int | None,
        behind: int,
    ) -> bool:
        occ = sim.occupancy
        free = occ.available_mask
        n_free = free.bit_count()
        cap = n_free - behind
        plans = self._candidates(options, minimum, sized, cap)
        plans = [p for p in plans if p.tiles <= n_free]
        if not plans:
            return False
        w, h = sim.hw.width, sim.hw.height
        if self.rectangles:
            for plan in plans:
                ans = _rectangle(plan, free, w, h)
                sim.charge(lookups=ans.lookups)
                if ans.found:
                    self._start(js, sim, plan, ans)
                    return True
            return False
        missed: list[JobPlan] = []
        hit: tuple[JobPlan, PlacerAnswer] | None = None
        for plan in plans if self.library else []:
            lib = sim.plans.library(js.job.model, plan.box, self.lcs)
            ans = place(plan.pattern, plan.hops, free, w, h, library=lib, online=False)
            sim.charge(lookups=ans.lookups)
            if ans.found:
                hit = (plan, ans)
                break
            missed.append(plan)
        # An online match for a better plan the library could not place is worth its charged
        # time only if it would still finish earlier than the library's answer.
        match_us = NODE_BUDGET * sim.hw.scheduler.match_node_ns / 1e3
        est = sim.estimate_us
        after = _remaining_on(js, hit[0]) * est(hit[0].base_timing.pieces) if hit else math.inf
        if not self.library:
            missed = plans
        tried = [
            p for p in missed if _remaining_on(js, p) * est(p.base_timing.pieces) + match_us < after
        ][:ONLINE_TRIES]
        for plan in tried:
            got = self._online(sim, plan, free)
            if got is None:
                break
            if got.found:
                self._start(js, sim, plan, got)
                return True
        if hit is not None:
            self._start(js, sim, *hit)
            return True
        return False

    def _timing(self, sim: Simulator, plan: JobPlan, ans: PlacerAnswer) -> PlacedTiming:
        """The timing of ``ans`` as placed (the plan's own when it only mirrors the plan).

        A library image that translates or mirrors the plan's placement keeps its timing
        (:func:`mirrors_base`); a transposed image and an online match are re-timed.
        """
        w = sim.hw.width
        if ans.source == "library" and mirrors_base(plan, ans.tiles, w):
            return plan.base_timing
        return placed_timing(plan, sim.hw, [(x % w, x // w) for x in ans.tiles])

    def _start(self, js: JobState, sim: Simulator, plan: JobPlan, ans: PlacerAnswer) -> None:
        sim.count("placements")
        sim.count("library_hits" if ans.source == "library" else "online_matches")
        t = self._timing(sim, plan, ans)
        share = plan.budget / sim.hw.tiles
        sim.start(js, ans.tiles, t.latency_us, t.energy_pj, plan=plan, timing=t, dram_share=share)

    # ---- preempting --------------------------------------------------------------------
    def _must_preempt(self, js: JobState, sim: Simulator, minimum: JobPlan | None) -> bool:
        """Whether waiting for running jobs to free tiles would make ``js`` miss its deadline."""
        if minimum is None:
            return False
        need = minimum.tiles
        t_need = _remaining_on(js, minimum) * sim.estimate_us(minimum.base_timing.pieces)
        free = sim.occupancy.free_tiles
        if free >= need:
            return False  # tiles enough, only fragmented: the next finish will do
        releases = sorted((sim.finish_estimate_us(r), len(r.tiles)) for r in sim.holding())
        for when, n in releases:
            free += n
            if free >= need:
                return when + t_need > js.job.deadline_us
        return True

    def _victim_cost(self, v: JobState, sim: Simulator, delay_us: float) -> float:
        state, weights = _bytes(v, sim)
        moved = sim.dram_us(state, v.dram_share) * 2 + sim.dram_us(weights, v.dram_share)
        cost = drain_us(v, sim) - boundary_us(v, sim) + moved  # its run to the boundary is work
        if sim.now + v.remaining_us() + cost + delay_us > v.job.deadline_us:
            cost += MISS_PENALTY_US * (v.job.priority + 1)
        return cost

    def _preempt(self, js: JobState, sim: Simulator, options: list[tuple[float, JobPlan]]) -> bool:
        """Take the tiles ``js`` needs from the cheapest victims; returns whether it did."""
        runners = [
            r
            for r in sim.running()
            if r.job.priority < js.job.priority and r.preemptions < MAX_PREEMPTIONS
        ]
        if not runners:
            return False
        for r in runners:
            sim.sync(r)  # their current segment decides what a checkpoint moves
        occ = sim.occupancy
        free = occ.available_mask
        w, h = sim.hw.width, sim.hw.height
        slack_end = js.job.deadline_us
        # Smallest budget first: take only the tiles needed.
        for t_run, plan in sorted(options, key=lambda o: (o[1].tiles, o[0])):
            victims = {
                r.id: Victim(occ.held_mask(r.id), self._victim_cost(r, sim, t_run)) for r in runners
            }
            if self.rectangles:
                ans = _rectangle(plan, free, w, h, victims)
                sim.charge(lookups=ans.lookups)
                if not ans.found:
                    continue
            elif self.library:
                lib = sim.plans.library(js.job.model, plan.box, self.lcs)
                ans = place(
                    plan.pattern, plan.hops, free, w, h, library=lib, victims=victims, online=False
                )
                sim.charge(lookups=ans.lookups, nodes=ans.nodes)
            else:
                ans = place(plan.pattern, plan.hops, free, w, h, victims=victims, online=False)
            if not ans.found:
                got = self._online(sim, plan, free, victims)
                if got is None or not got.found:
                    continue
                ans = got
            timing = self._timing(sim, plan, ans)
            ready_at = (
                max(
                    (sim.now + drain_us(v, sim) + sim.dram_us(_bytes(v, sim)[0], v.dram_share))
                    for v in (sim.jobs[name] for name in ans.victims)
                )
                if ans.victims
                else float(sim.now)
            )
            if ready_at + _remaining_on(js, plan) * sim.estimate_us(timing.pieces) > slack_end:
                continue
            for name in ans.victims:
                v = sim.jobs[name]
                state, weights = _bytes(v, sim)
                sim.preempt(v, drain_us(v, sim), state, weights, credit_us=boundary_us(v, sim))
            if not ans.victims:
                self._start(js, sim, plan, ans)
                return True
            sim.count("placements")
            sim.count("library_hits" if ans.source == "library" else "online_matches")
            sim.reserve(
                js,
                ans.tiles,
                latency_us=timing.latency_us,
                energy_pj=timing.energy_pj,
                plan=plan,
                timing=timing,
                dram_share=plan.budget / sim.hw.tiles,
            )
            return True
        return False
