"""Per-job and per-tile records of a replay, compact enough to store with the job."""

from __future__ import annotations

from typing import Any

from isosched.sim.engine import Run

__all__ = ["DETAILS_SCHEMA", "gantt_window", "run_details"]

DETAILS_SCHEMA = "isosched.run-details/v1"

#: Interval kinds, in the order of the compact records.
KINDS = ("run", "checkpoint", "restore")


def run_details(run: Run, width: int, height: int) -> dict[str, Any]:
    """The jobs and tile intervals of one replay.

    Returns
    -------
    dict
        ``jobs``: one record per job (times in µs, energy in pJ); ``intervals``: rows
        ``[job index, kind, start_us, end_us, x, y, w, h]`` — the rectangle of tiles the job held.
    """
    jobs = []
    intervals: list[list[Any]] = []
    for i, js in enumerate(run.jobs):
        j = js.job
        jobs.append(
            {
                "id": j.job,
                "stream": j.stream,
                "model": j.model,
                "critical": j.critical,
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
            xs = [t[0] for t in iv["tiles"]]
            ys = [t[1] for t in iv["tiles"]]
            x0, y0 = min(xs), min(ys)
            intervals.append(
                [
                    i,
                    iv["kind"],
                    iv["start_us"],
                    iv["end_us"],
                    x0,
                    y0,
                    max(xs) - x0 + 1,
                    max(ys) - y0 + 1,
                ]
            )
    return {
        "schema": DETAILS_SCHEMA,
        "policy": run.policy,
        "end_us": run.end_us,
        "mesh": [width, height],
        "jobs": jobs,
        "intervals": intervals,
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
    width = int(details["mesh"][0])
    jobs = details["jobs"]
    bars: list[dict[str, Any]] = []
    rows = sorted(
        (r for r in details["intervals"] if r[3] > t0_us and r[2] < t1_us), key=lambda r: r[2]
    )
    for i, kind, start, end, x, y, w, h in rows:
        s, e = max(start, t0_us), min(end, t1_us)
        job = jobs[i]
        for yy in range(y, y + h):
            for xx in range(x, x + w):
                if len(bars) >= max_bars:
                    return bars, True
                bars.append(
                    {
                        "tile": yy * width + xx,
                        "start_ms": s / 1e3,
                        "end_ms": e / 1e3,
                        "job": job["id"],
                        "stream": job["stream"],
                        "kind": kind,
                    }
                )
    return bars, False
