"""Sweeps v2: intervals over seeds, capacity by bisection (censored, floor), shipped names."""

from __future__ import annotations

import gc
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from isosched.errors import IsoschedError
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.scenario_library import load_scenario, shipped_scenarios
from isosched.sim.metrics import energy_equal_work_mj
from isosched.sim.stats import mean_ci95, t_quantile
from isosched.sim.sweep import CAPACITY_FLOOR_FRACTION, Point, sweep
from isosched.trace import parse_scenario

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = parse_scenario(
    {
        "name": "one",
        "horizon_ms": 100,
        "streams": [
            {"id": "cam", "model": "mobilenetv2", "period_ms": 20, "deadline_ms": 15,
             "priority": 9, "critical": True}
        ],
    }
)  # fmt: skip


def fake_point(policy: str, scale: float, seed: int, capacity: float) -> dict[str, Any]:
    """A point result whose satisfaction drops past ``capacity`` (seed-dependent noise)."""
    sat = 1.0 if scale <= capacity else 0.5 + 0.01 * seed
    return {
        "policy": policy,
        "scale": scale,
        "seed": seed,
        "satisfaction": sat,
        "critical_satisfaction": sat,
        "lbt_per_s": 10.0 * scale + seed,
        "energy_mj": 5.0,
        "drop_rate": 0.0,
        "energy_per_inference_mj": 1.0,
        "energy_equal_work_mj": 5.0,
        "p50_latency_ms": 1.0,
        "p99_latency_ms": 2.0,
        "p999_latency_ms": None,
        "preemptions": 0,
        "budget_exhausted": False,
        "streams": {"cam": {"satisfaction": sat}},
    }


def fake_executor(capacities: dict[str, float], seen: list[Point]) -> Any:
    def run(fn: Callable[[Point], dict[str, Any]], tasks: list[Point]) -> Iterator[dict[str, Any]]:
        for t in tasks:
            seen.append(t)
            yield fake_point(t[2], t[3], t[4], capacities[t[2]])

    return run


def run_fake(
    capacities: dict[str, float], scales: list[float]
) -> tuple[dict[str, Any], list[Point]]:
    seen: list[Point] = []
    doc = sweep(
        SCENARIO,
        load_hardware("edge-4x4"),
        list(capacities),
        scales,
        seeds=3,
        executor=fake_executor(capacities, seen),
        models=load_models(["mobilenetv2"]),
    )
    return doc, seen


def test_capacity_is_bisected_between_grid_points():
    doc, seen = run_fake({"fcfs": 2.7}, [1, 2, 4])
    p = doc["policies"]["fcfs"]
    assert doc["schema"] == "isosched.sweep/v2" and doc["seeds"] == 3
    # [2, 4] -> 3 fails -> 2.5 passes -> 2.75 fails
    assert [b["scale"] for b in p["bisection"]] == [2.5, 2.75, 3.0]
    assert p["lbt_capacity"] == 2.5 and p["lbt_capacity_bracket"] == [2.5, 2.75]
    assert p["lbt_capacity_censored"] is False and p["lbt_capacity_below_floor"] is False
    assert len(seen) == 3 * 3 + 3 * 3  # grid, then three bisection steps, every seed
    assert [c["scale"] for c in p["curve"]] == [1, 2, 4]


def test_capacity_below_the_first_grid_point_is_searched_down_to_the_floor():
    doc, _ = run_fake({"prema": 0.3, "fcfs": 0.01, "hasp": 100.0}, [1, 2])
    prema, fcfs, hasp = (doc["policies"][p] for p in ("prema", "fcfs", "hasp"))
    floor = 1 * CAPACITY_FLOOR_FRACTION
    assert doc["capacity_floor"] == floor
    # floor 0.125 passes; [0.125, 1] -> 0.5625 fails -> 0.34375 fails -> 0.234375 passes
    assert prema["lbt_capacity"] == pytest.approx(0.234375)
    assert prema["lbt_capacity_bracket"] == pytest.approx([0.234375, 0.34375])
    assert fcfs["lbt_capacity"] == 0.0 and fcfs["lbt_capacity_below_floor"] is True
    assert fcfs["lbt_capacity_bracket"] == [0.0, floor]
    # the largest scale still passes: censored, the capacity is at least that
    assert hasp["lbt_capacity"] == 2 and hasp["lbt_capacity_censored"] is True
    assert hasp["bisection"] == []


def test_sweep_table_lines_up_with_long_policy_names():
    from isosched.cli.sweep import sweep_table

    doc, _ = run_fake({"fcfs": 1.5, "isosched-no-preempt": 100.0}, [1, 2])
    head, *rows = sweep_table(doc)[1:]
    end = head.index("LBT capacity") + len("LBT capacity")
    caps = [row[:end].split()[-1] for row in rows]
    assert caps == [">=2", "1.5"] or caps == ["1.5", ">=2"]
    for row in rows:  # every capacity ends under the header's, then two spaces, then the curve
        assert row[end - 1] != " " and row[end : end + 2] == "  " and row[end + 2] != " "
    assert rows[0].split()[0] in ("fcfs", "isosched-no-preempt")


