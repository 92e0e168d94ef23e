"""FCFS: non-preemptive, layer-temporal, whole chip, first come first served (sanity floor)."""

from __future__ import annotations

from isosched.sim.engine import Simulator
from isosched.sim.policies.common import lts
from isosched.sim.regions import Region


class Fcfs:
    """One job at a time on every tile, in release order, never preempted."""

    name = "fcfs"
    kind = "lts"

    def schedule(self, sim: Simulator) -> None:
        """Start the earliest released ready job when the chip is idle."""
        if sim.running() or sim.regions.owner:
            return
        ready = sorted(sim.ready(), key=lambda j: (j.job.release_us, j.id))
        if ready:
            js = ready[0]
            whole = (sim.hw.width, sim.hw.height)
            p = lts(js, sim.hw, whole, 1.0)
            sim.start(js, Region(0, 0, *whole), p.latency_us, p.energy_pj)
