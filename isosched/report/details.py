"""Per-job and per-tile records of a replay, compact enough to store with the job."""

from __future__ import annotations

from typing import Any

from isosched.sim.engine import Run

__all__ = ["DETAILS_SCHEMA", "chip_window", "gantt_window", "run_details"]

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


def chip_window(
    details: dict[str, Any], t0_us: int, t1_us: int, max_jobs: int = 300
) -> tuple[list[dict[str, Any]], list[list[Any]], bool]:
    """The jobs holding tiles in ``[t0_us, t1_us)`` and their tile intervals, for the chip view.

    Returns
    -------
    (list of dict, list of list, bool)
        Jobs in order of release (``row`` numbers them from 0; ``id``, ``stream``, ``model``,
        ``critical``, ``priority``, ``release_ms``, ``deadline_ms``, ``finish_ms`` or ``None``,
        ``met``, ``preemptions``, ``max_tiles``); intervals ``[row, kind, start_ms, end_ms,
        tiles]`` clipped to the window, ``tiles`` as indices ``y * W + x``; and whether more
        than ``max_jobs`` jobs fell in the window (the earliest released are kept).
    """
    jobs = details["jobs"]
    rows = [r for r in details["intervals"] if r[3] > t0_us and r[2] < t1_us]
    in_window = sorted({int(r[0]) for r in rows}, key=lambda i: (jobs[i]["release_us"], i))
    truncated = len(in_window) > max_jobs
    keep = in_window[:max_jobs]
    row_of = {i: k for k, i in enumerate(keep)}
    most: dict[int, int] = {}
    out_iv: list[list[Any]] = []
    for i, kind, start, end, tiles in sorted(rows, key=lambda r: (r[2], r[0])):
        if int(i) not in row_of:
            continue
        most[int(i)] = max(most.get(int(i), 0), len(tiles))
        s, e = max(start, t0_us), min(end, t1_us)
        out_iv.append([row_of[int(i)], kind, s / 1e3, e / 1e3, list(tiles)])
    out_jobs = []
    for i in keep:
        j = jobs[i]
        finish = j.get("finish_us")
        out_jobs.append(
            {
                "row": row_of[i],
                "id": j["id"],
                "stream": j["stream"],
                "model": j.get("model"),
                "critical": bool(j.get("critical")),
                "priority": j.get("priority"),
                "release_ms": j["release_us"] / 1e3,
                "deadline_ms": j["deadline_us"] / 1e3,
                "finish_ms": None if finish is None else finish / 1e3,
                "met": bool(j.get("met")),
                "preemptions": j.get("preemptions", 0),
                "max_tiles": most.get(i, 0),
            }
        )
    return out_jobs, out_iv, truncated
