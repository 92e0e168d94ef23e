"""Helpers every policy shares: region shapes, right-sized budgets, checkpoint costs."""

from __future__ import annotations

from isosched.hw.model import Hardware
from isosched.sim.engine import JobState, Simulator
from isosched.sim.profiles import Profile, lts_profile, tss_profile
from isosched.sim.regions import Region, region_shapes

__all__ = [
    "DEADLINE_SHARE",
    "by_urgency",
    "checkpoint",
    "free_region",
    "lts",
    "shapes",
    "tss",
]

#: A job is sized so that it alone would finish within this share of its relative deadline.
DEADLINE_SHARE = 0.5

#: Smallest region, in tiles (a quarter of an 8×8 chip's quarter).
MIN_REGION_TILES = 4


def shapes(hw: Hardware) -> list[tuple[int, int]]:
    """Region shapes of the chip, largest first."""
    return region_shapes(hw.width, hw.height, smallest=min(MIN_REGION_TILES, hw.tiles))


_CACHE: dict[tuple[int, str, str, tuple[int, int], float], Profile] = {}


def tss(js: JobState, hw: Hardware, shape: tuple[int, int]) -> Profile:
    """TSS profile of a job's model on a region shape."""
    key = (id(hw), "tss", js.job.model, shape, 0.0)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = tss_profile(js.job.model, hw, shape)
    return hit


def lts(js: JobState, hw: Hardware, shape: tuple[int, int], share: float | None = None) -> Profile:
    """LTS profile on a region shape, with DRAM share by default proportional to its tiles."""
    k = shape[0] * shape[1]
    frac = share if share is not None else k / hw.tiles
    key = (id(hw), "lts", js.job.model, shape, frac)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = lts_profile(js.job.model, hw, k, frac)
    return hit


def checkpoint(state_bytes: int, hw: Hardware) -> tuple[float, float, float]:
    """Preemption cost: (checkpoint µs, restore µs, energy pJ).

    Moving ``state_bytes`` of live state to DRAM and back, plus the fixed drain and restart
    times of the hardware file.
    """
    per_us = hw.dram_bytes_per_cycle * hw.clock_ghz * 1e3
    move_us = state_bytes / per_us
    drain = hw.cycles_to_us(hw.preemption.drain_cycles)
    restore = hw.cycles_to_us(hw.preemption.restore_cycles)
    return drain + move_us, restore + move_us, 2 * state_bytes * 8 * hw.energy.dram_pj_per_bit


def free_region(sim: Simulator, shape: tuple[int, int]) -> Region | None:
    """A free aligned region of ``shape``."""
    return sim.regions.free_region(shape)


def by_urgency(jobs: list[JobState]) -> list[JobState]:
    """Critical first, then higher priority, then earlier deadline, then earlier release."""
    return sorted(
        jobs,
        key=lambda j: (not j.job.critical, -j.job.priority, j.job.deadline_us, j.job.release_us),
    )
