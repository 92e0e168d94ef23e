"""``isosched results``: stamped sweep documents, the generated block, resumption from the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.sim.point_cache import PointCache, point_key
from isosched.trace import parse_scenario

TINY = {
    "name": "tiny_results",
    "horizon_ms": 60,
    "streams": [
        {"id": "cam", "model": "mobilenetv2", "period_ms": 20, "deadline_ms": 15,
         "priority": 9, "critical": True, "source": "test"},
    ],
}  # fmt: skip


def test_point_keys_follow_content_and_the_cache_round_trips(tmp_path):
    sc = parse_scenario(TINY)
    hw = load_hardware("edge-4x4")
    point = (sc, hw, "fcfs", 1.0, 0)
    assert point_key(point) == point_key((sc, hw, "fcfs", 1.0, 0))
    assert point_key(point) != point_key((sc, hw, "fcfs", 1.0, 1))
    flow = hw.dataflow.model_copy(update={"lts_activations_via_dram": True})
    assert point_key(point) != point_key(
        (sc, hw.model_copy(update={"dataflow": flow}), "fcfs", 1.0, 0)
    )
    cache = PointCache(tmp_path)
    assert cache.get(point) is None
    cache.put(point, {"satisfaction": 1.0})
    assert cache.get(point) == {"satisfaction": 1.0}
    # The models' content is part of the key: a name that now stands for another graph (a file
    # edited between two runs) misses, the same graph hits.
    zoo = load_models(["mobilenetv2", "resnet50"])
    same = PointCache(tmp_path, {"mobilenetv2": zoo["mobilenetv2"]})
    edited = PointCache(tmp_path, {"mobilenetv2": zoo["resnet50"]})
    same.put(point, {"satisfaction": 0.5})
    assert same.get(point) == {"satisfaction": 0.5} and edited.get(point) is None
    assert (same.hits, same.stored, edited.hits) == (1, 1, 0)


def test_results_writes_stamped_data_and_the_block_then_resumes(tmp_path):
    scenario = tmp_path / "tiny.json"
    scenario.write_text(json.dumps(TINY))
    md = tmp_path / "results.md"
    block = "<!-- results:begin -->\nold\n<!-- results:end -->\n"
    md.write_text("# Results\n\nhand-written discussion\n" + block + "tail\n")
    cmd = [
        sys.executable, "-m", "isosched", "results", "--scenarios", str(scenario),
        "--hw", "edge-4x4", "--physics", "fair,premise", "--scales", "1,2", "--seeds", "2",
        "--workers", "1",
        "--ablations-on", "none", "--data", str(tmp_path / "data"), "--markdown", str(md),
        "--point-cache", str(tmp_path / "points"),
    ]  # fmt: skip
    env = {**os.environ, "ISOSCHED_CACHE_DIR": str(tmp_path / "plans")}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stderr
    written = [ln for ln in first.stderr.splitlines() if ": written " in ln]
    assert "(0 cached points" in written[0]  # fair first: every point new
    assert "(0 cached points" not in written[1]  # the premise reuses IsoSched's and HASP's
    out = tmp_path / "data" / "premise" / "edge-4x4" / "tiny_results.json"
    doc = json.loads(out.read_text())
    assert doc["schema"] == "isosched.results/v1" and doc["physics"] == "premise"
    assert doc["sweep"]["schema"] == "isosched.sweep/v2" and doc["sweep"]["seeds"] == 2
    assert set(doc["code"]) == {"commit", "dirty", "isosched_sha256"} and doc["hw_sha256"]
    fair = json.loads((tmp_path / "data" / "fair" / "edge-4x4" / "tiny_results.json").read_text())
    for policy in ("isosched", "hasp"):
        assert doc["sweep"]["policies"][policy] == fair["sweep"]["policies"][policy]
    assert set(doc["sweep"]["policies"]) == {
        "isosched",
        "hasp",
        "prema",
        "planaria",
        "cdmsa",
        "moca",
        "fcfs",
    }
    index = json.loads((tmp_path / "data" / "index.json").read_text())
    assert [(e["physics"], e["scenario"]) for e in index] == [
        ("fair", "tiny_results"),
        ("premise", "tiny_results"),
    ]
    text = md.read_text()
    assert text.startswith("# Results\n\nhand-written discussion\n") and text.endswith("tail\n")
    assert "old" not in text and "### tiny_results on edge-4x4 — fair physics" in text
    assert "LBT capacity (bracket)" in text
    # a second run finds every point in the cache and writes the same documents
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert second.returncode == 0, second.stderr
    assert "0 new" in second.stderr
    again = json.loads(
        (tmp_path / "data" / "premise" / "edge-4x4" / "tiny_results.json").read_text()
    )
    assert again["sweep"] == doc["sweep"]
    # --render-only rewrites the tables from the data without running a point
    md.write_text("")
    render = subprocess.run([*cmd, "--render-only"], capture_output=True, text=True, env=env)
    assert render.returncode == 0 and "point" not in render.stderr
    assert "### tiny_results on edge-4x4 — premise physics" in md.read_text()
    assert "Computed by other code" not in md.read_text()
    # a table kept from another package's run is named as such
    fair_path = tmp_path / "data" / "fair" / "edge-4x4" / "tiny_results.json"
    fair["code"]["isosched_sha256"] = "0" * 64
    fair_path.write_text(json.dumps(fair))
    render = subprocess.run([*cmd, "--render-only"], capture_output=True, text=True, env=env)
    assert render.returncode == 0, render.stderr
    assert "Computed by other code than this run's (package `" in md.read_text()
    assert "): tiny_results on edge-4x4 (fair)." in md.read_text()


def test_a_point_cut_short_by_the_wall_safety_net_fails_the_sweep_and_is_never_stored(
    tmp_path, monkeypatch
):
    from isosched.errors import BudgetExceededError
    from isosched.io.model_source import load_models
    from isosched.plan import PlanCache
    from isosched.sim import sweep as sweep_mod

    sc = parse_scenario(TINY)
    hw = load_hardware("edge-4x4")
    cache = PointCache(tmp_path)
    models, plans = load_models(["mobilenetv2"]), PlanCache(disk=False)
    # a zero budget stops the replay at its first event: the stand-in for a hang
    monkeypatch.setattr(sweep_mod, "POINT_WALL_BUDGET_S", 0.0)
    try:
        sweep_mod.sweep(
            sc, hw, ["fcfs"], [1.0], 2, 1, models=models, cache=plans, point_cache=cache
        )
    except BudgetExceededError as exc:
        assert "fcfs at x1, seed" in str(exc) and "edge-4x4" in str(exc)
    else:
        raise AssertionError("a cut-short point was used")
    assert cache.get((sc, hw, "fcfs", 1.0, 0)) is None
    assert cache.get((sc, hw, "fcfs", 1.0, 1)) is None
    # with the safety net out of the way the same sweep runs and stores its points
    monkeypatch.setattr(sweep_mod, "POINT_WALL_BUDGET_S", 3600.0)
    sweep_mod.sweep(sc, hw, ["fcfs"], [1.0], 2, 1, models=models, cache=plans, point_cache=cache)
    assert cache.get((sc, hw, "fcfs", 1.0, 0)) is not None


def _doc(physics, scenario, caps):
    """A results document whose policies have the given capacities (number, ">=x" or "<")."""
    policies = {}
    for name, cap in caps.items():
        censored = isinstance(cap, str) and cap.startswith(">=")
        below = cap == "<"
        value = float(cap[2:]) if censored else 0.0 if below else float(cap)
        policies[name] = {
            "lbt_capacity": value,
            "lbt_capacity_censored": censored,
            "lbt_capacity_below_floor": below,
            "lbt_capacity_bracket": [value, value + 0.25],
        }
    sweep = {"policies": policies, "capacity_floor": 0.0625}
    return {"physics": physics, "hw": "edge-8x8", "scenario": scenario, "sweep": sweep}


def test_the_scoreboard_ranks_censored_above_bisected_above_below_floor_and_tallies_by_physics():
    from isosched.report.tables import scoreboard

    entries = [
        _doc("premise", "b", {"isosched": "<", "hasp": "<", "prema": 1.0}),
        _doc("fair", "ad_urban", {"isosched": 1.5, "hasp": 1.62, "prema": ">=8"}),
        _doc("fair", "a", {"isosched": ">=8", "hasp": 7.75, "prema": ">=8"}),
    ]
    rows = scoreboard(entries).splitlines()
    assert rows[0] == "| scenario | chip | physics | isosched | hasp | prema |"
    # fair first, then by scenario; the tuning scenario is marked
    assert rows[2] == "| a | edge-8x8 | fair | ≥ 8 | 7.75 **W** | ≥ 8 T |"
    assert rows[3] == "| ad_urban (tuning) | edge-8x8 | fair | 1.5 | 1.62 **L** | ≥ 8 **L** |"
    assert rows[4] == "| b | edge-8x8 | premise | < 0.0625 | < 0.0625 T | 1 **L** |"
    assert rows[5] == "| **fair: wins / ties / losses** | | | | 1 / 0 / 1 | 0 / 1 / 1 |"
    assert rows[6] == "| **premise: wins / ties / losses** | | | | 0 / 1 / 0 | 0 / 0 / 1 |"


def test_stream_satisfaction_defaults_to_where_the_policies_part():
    from isosched.report.tables import stream_satisfaction

    def curve(sats):
        return [
            {"scale": x, "satisfaction": s, "streams": {"cam": {"satisfaction": s}}}
            for x, s in sats
        ]

    doc = {
        "target": 0.99,
        "policies": {
            "isosched": {"curve": curve([(1, 1.0), (2, 0.995), (4, 0.5)])},
            "hasp": {"curve": curve([(1, 1.0), (2, 0.98), (4, 0.4)])},
        },
    }
    at, policies, rows = stream_satisfaction(doc)
    assert at == 2 and policies == ["isosched", "hasp"]
    assert rows == [{"stream": "cam", "cells": [(0.995, None), (0.98, None)]}]
    assert stream_satisfaction(doc, 4)[0] == 4
    with pytest.raises(ValueError, match="not a grid scale"):
        stream_satisfaction(doc, 3)


def test_the_tier_table_puts_the_tiers_side_by_side_per_chip():
    from isosched.report.tables import tier_table

    entries = [
        _doc("fair", "tier_xl", {"isosched": 0.875, "hasp": 0.445}),
        _doc("fair", "tier_s", {"isosched": ">=8", "hasp": ">=8"}),
        _doc("premise", "tier_l", {"isosched": 1.5, "hasp": "<"}),
        _doc("fair", "ad_urban", {"isosched": 1.5, "hasp": 1.62}),
    ]
    rows = tier_table(entries).splitlines()
    assert rows[0] == "| policy | edge-8x8 S | edge-8x8 XL |"
    assert rows[2:] == ["| isosched | ≥ 8 | 0.875 |", "| hasp | ≥ 8 | 0.445 |"]
    assert tier_table([entries[-1]]) == ""


def test_tss_only_policies_run_the_same_under_both_physics():
    """The premise changes no TSS-only run: what lets a premise sweep reuse fair points."""
    from isosched.cli.results import physics_hardware, tss_only
    from isosched.io.model_source import load_models
    from isosched.plan import PlanCache
    from isosched.sim import sweep as sweep_mod

    sc = parse_scenario(TINY)
    fair = load_hardware("edge-4x4")
    premise = physics_hardware(fair, "premise")
    models, plans = load_models(["mobilenetv2"]), PlanCache(disk=False)
    runs = {}
    for hw in (fair, premise):
        doc = sweep_mod.sweep(
            sc, hw, ["isosched", "hasp", "fcfs"], [2.0], 2, 1, models=models, cache=plans
        )
        runs[hw.dataflow.lts_activations_via_dram] = doc["policies"]
    for policy in ("isosched", "hasp"):
        assert tss_only(policy) and runs[False][policy] == runs[True][policy]
    # the check can fail: an LTS policy's runs do change (every intermediate through DRAM)
    assert not tss_only("fcfs") and runs[False]["fcfs"] != runs[True]["fcfs"]


def test_the_physics_blind_store_files_tss_premise_points_under_their_fair_twins(tmp_path):
    from isosched.cli.results import PhysicsBlindStore, physics_hardware

    sc = parse_scenario(TINY)
    fair = load_hardware("edge-4x4")
    premise = physics_hardware(fair, "premise")
    inner = PointCache(tmp_path)
    store = PhysicsBlindStore(inner)
    for policy in ("isosched", "isosched-no-lcs", "hasp", "prema"):
        store.put((sc, fair, policy, 1.0, 0), {"policy": policy})
    assert store.stored == inner.stored == 4
    for policy in ("isosched", "isosched-no-lcs", "hasp"):  # found under the fair key
        assert store.get((sc, premise, policy, 1.0, 0)) == {"policy": policy}
    assert store.get((sc, premise, "prema", 1.0, 0)) is None  # an LTS policy's is its own
    assert store.hits == inner.hits == 3
    store.put((sc, premise, "prema", 1.0, 0), {"policy": "prema", "physics": "premise"})
    assert inner.get((sc, fair, "prema", 1.0, 0)) == {"policy": "prema"}
    assert PhysicsBlindStore.twin((sc, fair, "hasp", 1.0, 0))[1] is fair


def test_stream_table_takes_policies_in_the_order_of_the_other_tables():
    from isosched.report.charts import sweep_capacities
    from isosched.report.tables import stream_satisfaction

    curve = [{"scale": 1, "satisfaction": 1.0, "streams": {"cam": {"satisfaction": 1.0}}}]
    doc = {
        "target": 0.99,
        "policies": {
            p: {"curve": curve, "lbt_capacity": 1.0}
            for p in ("isosched-no-lcs", "hasp", "isosched", "isosched-no-preempt")
        },
    }
    _, policies, _ = stream_satisfaction(doc)
    assert policies == [c["policy"] for c in sweep_capacities(doc)]
    assert policies[:2] == ["isosched", "hasp"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--hw", "edge-4x4,nope"], "nope"),
        (["--hw", "edge-4x4", "--ablations-on", "edge-8x8"], "not a chip of --hw"),
        (["--hw", "edge-4x4", "--physics", "both"], "unknown physics 'both'"),
    ],
)
def test_results_refuses_bad_arguments_before_any_sweep(tmp_path, args, reason):
    cmd = [sys.executable, "-m", "isosched", "results", "--scenarios", "ad_urban", *args]
    cmd += ["--data", str(tmp_path / "data"), "--markdown", str(tmp_path / "r.md")]
    cmd += ["--point-cache", str(tmp_path / "points")]
    env = {**os.environ, "ISOSCHED_CACHE_DIR": str(tmp_path / "plans")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and reason in out.stderr, out.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "plans").exists()
