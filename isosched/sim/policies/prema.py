"""PREMA (Choi and Rhu, HPCA 2020): predictive multi-task scheduling on a preemptible NPU.

Layer-temporal, the whole chip time-multiplexed. Waiting jobs earn tokens in proportion to their
priority and to how long they waited relative to their isolated latency; jobs whose tokens reach
the threshold (the highest priority present) are candidates, and the candidate with the shortest
estimated remaining time runs. A running job is preempted (at its next layer boundary; its
activations are in DRAM under LTS) only by a candidate of higher priority; otherwise it runs to
completion.
"""

from __future__ import annotations

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import drain_us, lts


class Prema:
    """Token-based predictive scheduling with layer-boundary preemption."""

    name = "prema"
    kind = "lts"

    def __init__(self) -> None:
        self._last_us = 0

    def schedule(self, sim: Simulator) -> None:
        """Accrue tokens, pick the shortest candidate, preempt a lower-priority runner."""
        hw = sim.hw
        dt = sim.now - self._last_us
        self._last_us = sim.now
        ready = sim.ready()
        for js in ready:
            iso = lts(js, sim, hw.tiles, 1.0).latency_us
            js.tokens += js.job.priority * dt / max(iso, 1.0)
        if not ready:
            return
        threshold = max(j.job.priority for j in ready)
        candidates = [j for j in ready if j.tokens >= threshold] or [
            j for j in ready if j.job.priority == threshold
        ]

        def remaining(j: JobState) -> float:
            return j.remaining_us(lts(j, sim, hw.tiles, 1.0).latency_us)

        pick = min(candidates, key=lambda j: (remaining(j), j.job.release_us, j.id))
        running = sim.running()
        if running:
            cur = running[0]
            if pick.job.priority > cur.job.priority:
                sim.charge(lookups=1)
                sim.preempt(cur, drain_us(cur, sim))
            return
        if sim.occupancy.free_tiles < hw.tiles:  # a checkpoint is still draining
            return
        p = lts(pick, sim, hw.tiles, 1.0)
        pick.tokens = 0.0
        sim.charge(lookups=1)
        sim.count("placements")
        sim.start(pick, tuple(range(hw.tiles)), p.latency_us, p.energy_pj, pieces=p.pieces)
