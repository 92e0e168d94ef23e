"""Shared mechanics of the spatial policies: place on free regions, take regions by preemption."""

from __future__ import annotations

from collections.abc import Callable

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import DEADLINE_SHARE, checkpoint, lts, shapes, tss
from isosched.sim.profiles import Profile
from isosched.sim.regions import Region

__all__ = ["Sizer", "fitting_shapes", "place_free", "preempt_for", "region_coming_free"]

Sizer = Callable[[JobState, Simulator, tuple[int, int]], Profile]


def tss_sizer(js: JobState, sim: Simulator, shape: tuple[int, int]) -> Profile:
    """TSS profile of a job on a shape."""
    return tss(js, sim.hw, shape)


def lts_sizer(js: JobState, sim: Simulator, shape: tuple[int, int]) -> Profile:
    """LTS profile on a shape with its proportional DRAM share."""
    return lts(js, sim.hw, shape)


def fitting_shapes(js: JobState, sim: Simulator, size: Sizer) -> list[tuple[int, int]]:
    """Shapes on which the job alone finishes within the deadline share, smallest first."""
    slack = js.job.deadline_us - sim.now
    ok = [
        s
        for s in shapes(sim.hw)
        if js.remaining_us(size(js, sim, s).latency_us) <= DEADLINE_SHARE * slack
    ]
    return list(reversed(ok))


def start_on(js: JobState, sim: Simulator, region: Region, size: Sizer, ckpt_state: bool) -> None:
    """Start (or resume) ``js`` on ``region``; resuming restores its state if it was saved."""
    p = size(js, sim, (region.w, region.h))
    restore = checkpoint(p.state_bytes if ckpt_state else 0, sim.hw)[1]
    sim.start(js, region, p.latency_us, p.energy_pj, restore_us=restore)


def place_free(
    js: JobState, sim: Simulator, size: Sizer, ckpt_state: bool, any_size: bool = True
) -> bool:
    """Start ``js`` on a free region; returns whether it started.

    The smallest region that meets its deadline share, else a larger one, else (``any_size``)
    the largest free one on which it can still finish before its deadline.
    """
    smallest = shapes(sim.hw)[-1]
    if sim.regions.free_tiles < smallest[0] * smallest[1]:
        return False
    fit = fitting_shapes(js, sim, size)  # smallest fitting first, larger fitting after
    slack = js.job.deadline_us - sim.now
    # Too small for the deadline share, but the job can still make its deadline alone: largest
    # first. A region on which it would miss anyway is not taken (it would only block others).
    rest = [
        s
        for s in shapes(sim.hw)
        if s not in fit and js.remaining_us(size(js, sim, s).latency_us) <= slack
    ]
    tried = fit + rest if any_size else fit
    for shape in tried:
        r = sim.regions.free_region(shape)
        if r is not None:
            start_on(js, sim, r, size, ckpt_state)
            return True
    return False


def region_coming_free(js: JobState, sim: Simulator, shapes_: list[tuple[int, int]]) -> bool:
    """Whether a region of one of ``shapes_`` is being freed by checkpointing jobs already."""
    for shape in shapes_:
        for r in sim.regions.positions(shape):
            occ = sim.regions.occupants(r)
            if occ and all(sim.jobs[o].state == "checkpointing" for o in occ):
                return True
    return False


def preempt_for(
    js: JobState,
    sim: Simulator,
    shapes_: list[tuple[int, int]],
    may_take: Callable[[JobState], bool],
    cost: Callable[[JobState], float],
    state_bytes: Callable[[JobState], int],
) -> bool:
    """Preempt the cheapest running jobs that free a region of one of ``shapes_``.

    Shapes are tried in order. Returns whether victims were preempted (``js`` starts when they
    finish checkpointing).
    """
    for shape in shapes_:
        best: tuple[float, list[JobState]] | None = None
        for r in sim.regions.positions(shape):
            occ = [sim.jobs[o] for o in sim.regions.occupants(r)]
            if not occ or any(o.state != "running" or not may_take(o) for o in occ):
                continue
            c = sum(cost(o) for o in occ)
            if best is None or c < best[0]:
                best = (c, occ)
        if best is not None:
            for victim in best[1]:
                ck, _, energy = checkpoint(state_bytes(victim), sim.hw)
                sim.preempt(victim, ck, energy)
            return True
    return False
