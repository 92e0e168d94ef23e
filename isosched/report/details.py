"""Per-job and per-tile records of a replay, compact enough to store with the job."""

from __future__ import annotations

from typing import Any

from isosched.sim.engine import Run

__all__ = ["DETAILS_SCHEMA", "gantt_window", "run_details"]

DETAILS_SCHEMA = "isosched.run-details/v2"

#: Interval kinds, in the order of the compact records.
KINDS = ("run", "checkpoint", "restore", "reload")


def run_details(run: Run, width: int, height: int) -> dict[str, Any]:
    """The jobs and tile intervals of one replay.

    Returns
    -------
    dict
        ``jobs``: one record per job (times in µs, energy in pJ); ``intervals``: rows
        ``[job index, kind, start_us, end_us, tiles]`` with ``tiles`` the indices ``y * W + x``
        of the tiles the job held (any set, not necessarily a rectangle); ``events``: rows
        ``[job index, t_us, kind, why]``, what the scheduler did to each job and why (kinds
        ``start``, ``resume``, ``preempt``, ``kill``, ``finish``, ``drop``).
    """
    jobs = []
    intervals: list[list[Any]] = []
    events: list[list[Any]] = []
    for i, js in enumerate(run.jobs):
        events.extend([i, t, kind, why] for t, kind, why in js.events)
        j = js.job
        jobs.append(
            {
                "id": j.job,
                "stream": j.stream,
                "model": j.model,
                "critical": j.critical,
                "priority": j.priority,
                "release_us": j.release_us,
                "deadline_us": j.deadline_us,
                "finish_us": js.finish_us,
                "met": js.finish_us is not None and js.finish_us <= j.deadline_us,
                "preemptions": js.preemptions,
                "energy_pj": js.energy_pj,
                "checkpoint_pj": js.checkpoint_pj,
            }
        )
        for iv in js.intervals:
            tiles = [y * width + x for x, y in iv["tiles"]]
            intervals.append([i, iv["kind"], iv["start_us"], iv["end_us"], tiles])
    return {
        "schema": DETAILS_SCHEMA,
        "policy": run.policy,
        "end_us": run.end_us,
        "mesh": [width, height],
        "jobs": jobs,
        "intervals": intervals,
        "events": events,
    }


def gantt_window(
    details: dict[str, Any], t0_us: int, t1_us: int, max_bars: int = 6000
) -> tuple[list[dict[str, Any]], bool]:
    """Tile bars overlapping ``[t0_us, t1_us)``, clipped to it (server-side windowing).

    One bar per (interval, tile); tile index is ``y * width + x``. When more than ``max_bars``
    bars fall in the window, the earliest ``max_bars`` are kept and the flag says so.

    Returns
    -------
    (list of dict, bool)
        Bars (``tile``, ``start_ms``, ``end_ms``, ``job``, ``stream``, ``kind``) and whether
        the window was truncated.
    """
    jobs = details["jobs"]
    bars: list[dict[str, Any]] = []
    rows = sorted(
        (r for r in details["intervals"] if r[3] > t0_us and r[2] < t1_us), key=lambda r: r[2]
    )
    for i, kind, start, end, tiles in rows:
        s, e = max(start, t0_us), min(end, t1_us)
        job = jobs[i]
        for tile in tiles:
            if len(bars) >= max_bars:
                return bars, True
            bars.append(
                {
                    "tile": tile,
                    "start_ms": s / 1e3,
                    "end_ms": e / 1e3,
                    "job": job["id"],
                    "stream": job["stream"],
                    "kind": kind,
                }
            )
    return bars, False
