"""Planaria (Ghodrati et al., MICRO 2020): dynamic architecture fission for multi-DNN inference.

Layer-temporal on spatial partitions ("pods" of the fissionable array): at every scheduling point
tiles go to jobs by a score of priority over slack; a job that cannot get a partition takes one
from running jobs of lower score, which yield at a layer boundary (their activations are already
in DRAM under LTS, so only the drain is paid) and resume later on any free partition.
"""

from __future__ import annotations

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.spatial import (
    fitting_shapes,
    lts_sizer,
    place_free,
    preempt_for,
    region_coming_free,
)


def score(js: JobState, sim: Simulator) -> float:
    """Priority over slack (µs until the deadline minus remaining work), higher is more urgent."""
    rem = js.remaining_us() if js.latency_us < 1e18 else 0.0
    slack = js.job.deadline_us - sim.now - rem
    return js.job.priority / max(slack, 1.0)


class Planaria:
    """Score-ordered spatial fission with layer-boundary preemption."""

    name = "planaria"
    kind = "lts"

    def schedule(self, sim: Simulator) -> None:
        """Place jobs by score; take partitions from lower-score runners when needed."""
        attempted = False  # one preemption per scheduling point bounds its cost
        for js in sorted(sim.ready(), key=lambda j: (-score(j, sim), j.id)):
            fit = fitting_shapes(js, sim, lts_sizer)
            if fit and place_free(js, sim, lts_sizer, "lts", any_size=False):
                continue
            mine = score(js, sim)

            def less_urgent(v: JobState, mine: float = mine, prio: int = js.job.priority) -> bool:
                return score(v, sim) < mine and v.job.priority <= prio

            if (
                fit
                and not attempted
                and js.job.deadline_us > sim.now
                and not region_coming_free(js, sim, fit)
                and preempt_for(
                    js,
                    sim,
                    fit,
                    may_take=less_urgent,
                    cost=lambda v: score(v, sim),
                    state_bytes=lambda v: 0,
                    kind="lts",
                )
            ):
                attempted = True
                continue
            place_free(js, sim, lts_sizer, "lts")
