"""Policies that partition the chip by rule: aligned power-of-two partitions on per-tile occupancy.

HASP, Planaria, MoCA and CD-MSA hand out partitions (boxes of the budgets ladder at aligned
positions); the job holds the whole partition. The rule is theirs, expressed on the same
per-tile occupancy map as IsoSched's arbitrary tile sets.
"""

from __future__ import annotations

from collections.abc import Callable

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import (
    DEADLINE_SHARE,
    Shape,
    free_rect,
    lts,
    rect_positions,
    shapes,
    start_tss,
    tss,
)

__all__ = [
    "Sizer",
    "fitting_shapes",
    "lts_sizer",
    "place_free",
    "region_coming_free",
    "start_on",
    "tss_sizer",
]

#: Latency of a job on a partition shape, µs per inference.
Sizer = Callable[[JobState, Simulator, Shape], float]


def tss_sizer(js: JobState, sim: Simulator, shape: Shape) -> float:
    """TSS latency on a partition (the plan's own placement translated into it)."""
    return tss(js, sim, shape).base_timing.latency_us


def lts_sizer(js: JobState, sim: Simulator, shape: Shape) -> float:
    """LTS latency on a partition with its proportional DRAM share."""
    return lts(js, sim, shape[0] * shape[1]).latency_us


def fitting_shapes(js: JobState, sim: Simulator, size: Sizer) -> list[Shape]:
    """Shapes on which the job alone finishes within the deadline share, smallest first."""
    slack = js.job.deadline_us - sim.now
    ok = [s for s in shapes(sim) if js.remaining_us(size(js, sim, s)) <= DEADLINE_SHARE * slack]
    return list(reversed(ok))


def start_on(js: JobState, sim: Simulator, tiles: tuple[int, ...], shape: Shape, kind: str) -> None:
    """Start (or resume) ``js`` on a partition of ``shape``: TSS from its plan, else LTS."""
    share = shape[0] * shape[1] / sim.hw.tiles
    sim.count("placements")
    if kind == "tss":
        start_tss(js, sim, tiles, tss(js, sim, shape), share)
    else:
        p = lts(js, sim, shape[0] * shape[1], 1.0)
        sim.start(js, tiles, p.latency_us, p.energy_pj, dram_share=share, pieces=p.pieces)


def place_free(js: JobState, sim: Simulator, size: Sizer, kind: str, any_size: bool = True) -> bool:
    """Start ``js`` on a free partition; returns whether it started.

    The smallest partition that meets its deadline share, else a larger one, else (``any_size``)
    the largest free one on which it can still finish before its deadline.
    """
    smallest = shapes(sim)[-1]
    if sim.occupancy.free_tiles < smallest[0] * smallest[1]:
        return False
    fit = fitting_shapes(js, sim, size)
    slack = js.job.deadline_us - sim.now
    # Too small for the deadline share, but the job can still make its deadline alone: largest
    # first. A partition on which it would miss anyway is not taken (it would only block others).
    rest = [s for s in shapes(sim) if s not in fit and js.remaining_us(size(js, sim, s)) <= slack]
    for shape in fit + rest if any_size else fit:
        tiles = free_rect(sim, shape)
        if tiles is not None:
            start_on(js, sim, tiles, shape, kind)
            return True
    return False


def region_coming_free(js: JobState, sim: Simulator, shapes_: list[Shape]) -> bool:
    """Whether a partition of one of ``shapes_`` is being freed by checkpointing jobs already."""
    occ = sim.occupancy
    for shape in shapes_:
        for m, _ in rect_positions(sim, shape):
            holders = occ.holders(m & ~occ.free_mask)
            if holders and all(sim.jobs[o].state == "checkpointing" for o in holders):
                return True
    return False
