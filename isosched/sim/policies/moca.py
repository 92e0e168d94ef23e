"""MoCA (Kim et al., HPCA 2023): memory-centric adaptive execution for multi-tenant DNNs.

Layer-temporal on spatial partitions placed by priority and slack (as Planaria), plus the
memory side: at every scheduling point the DRAM bandwidth is re-divided among the running jobs
in proportion to priority × urgency (remaining work over slack) — the engine splits bandwidth by
demand times these weights — throttling the others, so an urgent job's memory-bound layers speed
up at the expense of background jobs.
"""

from __future__ import annotations

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.planaria import Planaria


def _weight(js: JobState, sim: Simulator) -> float:
    slack = max(js.job.deadline_us - sim.now, 1.0)
    return js.job.priority * max(js.remaining_us(), 1.0) / slack


class Moca(Planaria):
    """Planaria-style partitions with DRAM bandwidth shares by priority and urgency."""

    name = "moca"
    kind = "lts"

    def schedule(self, sim: Simulator) -> None:
        """Place jobs, then re-divide DRAM bandwidth among the runners."""
        super().schedule(sim)
        running = sim.running()
        if not running:
            return
        for r in running:
            sim.set_dram_weight(r, _weight(r, sim))
