"""Metrics of a replay (DESIGN.md §7, CONTRACTS.md: replay)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from isosched.sim.engine import JobState, Run

__all__ = ["energy_equal_work_mj", "job_record", "percentile", "summarize"]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by nearest rank (the ⌈q·n⌉-th smallest); ``None`` for none.

    An infinite value (a dropped or unfinished job) that the rank falls on gives ``None``.
    """
    if not values:
        return None
    xs = sorted(values)
    k = max(0, math.ceil(q * len(xs)) - 1)
    v = xs[k]
    return None if math.isinf(v) else v


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
        "restarts": js.restarts,
        "intervals": js.intervals,
        "events": [{"t_us": t, "kind": k, "why": why} for t, k, why in js.events],
    }


def energy_equal_work_mj(streams: dict[str, dict[str, Any]]) -> float | None:
    """Energy to complete every released job at this run's own cost per inference, mJ.

    Per stream: (energy of its finished jobs / finished jobs) × released jobs, summed over the
    streams. A policy that drops a stream's expensive jobs is charged for them at the price it
    pays for the ones it completes, so policies compare at equal completed work. ``None`` when a
    stream released jobs and finished none (its price is unknown). Energy spent on jobs that
    never finished is not in it (it is in ``energy_mj``).
    """
    total = 0.0
    for st in streams.values():
        if st["jobs"] and not st["finished"]:
            return None
        if st["jobs"]:
            total += st["finished_energy_mj"] / st["finished"] * st["jobs"]
    return total


def summarize(run: Run, isolated_us: dict[str, float] | None = None) -> dict[str, Any]:
    """Per-policy metrics of ``isosched.replay/v2`` (CONTRACTS.md; DESIGN §7).

    Unfinished jobs count as missed and as infinitely late: latency percentiles (nearest rank)
    and the mean are over all jobs, ``None`` where they fall on such a job. LBT is met jobs per
    second of the trace horizon. With ``isolated_us`` (each job's latency alone on the whole
    chip), also ANTT and STP over finished jobs.
    """
    jobs = run.jobs
    met = sum(_met(j) for j in jobs)
    crit = [j for j in jobs if j.job.critical]
    crit_met = sum(_met(j) for j in crit)
    lat_ms = [
        math.inf if j.finish_us is None else (j.finish_us - j.job.release_us) / 1e3 for j in jobs
    ]
    done = sum(j.finish_us is not None for j in jobs)
    dropped = len(jobs) - done
    energy_mj = sum(j.energy_pj for j in jobs) * 1e-9
    busy_tile_us = sum(
        (iv["end_us"] - iv["start_us"]) * len(iv["tiles"]) for j in jobs for iv in j.intervals
    )
    overhead_us = sum(
        iv["end_us"] - iv["start_us"]
        for j in jobs
        for iv in j.intervals
        if iv["kind"] in ("checkpoint", "restore", "reload")
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
    streams: dict[str, dict[str, Any]] = {}
    for j in sorted(jobs, key=lambda j: j.job.stream):
        st = streams.setdefault(
            j.job.stream, {"jobs": 0, "met": 0, "finished": 0, "finished_energy_mj": 0.0}
        )
        st["jobs"] += 1
        st["met"] += _met(j)
        if j.finish_us is not None:
            st["finished"] += 1
            st["finished_energy_mj"] += j.energy_pj * 1e-9
    for st in streams.values():
        st["satisfaction"] = st["met"] / st["jobs"]
    charged = [d.charged_us / 1e3 for d in run.decisions]
    wall = [d.wall_ms for d in run.decisions]
    c = run.counters
    mean = statistics.fmean(lat_ms) if lat_ms and dropped == 0 else None
    return {
        "jobs": len(jobs),
        "met": met,
        "finished": done,
        "dropped": dropped,
        "drop_rate": dropped / len(jobs) if jobs else 0.0,
        "critical_jobs": len(crit),
        "critical_met": crit_met,
        "critical_satisfaction": crit_met / len(crit) if crit else 1.0,
        "satisfaction": met / len(jobs) if jobs else 1.0,
        "lbt_per_s": met / duration_s if duration_s > 0 else 0.0,
        "duration_s": duration_s,
        "p50_latency_ms": percentile(lat_ms, 0.5),
        "p99_latency_ms": percentile(lat_ms, 0.99),
        "p999_latency_ms": percentile(lat_ms, 0.999),
        "mean_latency_ms": mean,
        "mean_finished_latency_ms": (
            statistics.fmean(x for x in lat_ms if not math.isinf(x)) if done else None
        ),
        "energy_mj": energy_mj,
        "inferences_per_j": done / (energy_mj * 1e-3) if energy_mj > 0 else 0.0,
        "energy_per_inference_mj": energy_mj / done if done else None,
        "energy_equal_work_mj": energy_equal_work_mj(streams),
        "antt": antt,
        "stp": stp,
        "preemptions": sum(j.preemptions for j in jobs),
        "preempted_tiles": c.get("preempted_tiles", 0),
        "restarts": c.get("restarts", 0),
        "placements": c.get("placements", 0),
        "library_hits": c.get("library_hits", 0),
        "online_matches": c.get("online_matches", 0),
        "placement_failures": c.get("placement_failures", 0),
        "preemption_overhead_ms": overhead_us / 1e3,
        "tile_utilisation": busy_tile_us / max(1, run.end_us) / run.tiles,
        "decisions": len(run.decisions),
        "decision_charged_p50_ms": percentile(charged, 0.5) or 0.0,
        "decision_charged_p99_ms": percentile(charged, 0.99) or 0.0,
        "decision_wall_p50_ms": percentile(wall, 0.5) or 0.0,
        "decision_wall_p99_ms": percentile(wall, 0.99) or 0.0,
        "budget_exhausted": run.budget_exhausted,
        "wall_ms": run.wall_ms,
        "streams": streams,
    }
