"""Metrics of a replay (DESIGN.md §7, CONTRACTS.md: replay)."""

from __future__ import annotations

import statistics
from typing import Any

from isosched.sim.engine import JobState, Run

__all__ = ["job_record", "percentile", "summarize"]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation; ``None`` for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _met(js: JobState) -> bool:
    return js.finish_us is not None and js.finish_us <= js.job.deadline_us


def job_record(js: JobState) -> dict[str, Any]:
    """One line of ``<policy>.jobs.jsonl``."""
    return {
        "job": js.id,
        "stream": js.job.stream,
        "model": js.job.model,
        "release_us": js.job.release_us,
        "start_us": js.started_us,
        "finish_us": js.finish_us,
        "deadline_us": js.job.deadline_us,
        "met": _met(js),
        "critical": js.job.critical,
        "priority": js.job.priority,
        "preemptions": js.preemptions,
        "energy_uj": js.energy_pj * 1e-6,
        "intervals": js.intervals,
    }


def summarize(run: Run, isolated_us: dict[str, float] | None = None) -> dict[str, Any]:
    """Per-policy metrics: satisfaction, LBT, latency percentiles, energy, decision latency.

    Unfinished jobs count as missed; latency percentiles are over finished jobs. With
    ``isolated_us`` (each job's latency alone on the whole chip), also ANTT (mean of turnaround
    over isolated latency) and STP (sum of isolated latency over turnaround), over finished jobs.
    """
    jobs = run.jobs
    met = sum(_met(j) for j in jobs)
    crit = [j for j in jobs if j.job.critical]
    crit_met = sum(_met(j) for j in crit)
    lat_ms = [(j.finish_us - j.job.release_us) / 1e3 for j in jobs if j.finish_us is not None]
    done = sum(j.finish_us is not None for j in jobs)
    energy_mj = sum(j.energy_pj for j in jobs) * 1e-9
    busy_tile_us = sum(
        (iv["end_us"] - iv["start_us"]) * len(iv["tiles"]) for j in jobs for iv in j.intervals
    )
    ckpt_us = sum(
        iv["end_us"] - iv["start_us"]
        for j in jobs
        for iv in j.intervals
        if iv["kind"] in ("checkpoint", "restore")
    )
    duration_s = run.duration_s
    antt = stp = None
    if isolated_us:
        ratios = [
            (j.finish_us - j.job.release_us) / isolated_us[j.id]
            for j in jobs
            if j.finish_us is not None and isolated_us.get(j.id)
        ]
        if ratios:
            antt = statistics.fmean(ratios)
            stp = sum(1 / r for r in ratios if r > 0)
    return {
        "jobs": len(jobs),
        "met": met,
        "finished": done,
        "critical_jobs": len(crit),
        "critical_met": crit_met,
        "critical_satisfaction": crit_met / len(crit) if crit else 1.0,
        "satisfaction": met / len(jobs) if jobs else 1.0,
        "lbt_per_s": met / duration_s if duration_s > 0 else 0.0,
        "duration_s": duration_s,
        "p50_latency_ms": percentile(lat_ms, 0.5),
        "p99_latency_ms": percentile(lat_ms, 0.99),
        "p999_latency_ms": percentile(lat_ms, 0.999),
        "mean_latency_ms": statistics.fmean(lat_ms) if lat_ms else None,
        "energy_mj": energy_mj,
        "inferences_per_j": done / (energy_mj * 1e-3) if energy_mj > 0 else 0.0,
        "antt": antt,
        "stp": stp,
        "preemptions": sum(j.preemptions for j in jobs),
        "preemption_overhead_ms": ckpt_us / 1e3,
        "tile_utilisation": busy_tile_us / max(1, run.end_us) / run.tiles,
        "wall_ms": run.wall_ms,
        "decisions": len(run.decisions_ms),
        "decision_p50_ms": percentile(run.decisions_ms, 0.5) or 0.0,
        "decision_p99_ms": percentile(run.decisions_ms, 0.99) or 0.0,
    }
