"""FCFS: non-preemptive, layer-temporal, whole chip, first come first served (sanity floor)."""

from __future__ import annotations

from isosched.sim.engine import Simulator
from isosched.sim.policies.common import lts


class Fcfs:
    """One job at a time on every tile, in release order, never preempted."""

    name = "fcfs"
    kind = "lts"

    def schedule(self, sim: Simulator) -> None:
        """Start the earliest released ready job when the chip is idle."""
        if sim.running() or sim.occupancy.free_tiles < sim.hw.tiles:
            return
        ready = sorted(sim.ready(), key=lambda j: (j.job.release_us, j.id))
        if ready:
            js = ready[0]
            p = lts(js, sim, sim.hw.tiles, 1.0)
            sim.charge(lookups=1)
            sim.count("placements")
            sim.start(js, tuple(range(sim.hw.tiles)), p.latency_us, p.energy_pj, pieces=p.pieces)