def test_curve_points_carry_means_and_t_intervals_over_seeds():
    doc, _ = run_fake({"fcfs": 1.5}, [1, 2])
    one, two = doc["policies"]["fcfs"]["curve"]
    assert one["lbt_per_s"] == pytest.approx(11.0)  # 10 + mean seed (0, 1, 2)
    half = t_quantile(2) * statistics.stdev([10.0, 11.0, 12.0]) / math.sqrt(3)
    assert one["lbt_per_s_ci95"] == pytest.approx([11.0 - half, 11.0 + half])
    assert one["satisfaction_ci95"] == [1.0, 1.0]
    assert two["satisfaction"] == pytest.approx(0.51)
    low, high = two["satisfaction_ci95"]
    assert low < 0.51 < high <= 1.0
    assert two["streams"]["cam"]["satisfaction"] == pytest.approx(0.51)
    assert two["p999_latency_ms"] is None and two["p99_latency_ms"] == 2.0


def test_t_interval_matches_the_textbook_values():
    assert t_quantile(1) == pytest.approx(12.706205, abs=1e-6)
    assert t_quantile(4) == pytest.approx(2.776445, abs=1e-6)
    mean, ci = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0 and ci == pytest.approx([3 - 2.776445 * 1.581139 / 5**0.5, 3 + 1.963243])
    assert mean_ci95([0.7]) == (0.7, None)  # one seed: no interval
    assert mean_ci95([0.5, 1.0], 0.0, 1.0)[1] == [0.0, 1.0]  # clipped to the metric's range


def test_energy_at_equal_work_charges_dropped_jobs_at_the_policy_own_price():
    streams = {
        "cheap": {"jobs": 10, "finished": 10, "finished_energy_mj": 10.0},
        "dear": {"jobs": 4, "finished": 2, "finished_energy_mj": 200.0},
    }
    assert energy_equal_work_mj(streams) == pytest.approx(10.0 + 400.0)
    streams["dear"]["finished"] = 0
    assert energy_equal_work_mj(streams) is None


def test_real_sweep_is_deterministic_and_seeds_differ():
    hw = load_hardware("edge-4x4")
    models = load_models(["mobilenetv2"])
    kw: dict[str, Any] = {"seeds": 2, "workers": 1, "models": models, "bisect_steps": 1}
    sc = SCENARIO.model_copy(
        update={"streams": [SCENARIO.streams[0].model_copy(update={"jitter_ms": 4.0})]}
    )
    before = gc.get_threshold()
    a = sweep(sc, hw, ["fcfs"], [1, 300], **kw)
    assert gc.get_threshold() == before  # a point's GC setting ends with the point
    gc.disable()  # results do not depend on the garbage collector
    try:
        b = sweep(sc, hw, ["fcfs"], [1, 300], **kw)
    finally:
        gc.enable()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    pts = a["policies"]["fcfs"]["curve"]
    assert pts[0]["satisfaction"] == 1.0 and pts[1]["satisfaction"] < 0.99
    assert len(a["policies"]["fcfs"]["bisection"]) == 1


def test_shipped_scenarios_are_named_like_files():
    names = shipped_scenarios()
    assert "ad_urban" in names
    assert load_scenario("ad_urban").name == "ad_urban"
    assert load_scenario(names["ad_urban"]).name == "ad_urban"
    with pytest.raises(IsoschedError, match=r"shipped: .*ad_urban"):
        load_scenario("no_such_scenario")


def test_cli_trace_gen_and_sweep_take_a_shipped_name(tmp_path):
    out = tmp_path / "t.jsonl"
    cmd = [sys.executable, "-m", "isosched", "trace", "gen", "ad_urban", "--seed", "7"]
    proc = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == (ROOT / "traces" / "ad_urban.s7.jsonl").read_text()
    bad = subprocess.run(
        [sys.executable, "-m", "isosched", "sweep", "no_such_scenario"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "no shipped scenario" in bad.stderr


def test_cli_defaults_are_the_library_defaults():
    import inspect

    from isosched.cli.results import results as cli_results
    from isosched.cli.sweep import sweep as cli_sweep
    from isosched.sim.sweep import BISECT_STEPS, DEFAULT_SEEDS

    for command in (cli_sweep, cli_results):
        params = inspect.signature(command).parameters
        assert params["seeds"].default == DEFAULT_SEEDS
        assert params["bisect_steps"].default == BISECT_STEPS


def test_a_name_given_another_graph_is_planned_again_in_the_same_process():
    """The process keeps plan books between sweeps; one is reused only for the same graphs."""
    from isosched.sim import sweep as sweep_module

    sc = parse_scenario(
        {
            "schema": "isosched.scenario/v1",
            "name": "renamed",
            "horizon_ms": 40,
            "streams": [
                {"id": "s", "model": "net", "period_ms": 4.0, "deadline_ms": 8.0, "priority": 1}
            ],
        }
    )
    hw = load_hardware("edge-4x4")
    zoo = load_models(["mobilenetv2", "pointpillars"])

    def energy(model: str) -> float:
        doc = sweep(sc, hw, ["fcfs"], [1.0], seeds=1, workers=1, models={"net": zoo[model]})
        return float(doc["policies"]["fcfs"]["curve"][0]["energy_mj"])

    sweep_module._BOOKS.clear()
    alone = energy("pointpillars")
    sweep_module._BOOKS.clear()
    first = energy("mobilenetv2")
    assert energy("pointpillars") == alone != first
