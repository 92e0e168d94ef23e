"""What every policy shares: budgets, partitions by rule, profiles, drains, urgency order."""

from __future__ import annotations

from functools import lru_cache

from isosched.sim.engine import JobState, Simulator
from isosched.sim.jobplan import JobPlan
from isosched.sim.planbook import Profile

__all__ = [
    "DEADLINE_SHARE",
    "Shape",
    "by_urgency",
    "boundary_us",
    "drain_us",
    "free_rect",
    "lts",
    "lts_state_bytes",
    "rect_positions",
    "shapes",
    "start_tss",
    "tss",
]

#: A job is sized so that it alone would finish within this share of its relative deadline.
DEADLINE_SHARE = 0.5

Shape = tuple[int, int]


def shapes(sim: Simulator) -> list[Shape]:
    """Tile budgets (box shapes) of the chip, largest first."""
    return sim.plans.budgets


def tss(js: JobState, sim: Simulator, shape: Shape) -> JobPlan:
    """The TSS plan of a job's model for a ``shape`` box."""
    return sim.plans.job_plan(js.job.model, shape)


def lts(js: JobState, sim: Simulator, tiles: int, share: float | None = None) -> Profile:
    """LTS profile on ``tiles`` tiles, with a DRAM share proportional to them by default."""
    return sim.plans.lts(js.job.model, tiles, tiles / sim.hw.tiles if share is None else share)


@lru_cache(maxsize=256)
def _rects(width: int, height: int, w: int, h: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    out = []
    for y in range(0, height - h + 1, h):
        for x in range(0, width - w + 1, w):
            tiles = tuple((y + j) * width + x + i for j in range(h) for i in range(w))
            m = 0
            for t in tiles:
                m |= 1 << t
            out.append((m, tiles))
    return tuple(out)


def rect_positions(sim: Simulator, shape: Shape) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Every aligned position of a ``shape`` partition: ``(bit set, tiles)``, row order."""
    return _rects(sim.hw.width, sim.hw.height, shape[0], shape[1])


def free_rect(sim: Simulator, shape: Shape) -> tuple[int, ...] | None:
    """The first free aligned partition of ``shape`` (its tiles), charging the positions tested."""
    avail = sim.occupancy.available_mask
    tested = 0
    for m, tiles in rect_positions(sim, shape):
        tested += 1
        if m & avail == m:
            sim.charge(lookups=tested)
            return tiles
    sim.charge(lookups=tested)
    return None


def drain_us(js: JobState, sim: Simulator) -> float:
    """Time for a running job to reach a safe stopping point and stop there, µs.

    The hardware's drain plus ``boundary_us``, the part in which the job runs on (and is
    credited for: pass it to ``Simulator.preempt`` as ``credit_us``).
    """
    return sim.cycles_to_us(sim.hw.preemption.drain_cycles) + boundary_us(js, sim)


def boundary_us(js: JobState, sim: Simulator) -> float:
    """Time a running job runs on to its next safe stopping point, µs.

    TSS: to the next data-tile boundary of its segment's pipeline (its data tiles evenly through
    the pipeline's piece; at most one of them; none while it loads weights or restores). LTS:
    the mean layer time (the next layer boundary, on average; none while it restores).
    """
    sim.sync(js)
    if js.plan is not None:
        seg = js.plan.segments[js.current_segment()]
        return sim.until_mark_us(js, seg.data_tiles)
    if js.progress_from_us > sim.now:
        return 0.0  # restoring (or a charged decision): it stops at once
    layers = max(1, len(sim.plans.graph(js.job.model)))
    return js.latency_us / layers


def lts_state_bytes(js: JobState, sim: Simulator) -> int:
    """Activations an LTS job holds in SRAM where its drain stops it, bytes.

    What a checkpoint there must write to DRAM: at the layer boundary it reaches after
    ``boundary_us`` more running; 0 for TSS jobs (their plans give their segment's live state).
    """
    if js.plan is not None or not js.tiles:
        return 0
    done = sim.done_after(js, boundary_us(js, sim))
    p = sim.plans.lts(js.job.model, len(js.tiles), 1.0)
    return p.state_bytes(done, sim.dram_bytes_per_cycle)


def start_tss(
    js: JobState, sim: Simulator, tiles: tuple[int, ...], plan: JobPlan, share: float
) -> None:
    """Start a TSS job on tiles that embed ``plan``'s placement as stored (an isometric image)."""
    t = plan.base_timing
    sim.start(js, tiles, t.latency_us, t.energy_pj, plan=plan, timing=t, dram_share=share)


def by_urgency(jobs: list[JobState]) -> list[JobState]:
    """Critical first, then higher priority, preempted before new, earlier deadline, release."""
    return sorted(
        jobs,
        key=lambda j: (
            not j.job.critical,
            -j.job.priority,
            j.preemptions == 0,
            j.job.deadline_us,
            j.job.release_us,
            j.id,
        ),
    )
