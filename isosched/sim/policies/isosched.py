"""IsoSched (Zhao et al., arXiv 2509.12208): preemptive tile-spatial scheduling.

Every job runs as a TSS pipeline planned by ILP + LCS + placement (its profile per region shape).
A job takes the smallest free region on which it meets its deadline share. A critical job that
finds none preempts the cheapest lower-priority, non-critical jobs occupying a region of a
fitting shape; they checkpoint their pipeline state to DRAM and later resume on any free region
(the plan's placement translated: the preemption-ready library). Whether to preempt, and on how
many tiles, is decided by the multi-job allocation model (CP-SAT, 10 ms limit) over the arriving
job and the running jobs; its wall time is the decision latency. Only critical jobs preempt, and
a job is preempted at most twice: letting every higher-priority job preempt, without a bound,
made background jobs thrash under overload.
"""

from __future__ import annotations

from isosched.plan.multijob import JobDemand, allocate_jobs
from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import by_urgency, shapes, tss
from isosched.sim.policies.spatial import (
    fitting_shapes,
    place_free,
    preempt_for,
    region_coming_free,
    tss_sizer,
)


class IsoSched:
    """Preemptive TSS with checkpointed victims and multi-job budget decisions."""

    name = "isosched"
    kind = "tss"

    def schedule(self, sim: Simulator) -> None:
        """Place waiting jobs by urgency; preempt for critical or higher-priority ones."""
        attempted = False  # one preemption decision per scheduling point bounds its cost
        for js in by_urgency(sim.ready()):
            fit = fitting_shapes(js, sim, tss_sizer)
            if fit and any(sim.regions.free_region(s) for s in fit):
                place_free(js, sim, tss_sizer, ckpt_state=True, any_size=False)
                continue
            running = sim.running()
            lower = [r for r in running if r.job.priority < js.job.priority]
            lower = [r for r in lower if not r.job.critical]
            if fit and lower and js.job.critical and not attempted and js.job.deadline_us > sim.now:
                attempted = True
                if region_coming_free(js, sim, fit):
                    continue
                chosen = self._budget(js, sim, fit, running)
                mine = js.job.priority

                def lower_priority(v: JobState, mine: int = mine) -> bool:
                    return v.job.priority < mine and not v.job.critical and v.preemptions < 2

                if chosen and preempt_for(
                    js,
                    sim,
                    chosen,
                    may_take=lower_priority,
                    cost=lambda v: v.job.priority * 1e9 + v.remaining * v.latency_us,
                    state_bytes=lambda v: (
                        tss(v, sim.hw, (v.region.w, v.region.h)).state_bytes if v.region else 0
                    ),
                ):
                    continue
            place_free(js, sim, tss_sizer, ckpt_state=True)

    def _budget(
        self,
        js: JobState,
        sim: Simulator,
        fit: list[tuple[int, int]],
        running: list[JobState],
    ) -> list[tuple[int, int]]:
        """Shapes for ``js`` as the multi-job model sizes it (empty: do not preempt)."""
        hw = sim.hw
        demands = [
            JobDemand(
                js.id,
                js.job.priority,
                js.job.deadline_us - sim.now,
                tuple(
                    (s[0] * s[1], js.remaining_us(tss(js, hw, s).latency_us)) for s in shapes(hw)
                ),
            )
        ]
        for r in running:
            assert r.region is not None
            held = r.region.size
            demands.append(
                JobDemand(
                    r.id,
                    r.job.priority,
                    r.job.deadline_us - sim.now,
                    ((held, r.remaining_us()),),
                    held_tiles=held,
                    preempt_cost_us=2 * hw.cycles_to_us(hw.preemption.drain_cycles),
                )
            )
        result = allocate_jobs(demands, hw.tiles, time_limit_s=0.01)
        mine = next(a for a in result.allocations if a.job == js.id)
        if mine.tiles == 0:
            return []
        return [s for s in fit if s[0] * s[1] <= mine.tiles] or fit[:1]
