"""Perfetto export: ``isosched replay --perfetto`` writes Chrome trace-event JSON.

Each event is read back by an independent reader (the ``chrometrace`` package from PyPI, whose
``TraceEvent.from_dict`` refuses keys the format does not define), and the document is checked
for what the viewers need: slices that nest on every track, one track per tile and per stream,
and a scheduler event saying why for every start, preemption, finish and drop.
"""

import contextlib
import io
import json
import sys
from collections import defaultdict

import pytest
from chrometrace import TraceEvent, TraceEventType

from isosched.cli import main
from isosched.io.trace_jsonl import write_trace
from isosched.report.perfetto import PERFETTO_TID, perfetto_trace
from isosched.trace import generate_trace, parse_scenario

# A critical camera stream beside heavy background work on a small chip: preemptions happen.
SCENARIO = {
    "name": "perf",
    "horizon_ms": 60,
    "streams": [
        {"id": "bg", "model": "resnet50", "period_ms": 0.7, "deadline_ms": 30, "priority": 1},
        {"id": "mid", "model": "mobilenetv2", "period_ms": 2, "deadline_ms": 6, "priority": 4},
        {
            "id": "cam",
            "model": "mobilenetv2",
            "period_ms": 5,
            "phase_ms": 1,
            "deadline_ms": 2.5,
            "priority": 9,
            "critical": True,
        },
    ],
}
POLICIES = "isosched,prema,fcfs"
PHASES = {"X", "i", "C", "M"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("perfetto")
    trace = generate_trace(parse_scenario(SCENARIO), seed=3)
    path = d / "perf.jsonl"
    write_trace(trace, path)
    out = d / "perf.trace.json"
    argv = ["isosched", "replay", str(path), "--hw", "edge-4x4", "--policy", POLICIES]
    argv += ["--perfetto", str(out), "--jobs-out", str(d / "jobs"), "--json"]
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", argv)
    err = io.StringIO()
    try:
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(err):
            main()
    finally:
        mp.undo()
    assert exc.value.code == 0
    # progress off a terminal is sparse: at most 10 lines per policy (issue 19)
    lines = err.getvalue().splitlines()
    assert 0 < len(lines) <= 10 * len(POLICIES.split(",")), lines
    jobs = {
        p: [json.loads(line) for line in (d / "jobs" / f"{p}.jobs.jsonl").open()]
        for p in POLICIES.split(",")
    }
    return json.loads(out.read_text()), jobs


def test_every_event_reads_back_with_an_independent_reader(exported):
    doc, _ = exported
    assert doc["displayTimeUnit"] == "ms"
    assert doc["traceEvents"]
    for ev in doc["traceEvents"]:
        parsed = TraceEvent.from_dict(ev)  # KeyError on a key outside the format
        assert ev["ph"] in PHASES
        if ev["ph"] != "i":  # the reader knows instants by the older capital "I" only
            assert TraceEventType(parsed.event_type) == ev["ph"]
        assert isinstance(parsed.timestamp_us, int) and parsed.timestamp_us >= 0
        assert isinstance(parsed.process_id, int) and isinstance(parsed.thread_id, int)
        if ev["ph"] == "X":
            assert isinstance(parsed.duration_us, int) and parsed.duration_us >= 0
        if ev["ph"] == "i":
            assert parsed.scope == "t"


def test_slices_nest_on_every_track(exported):
    doc, _ = exported
    tracks = defaultdict(list)
    for ev in doc["traceEvents"]:
        if ev["ph"] == "X":
            tracks[ev["pid"], ev["tid"]].append((ev["ts"], -ev["dur"], ev["ts"] + ev["dur"]))
    assert tracks
    for spans in tracks.values():
        stack: list[int] = []
        for start, _, end in sorted(spans):
            while stack and stack[-1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1], "slices overlap without nesting"
            stack.append(end)


def test_tracks_per_policy_tile_and_stream(exported):
    doc, jobs = exported
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    assert sorted(procs.values()) == sorted(POLICIES.split(","))
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    for pid, policy in procs.items():
        names = [n for (p, _), n in threads.items() if p == pid]
        assert "scheduler" in names
        assert {"stream cam", "stream mid", "stream bg"} <= set(names)
        held = {(x, y) for j in jobs[policy] for iv in j["intervals"] for x, y in iv["tiles"]}
        assert {n for n in names if n.startswith("tile ")} == {f"tile ({x},{y})" for x, y in held}
    # a tile slice per (interval, tile), on the track of that tile
    for pid, policy in procs.items():
        want = sorted(
            (iv["start_us"], iv["end_us"] - iv["start_us"], y * 4 + x)
            for j in jobs[policy]
            for iv in j["intervals"]
            if iv["end_us"] > iv["start_us"]
            for x, y in iv["tiles"]
        )
        got = sorted(
            (e["ts"], e["dur"], e["tid"] - PERFETTO_TID["tiles"])
            for e in doc["traceEvents"]
            if e["ph"] == "X" and e["pid"] == pid and e.get("cat") == "tile"
        )
        assert got == want


def test_scheduler_track_says_why(exported):
    doc, jobs = exported
    procs = {
        e["pid"]: e["args"]["name"]
        for e in doc["traceEvents"]
        if e["ph"] == "M" and e["name"] == "process_name"
    }
    preempted = 0
    for pid, policy in procs.items():
        sched = [
            e
            for e in doc["traceEvents"]
            if e["pid"] == pid and e["tid"] == PERFETTO_TID["scheduler"] and e["ph"] == "i"
        ]
        by_job = defaultdict(list)
        for e in sched:
            assert e["args"]["why"], e
            by_job[e["args"]["job"]].append(e["name"].split()[0])
        for j in jobs[policy]:
            kinds = by_job[j["job"]]
            if j["start_us"] is not None:
                assert kinds[0] == "start", (policy, j["job"], kinds)
            if j["finish_us"] is not None:
                assert kinds[-1] == "finish"
            else:
                assert kinds[-1] == "drop", (policy, j["job"], kinds)
            assert kinds.count("preempt") + kinds.count("kill") == j["preemptions"]
            assert [e["kind"] for e in j["events"]] == kinds  # the same records as --jobs-out
            preempted += j["preemptions"]
        for e in sched:
            if e["name"].startswith(("preempt", "kill")):
                assert " for " in e["args"]["why"] or " while " in e["args"]["why"]
    assert preempted > 0, "the scenario should make some policy preempt"
    instants = [e for e in doc["traceEvents"] if e.get("cat") == "preemption"]
    assert len(instants) == preempted


def test_export_is_deterministic_and_reads_old_details():
    details = {
        "p": {
            "mesh": [2, 1],
            "end_us": 10,
            "jobs": [{"id": "a#0", "stream": "a", "release_us": 0, "deadline_us": 9}],
            "intervals": [[0, "run", 1, 5, [0, 1]]],
        }
    }
    one = perfetto_trace(details)
    assert one == perfetto_trace(details)
    tiles = [e for e in one["traceEvents"] if e.get("cat") == "tile"]
    assert [(e["tid"] - PERFETTO_TID["tiles"], e["ts"], e["dur"]) for e in tiles] == [
        (0, 1, 4),
        (1, 1, 4),
    ]
