"""HASP (Li et al., IEEE TC 73(2), 2024): hierarchical asynchronous parallelism for multi-NN tasks.

Tile-spatial and non-preemptive: each task runs as a pipeline on its own spatial partition (an
aligned box of the budgets ladder, the same TSS plans as IsoSched, translated into it) on free
tiles only, holding the whole partition (resource isolation); when none is large enough it waits
in a priority queue (critical first) and partitions are re-balanced only at task boundaries.
"""

from __future__ import annotations

from isosched.sim.engine import Simulator
from isosched.sim.policies.common import by_urgency
from isosched.sim.policies.spatial import place_free, tss_sizer


class Hasp:
    """TSS partitions on free tiles, never preempted."""

    name = "hasp"
    kind = "tss"

    def schedule(self, sim: Simulator) -> None:
        """Place waiting jobs, most urgent first, on free partitions."""
        for js in by_urgency(sim.ready()):
            place_free(js, sim, tss_sizer, "tss")
