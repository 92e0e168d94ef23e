"""CD-MSA (Wang, Bai and Sun, IEEE TPDS 2023): deadline-aware multi-DNN scheduling.

Cooperative scheduling on multiple systolic arrays, layer-temporal. The chip is a set of equal
arrays (quarter-chip partitions). Jobs are ordered by earliest deadline, ties by least laxity; a
job is admitted only while the density test holds (Σ remaining / time to deadline ≤ number of
arrays); admitted jobs run on an array each, taking it from a running job outside the admitted
set, which yields at its next layer boundary (cooperative preemption). Deferred jobs use arrays
no admitted job needs. Dynamic task fusion is not modelled.
"""

from __future__ import annotations

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import drain_us, free_rect, lts, shapes
from isosched.sim.policies.spatial import start_on


class CdMsa:
    """EDF with laxity and a density schedulability test on fixed arrays."""

    name = "cdmsa"
    kind = "lts"

    def schedule(self, sim: Simulator) -> None:
        """Admit by EDF under the density test; yield non-admitted runners; fill free arrays."""
        hw = sim.hw
        all_shapes = shapes(sim)
        array = all_shapes[min(2, len(all_shapes) - 1)]
        arrays = hw.tiles // (array[0] * array[1])

        def remaining(j: JobState) -> float:
            return j.remaining_us(lts(j, sim, array[0] * array[1]).latency_us)

        def key(j: JobState) -> tuple[int, float, str]:
            laxity = j.job.deadline_us - sim.now - remaining(j)
            return (j.job.deadline_us, laxity, j.id)

        active = [*sim.running(), *sim.ready()]
        admitted: list[JobState] = []
        density = 0.0
        for j in sorted(active, key=key):
            window = max(j.job.deadline_us - sim.now, 1.0)
            d = remaining(j) / window
            if len(admitted) < arrays and density + d <= arrays:
                admitted.append(j)
                density += d
        keep = {j.id for j in admitted}
        # Admitted jobs get arrays, taking them from non-admitted runners (latest deadline
        # first) at a layer boundary when none is free.
        for j in admitted:
            if j.state != "waiting" or j.reservation is not None:
                continue
            tiles = free_rect(sim, array)
            if tiles is not None:
                start_on(j, sim, tiles, array, "lts")
                continue
            victims = sorted(
                (r for r in sim.running() if r.id not in keep),
                key=lambda r: (-r.job.deadline_us, r.id),
            )
            if victims:
                sim.preempt(victims[0], drain_us(victims[0], sim))
            break
        # Work-conserving: deferred jobs may use arrays nobody admitted needs.
        for j in sorted(sim.ready(), key=key):
            tiles = free_rect(sim, array)
            if tiles is None:
                break
            start_on(j, sim, tiles, array, "lts")
