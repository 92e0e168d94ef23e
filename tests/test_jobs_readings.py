"""``isosched jobs``: per-stream readings of per-job records, derived by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from isosched.errors import IsoschedError
from isosched.report.jobs import read_job_records, stream_readings


def _rec(job, stream, release, start, finish, deadline, tiles=4, preemptions=0, energy=1000.0):
    met = finish is not None and finish <= deadline
    intervals = []
    if start is not None:
        intervals = [
            {"tiles": [[0, 0]] * tiles, "start_us": start, "end_us": finish or start + 1,
             "kind": "run"}
        ]  # fmt: skip
    return {
        "job": job, "stream": stream, "release_us": release, "start_us": start,
        "finish_us": finish, "deadline_us": deadline, "met": met, "critical": True,
        "preemptions": preemptions, "energy_uj": energy, "intervals": intervals,
    }  # fmt: skip


RECORDS = [
    _rec("cam#0", "cam", 0, 1_000, 4_000, 10_000, tiles=4),  # waits 1 ms, runs 3 ms
    _rec("cam#1", "cam", 10_000, 10_000, 12_000, 20_000, tiles=16, preemptions=1),  # runs 2 ms
    _rec("cam#2", "cam", 20_000, 25_000, 36_000, 30_000, tiles=4),  # late: runs 11 ms
    _rec("cam#3", "cam", 30_000, None, None, 40_000),  # dropped, never started
    _rec("llm#0", "llm", 0, 0, None, 1_000_000, tiles=64),  # started, never finished
]


def test_stream_readings_by_hand():
    got = stream_readings(RECORDS)
    assert list(got) == ["cam", "llm"]
    cam = got["cam"]
    assert (cam["jobs"], cam["met"], cam["dropped"], cam["late"]) == (4, 2, 1, 1)
    # waits of the started jobs: 1, 0, 5 ms -> nearest-rank median 1 ms
    assert cam["wait_p50_ms"] == 1.0
    # runs of the finished jobs: 3, 2, 11 ms -> median 3 ms, p90 the 3rd smallest: 11 ms
    assert (cam["run_p50_ms"], cam["run_p90_ms"]) == (3.0, 11.0)
    assert cam["tiles"] == {"4": 2, "16": 1} and cam["preempted"] == 1
    assert cam["energy_per_finished_mj"] == 1.0
    llm = got["llm"]
    assert (llm["jobs"], llm["met"], llm["dropped"], llm["late"]) == (1, 0, 0, 1)
    assert llm["run_p50_ms"] is None and llm["energy_per_finished_mj"] is None
    assert llm["tiles"] == {"64": 1}


def test_records_are_checked(tmp_path):
    bad = tmp_path / "bad.jobs.jsonl"
    bad.write_text('{"job": "a"}\n')
    with pytest.raises(IsoschedError, match="not a job record"):
        read_job_records(bad)
    bad.write_text("not json\n")
    with pytest.raises(IsoschedError, match="not JSON"):
        read_job_records(bad)
    bad.write_text("\n")  # a header-only trace's replay writes no record: nothing to read
    assert read_job_records(bad) == []


def test_cli_reads_what_replay_wrote(tmp_path):
    trace = {"schema": "isosched.trace/v1", "scenario": "t", "seed": 0, "horizon_us": 100_000}
    jobs = [
        {"job": f"cam#{i}", "stream": "cam", "model": "mobilenetv2", "release_us": i * 20_000,
         "deadline_us": i * 20_000 + 15_000, "priority": 9, "critical": True}
        for i in range(3)
    ]  # fmt: skip
    lines = [json.dumps(trace)] + [json.dumps(j) for j in jobs]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    env_cmd = [sys.executable, "-m", "isosched"]
    rep = subprocess.run(
        [*env_cmd, "replay", str(tmp_path / "t.jsonl"), "--hw", "edge-4x4", "--policy", "hasp",
         "--jobs-out", str(tmp_path / "out"), "--no-cache", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    out = subprocess.run(
        [*env_cmd, "jobs", str(tmp_path / "out" / "hasp.jobs.jsonl"), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    cam = doc["files"][str(tmp_path / "out" / "hasp.jobs.jsonl")]["cam"]
    assert doc["schema"] == "isosched.jobs-readings/v1"
    assert cam["jobs"] == 3 and cam["met"] == 3 and cam["dropped"] == 0
    text = subprocess.run(
        [*env_cmd, "jobs", str(tmp_path / "out" / "hasp.jobs.jsonl")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert text.returncode == 0 and "cam" in text.stdout and "run50" in text.stdout
    # a directory stands for every record file in it
    whole = subprocess.run(
        [*env_cmd, "jobs", str(tmp_path / "out"), "--json"], capture_output=True, text=True
    )
    assert whole.returncode == 0 and json.loads(whole.stdout) == doc
    empty = subprocess.run([*env_cmd, "jobs", str(tmp_path)], capture_output=True, text=True)
    assert empty.returncode == 2 and "no *.jobs.jsonl" in empty.stderr
