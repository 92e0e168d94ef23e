"""A replay as a Chrome trace-event JSON document, for Perfetto and chrome://tracing.

The trace-event format is a JSON object whose ``traceEvents`` list holds events with a phase
``ph``: ``X`` (a complete slice, ``ts`` and ``dur`` in microseconds), ``i`` (an instant), ``C``
(a counter) and ``M`` (metadata: process and thread names and their order). A *process* groups
*threads*, which the viewers draw as tracks. Slices on one thread must nest; the simulator's
integer microseconds are the format's unit, so times are copied exactly.

One process per policy, with these tracks, top to bottom:

* ``scheduler`` — one instant per scheduler event of every job (start, resume, preempt, kill,
  finish, drop) whose ``why`` argument says why it happened;
* ``tiles held`` — a counter of the tiles running and moving state (checkpoint, restore, reload);
* one track per stream (more when jobs of a stream overlap in time): a slice per job from
  release to finish (or drop), and inside it a slice per tile interval (``run``, ``checkpoint``,
  ``restore``, ``reload``), with preemptions as instants;
* one track per tile region — a single tile, named by its ``(x, y)`` — with a slice per span in
  which a job held it, named by the job's stream so that viewers colour a stream alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PERFETTO_TID", "perfetto_trace"]

#: Thread ids of the fixed tracks, and the first id of the stream and tile tracks.
PERFETTO_TID = {"scheduler": 1, "counter": 2, "streams": 100, "tiles": 100_000}


def _meta(pid: int, tid: int, name: str, value: Any) -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "ts": 0, "args": value}


def _job_end_us(job: dict[str, Any], spans: list[tuple[int, int]], drop_us: int | None) -> int:
    """When a job leaves the picture: its finish, its drop, or the end of its last interval."""
    ends = [e for _, e in spans]
    if job.get("finish_us") is not None:
        ends.append(int(job["finish_us"]))
    if drop_us is not None:
        ends.append(drop_us)
    return max(ends, default=int(job["release_us"]))


def _lanes(spans: list[tuple[int, int, int]]) -> dict[int, int]:
    """Assign ``(start, end, key)`` spans to the fewest lanes where none overlap (first fit)."""
    lane_end: list[int] = []
    out: dict[int, int] = {}
    for start, end, key in sorted(spans):
        for i, busy_until in enumerate(lane_end):
            if busy_until <= start:
                lane_end[i] = end
                out[key] = i
                break
        else:
            out[key] = len(lane_end)
            lane_end.append(end)
    return out


def _policy_events(pid: int, policy: str, details: Mapping[str, Any]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = details["jobs"]
    width = int(details["mesh"][0])
    intervals: list[list[Any]] = details["intervals"]
    events: list[list[Any]] = details.get("events", [])  # absent in run-details stored by v1
    out: list[dict[str, Any]] = [
        _meta(pid, 0, "process_name", {"name": f"{policy}"}),
        _meta(pid, 0, "process_sort_index", {"sort_index": pid}),
        _meta(pid, PERFETTO_TID["scheduler"], "thread_name", {"name": "scheduler"}),
        _meta(pid, PERFETTO_TID["scheduler"], "thread_sort_index", {"sort_index": 0}),
        _meta(pid, PERFETTO_TID["counter"], "thread_name", {"name": "tiles held"}),
        _meta(pid, PERFETTO_TID["counter"], "thread_sort_index", {"sort_index": 1}),
    ]
    by_job: dict[int, list[list[Any]]] = {}
    for row in intervals:
        by_job.setdefault(int(row[0]), []).append(row)
    drops = {int(i): int(t) for i, t, kind, _ in events if kind == "drop"}

    # Stream tracks: a job's slice spans release .. end; overlapping jobs of a stream get lanes.
    spans_of: dict[str, list[tuple[int, int, int]]] = {}
    job_end: dict[int, int] = {}
    for i, job in enumerate(jobs):
        mine = [(int(r[2]), int(r[3])) for r in by_job.get(i, [])]
        job_end[i] = _job_end_us(job, mine, drops.get(i))
        spans_of.setdefault(job["stream"], []).append((int(job["release_us"]), job_end[i], i))
    tid_of_job: dict[int, int] = {}
    tid = PERFETTO_TID["streams"]
    for stream in sorted(spans_of):
        lanes = _lanes(spans_of[stream])
        for lane in range(max(lanes.values()) + 1):
            name = f"stream {stream}" if lane == 0 else f"stream {stream} ({lane + 1})"
            out.append(_meta(pid, tid + lane, "thread_name", {"name": name}))
            out.append(_meta(pid, tid + lane, "thread_sort_index", {"sort_index": tid + lane}))
        for key, lane in lanes.items():
            tid_of_job[key] = tid + lane
        tid += max(lanes.values()) + 1

    for i, job in enumerate(jobs):
        t = tid_of_job[i]
        start = int(job["release_us"])
        out.append(
            {
                "ph": "X",
                "cat": "job",
                "name": job["id"],
                "pid": pid,
                "tid": t,
                "ts": start,
                "dur": max(job_end[i] - start, 0),
                "args": {
                    "model": job.get("model"),
                    "critical": job.get("critical"),
                    "priority": job.get("priority"),
                    "deadline_ms": (int(job["deadline_us"]) - start) / 1e3,
                    "met": job.get("met"),
                    "preemptions": job.get("preemptions"),
                },
            }
        )
        for _, kind, s, e, tiles in by_job.get(i, []):
            if e <= s:
                continue
            out.append(
                {
                    "ph": "X",
                    "cat": "interval",
                    "name": kind,
                    "pid": pid,
                    "tid": t,
                    "ts": int(s),
                    "dur": int(e) - int(s),
                    "args": {"job": job["id"], "tiles": len(tiles)},
                }
            )

    # Scheduler track: why each job started, resumed, was preempted, finished or was dropped.
    for i, at, kind, why in events:
        job = jobs[int(i)]
        args = {"job": job["id"], "stream": job["stream"], "why": why}
        out.append(
            {
                "ph": "i",
                "s": "t",
                "cat": "scheduler",
                "name": f"{kind} {job['id']}",
                "pid": pid,
                "tid": PERFETTO_TID["scheduler"],
                "ts": int(at),
                "args": args,
            }
        )
        if kind in ("preempt", "kill"):
            out.append(
                {
                    "ph": "i",
                    "s": "t",
                    "cat": "preemption",
                    "name": "preempted" if kind == "preempt" else "killed",
                    "pid": pid,
                    "tid": tid_of_job[int(i)],
                    "ts": int(at),
                    "args": args,
                }
            )

    # Tile tracks (a region of one tile: a tile is held by at most one job at a time).
    used = sorted({tile for row in intervals for tile in row[4]})
    for tile in used:
        x, y = tile % width, tile // width
        tt = PERFETTO_TID["tiles"] + tile
        out.append(_meta(pid, tt, "thread_name", {"name": f"tile ({x},{y})"}))
        out.append(_meta(pid, tt, "thread_sort_index", {"sort_index": tt}))
    for i, kind, s, e, tiles in intervals:
        if e <= s:
            continue
        job = jobs[int(i)]
        name = job["stream"] if kind == "run" else f"{job['stream']} {kind}"
        out.extend(
            {
                "ph": "X",
                "cat": "tile",
                "name": name,
                "pid": pid,
                "tid": PERFETTO_TID["tiles"] + int(tile),
                "ts": int(s),
                "dur": int(e) - int(s),
                "args": {"job": job["id"], "kind": kind},
            }
            for tile in tiles
        )

    # Counter: tiles running and tiles moving state, stepping at every interval boundary.
    steps: dict[int, list[int]] = {}
    for _, kind, s, e, tiles in intervals:
        if e <= s:
            continue
        col = 0 if kind == "run" else 1
        for at, sign in ((int(s), 1), (int(e), -1)):
            steps.setdefault(at, [0, 0])[col] += sign * len(tiles)
    running = moving = 0
    for at in sorted(steps):
        running += steps[at][0]
        moving += steps[at][1]
        out.append(
            {
                "ph": "C",
                "cat": "tiles",
                "name": "tiles held",
                "pid": pid,
                "tid": PERFETTO_TID["counter"],
                "ts": at,
                "args": {"run": running, "checkpoint/restore/reload": moving},
            }
        )
    return out


def perfetto_trace(
    runs: Mapping[str, Mapping[str, Any]], title: str | None = None
) -> dict[str, Any]:
    """The replay ``runs`` (policy → run details) as one Chrome trace-event JSON document.

    Parameters
    ----------
    runs : mapping
        Per policy, its ``isosched.run-details`` document (:func:`isosched.report.run_details`):
        jobs, tile intervals and scheduler events, times in µs.
    title : str, optional
        Stored under ``otherData.title`` (e.g. the trace and hardware).

    Returns
    -------
    dict
        ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``; every ``ts``
        and ``dur`` in integer microseconds of simulated time. Deterministic: the same runs give
        the same document.
    """
    events: list[dict[str, Any]] = []
    for pid, (policy, details) in enumerate(runs.items(), start=1):
        events.extend(_policy_events(pid, policy, details))
    other: dict[str, Any] = {"generator": "isosched", "time_unit": "us (simulated)"}
    if title:
        other["title"] = title
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}
