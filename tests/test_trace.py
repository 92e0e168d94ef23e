"""Scenarios and traces: semantics of period, phase, jitter, probability and dependencies."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from isosched.io.trace_jsonl import TraceError, read_scenario, read_trace, write_trace
from isosched.trace import ScenarioError, generate_trace, parse_scenario

ROOT = Path(__file__).resolve().parent.parent


def scenario(*streams, horizon_ms=1000.0):
    return parse_scenario(
        {
            "schema": "isosched.scenario/v1",
            "name": "t",
            "horizon_ms": horizon_ms,
            "streams": list(streams),
        }
    )


def stream(id="a", **kw):
    base = {"id": id, "model": "resnet50", "period_ms": 100.0, "deadline_ms": 50.0, "priority": 1}
    base.update(kw)
    return base


def test_periodic_releases_without_jitter_are_exact():
    t = generate_trace(scenario(stream(phase_ms=10.0)), seed=1)
    assert [j.release_us for j in t.jobs] == [10_000 + 100_000 * k for k in range(10)]
    assert all(j.deadline_us - j.release_us == 50_000 for j in t.jobs)
    assert [j.job for j in t.jobs][:2] == ["a#0", "a#1"]


def test_jitter_stays_within_half_width_and_is_seeded():
    sc = scenario(stream(jitter_ms=4.0, phase_ms=5.0))
    a, b = generate_trace(sc, seed=3), generate_trace(sc, seed=3)
    assert a == b
    assert generate_trace(sc, seed=4) != a
    for k, j in enumerate(a.jobs):
        assert abs(j.release_us - (5_000 + 100_000 * k)) <= 2_000


def test_probability_drops_releases():
    sc = scenario(stream(period_ms=1.0, probability=0.3), horizon_ms=10_000)
    n = len(generate_trace(sc, seed=0).jobs)
    # 10,000 releases at p = 0.3: mean 3,000, standard deviation about 46.
    assert 2_800 < n < 3_200
    assert len(generate_trace(scenario(stream(probability=0.0)), seed=0).jobs) == 0


def test_dependency_names_the_same_frames_upstream_job():
    sc = scenario(
        stream("det", phase_ms=0.0), stream("cls", phase_ms=5.0, depends_on="det", probability=1.0)
    )
    t = generate_trace(sc, seed=0)
    cls = [j for j in t.jobs if j.stream == "cls"]
    assert [j.depends_on for j in cls] == [f"det#{k}" for k in range(10)]
    # An upstream that releases nothing leaves the dependent stream empty.
    sc2 = scenario(stream("det", probability=0.0), stream("cls", depends_on="det"))
    assert not [j for j in generate_trace(sc2, seed=0).jobs if j.stream == "cls"]


@pytest.mark.parametrize("text", ["1e308", "0", "-1", "nan", "inf", "abc", "1,,2"])
def test_scales_are_checked_before_any_work(text):
    """At 1e308 the job count overflowed (a traceback in ``trace gen``, Infinity in ``trace
    load``); ``results --scales abc`` was a traceback and ``0`` failed hours in."""
    from isosched.trace.generate import parse_scales

    with pytest.raises(ScenarioError, match="scale"):
        parse_scales(text)
    if text not in ("abc", "1,,2"):
        with pytest.raises(ScenarioError, match="scale"):
            generate_trace(scenario(stream()), scale=float(text))
    assert parse_scales("0.5,1,1e6") == [0.5, 1.0, 1e6]


def test_scale_divides_periods():
    t = generate_trace(scenario(stream()), seed=0, scale=2.0)
    assert len(t.jobs) == 20
    assert t.jobs[1].release_us == 50_000


@pytest.mark.parametrize(
    ("streams", "message"),
    [
        ([stream("a"), stream("a")], "duplicate stream id"),
        ([stream("a", depends_on="zz")], "unknown stream 'zz'"),
        ([stream("a", depends_on="b"), stream("b", depends_on="a")], "cycle"),
        ([stream("a", period_ms=-1.0)], "period_ms"),
        ([stream("a", period_ms=0.0001)], "limit"),
        ([stream("a", probability=2)], "probability"),
        # strict, as JSON (found by review: these were coerced)
        ([stream("a", critical="yes")], "critical"),
        ([stream("a", priority=True)], "priority"),
    ],
)
def test_invalid_scenarios(streams, message):
    with pytest.raises(ScenarioError, match=message):
        scenario(*streams)


def test_trace_round_trip(tmp_path):
    t = generate_trace(scenario(stream("det"), stream("cls", depends_on="det")), seed=2)
    path = tmp_path / "t.jsonl"
    write_trace(t, path)
    back = read_trace(path)
    assert back.jobs == t.jobs and back.header == t.header


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (['{"schema": "other"}'], "header"),
        (['{"schema": "isosched.trace/v1"}', "{nope"], "not JSON"),
        (['{"schema": "isosched.trace/v1"}', '{"job": "a"}'], "field 'stream'"),
        (
            [
                '{"schema": "isosched.trace/v1"}',
                '{"job":"a#1","stream":"a","model":"m","release_us":9,"deadline_us":10,"priority":1,"critical":false}',
                '{"job":"a#0","stream":"a","model":"m","release_us":5,"deadline_us":10,"priority":1,"critical":false}',
            ],
            "back in time",
        ),
        (
            [
                '{"schema": "isosched.trace/v1"}',
                '{"job":"a#0","stream":"a","model":"m","release_us":5,"deadline_us":10,"priority":1,"critical":false,"depends_on":"b#0"}',
            ],
            "names no earlier job",
        ),
        # found by review: PREMA failed on a negative priority, and a header's horizon went
        # into lbt_per_s (Infinity at 1e-303, negative horizon_s at -5)
        (
            [
                '{"schema": "isosched.trace/v1"}',
                '{"job":"a#0","stream":"a","model":"m","release_us":5,"deadline_us":10,"priority":-1,"critical":false}',
            ],
            r"priority must be in 0\.\.1,000,000",
        ),
        (['{"schema": "isosched.trace/v1", "horizon_us": 1e-303}'], "horizon_us"),
        (['{"schema": "isosched.trace/v1", "horizon_us": -5}'], "horizon_us"),
        (['{"schema": "isosched.trace/v1", "horizon_us": true}'], "horizon_us"),
        (['{"schema": "isosched.trace/v1", "time_unit": "ms"}'], "time_unit must be 'us'"),
    ],
)
def test_malformed_traces_name_the_line(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match=message):
        read_trace(path)


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"schema": "isosched.trace/v1"}\r\n{"job": "\xff"}\n')
    with pytest.raises(TraceError, match=r"bad\.jsonl: trace line 2 is not UTF-8 text"):
        read_trace(path)


SHIPPED = sorted(p.stem for p in (ROOT / "traces" / "scenarios").glob("*.json"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_and_traces(name):
    """Shipped scenarios validate, cite sources, and their traces are what seed 7 generates."""
    sc = read_scenario(ROOT / "traces" / "scenarios" / f"{name}.json")
    assert all(s.source for s in sc.streams)
    assert any(s.critical for s in sc.streams)
    trace = ROOT / "traces" / f"{name}.s7.jsonl"
    if name.startswith("ad_"):  # the AD scenarios ship their seed-7 traces
        assert read_trace(trace) == generate_trace(sc, seed=7)


def test_the_scenario_library_is_complete():
    assert {"ad_urban", "ad_highway", "ad_stress", "mlperf_auto", "autoware_cams"} <= set(SHIPPED)
    assert {"critical_burst", "tier_s", "tier_m", "tier_l", "tier_xl"} <= set(SHIPPED)
    aw = read_scenario(ROOT / "traces" / "scenarios" / "autoware_cams.json")
    phases = [s.phase_ms for s in aw.streams if s.id.startswith("cam")]
    assert phases == [61.67, 111.67, 45.0, 28.33, 78.33, 95.0]
    assert {s.id: s.depends_on for s in aw.streams}["tl_classify"] == "tl_detect"


def test_cli_trace_gen_and_bad_model(tmp_path):
    out = tmp_path / "t.jsonl"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "isosched",
            "trace",
            "gen",
            str(ROOT / "traces" / "scenarios" / "ad_urban.json"),
            "--seed",
            "3",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out.read_text().splitlines()[0])["seed"] == 3
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"name": "x", "horizon_ms": 100, "streams": [stream(model="nonet")]}))
    proc = subprocess.run(
        [sys.executable, "-m", "isosched", "trace", "gen", str(bad), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "unknown model 'nonet'" in proc.stderr
