"""The library as a notebook user meets it: answers that say what the docs say, and arguments
refused at once, by their own names (found by a fresh-user review of docs/library.md's calls)."""

from __future__ import annotations

import copy
import json
import math
import pickle
import re
from pathlib import Path

import pytest

from isosched import sim
from isosched.errors import HardwareError, IsoschedError
from isosched.io.hardware_json import load_hardware, parse_hardware
from isosched.io.match_json import read_tilegraph
from isosched.io.model_source import named_models
from isosched.io.scenario_library import load_scenario
from isosched.match import MatchInputError, TileMatcher, mesh_target, placement_cost
from isosched.plan import PlanCache, plan_model
from isosched.plan.multijob import JobDemand, allocate_jobs
from isosched.plan.planner import PlanError
from isosched.sim.sweep import sweep
from isosched.trace import generate_trace
from isosched.zoo import load_zoo_model

HW = load_hardware("edge-4x4")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture(scope="module")
def short():
    scenario = load_scenario("tier_s").model_copy(update={"horizon_ms": 400.0})
    trace = generate_trace(scenario, seed=7)
    models = named_models({j.model for j in trace.jobs})
    return scenario, trace, models


@pytest.mark.parametrize("engine", ["cp", "cp-py", "repair", "ullmann", "mcts"])
def test_every_engine_reports_the_documented_cost(engine):
    pattern = read_tilegraph(EXAMPLES / "tile_graph.json")
    target = mesh_target(8, 8, 2)
    r = TileMatcher(target, pattern).match(engine=engine, max_nodes=5000, seed=0)
    assert r.found
    # cp without cost_aware searched by no cost and reported 0.0 on a free chip
    assert r.cost == placement_cost(pattern, target, r.placement) > 0


def test_repair_refuses_a_matcher_with_a_feasibility_hook():
    pattern = read_tilegraph(EXAMPLES / "tile_graph.json")

    class NotTileZero(TileMatcher):
        def semantic_feasibility(self, vertex: int, tile: int) -> bool:
            return tile != 0

    m = NotTileZero(mesh_target(8, 8, 2), pattern)
    with pytest.raises(MatchInputError, match="repair engine does not call semantic_feasibility"):
        m.match(engine="repair", max_nodes=100)
    r = m.match(engine="cp", max_nodes=5000)  # the others honour it
    assert r.found and (0, 0) not in r.placement.values()


def test_a_run_pickles_and_copies(short):
    _, trace, models = short
    _, runs = sim.replay(trace, HW, ["isosched"], models, cache=PlanCache(disk=False))
    run = runs["isosched"]
    assert run.decisions  # compiled frozen records could not be rebuilt before
    for again in (pickle.loads(pickle.dumps(run)), copy.copy(run), copy.deepcopy(run)):
        assert again.decisions == run.decisions and len(again.jobs) == len(run.jobs)


@pytest.mark.parametrize(
    ("policies", "budget", "message"),
    [
        (["hasp"], math.nan, "wall_budget_s must be a finite number ≥ 0"),
        (["hasp"], -1.0, "wall_budget_s must be a finite number ≥ 0"),
        ("hasp", 10.0, "policies is a list of names, not the string 'hasp'"),
        (["all"], 10.0, "parse_policies\\('all'\\) gives the list"),
        ([], 10.0, "no policy given"),
        (["isosched", "PREMA"], 10.0, "unknown policy 'PREMA'"),
    ],
)
def test_replay_refuses_bad_arguments_before_any_work(short, policies, budget, message):
    _, trace, _ = short
    with pytest.raises(IsoschedError, match=message):
        sim.replay(trace, HW, policies, {}, wall_budget_s=budget)  # no graphs: not reached


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": 0}, "seeds must be a whole number ≥ 1"),
        ({"scales": []}, "scales must be one or more numbers > 0"),
        ({"scales": [1.0, -2.0]}, "scales must be one or more numbers > 0"),
        ({"models": None}, "the sweep has no graph for 'bert_base'"),
    ],
)
def test_sweep_refuses_bad_arguments_by_name(short, kwargs, message):
    scenario, _, models = short
    args = {"scales": [1.0], "seeds": 1, "models": models, **kwargs}
    with pytest.raises(IsoschedError, match=message):
        sweep(scenario, HW, ["hasp"], args.pop("scales"), workers=1, **args)


def test_preemption_reasons_state_the_true_priority_order(short):
    _, trace, models = short
    _, runs = sim.replay(trace, HW, ["prema"], models, cache=PlanCache(disk=False))
    said = [
        m.groups()
        for job in runs["prema"].jobs
        for _, _, why in job.events
        if (m := re.search(r"priority (\d+) ([<=>]) (\d+)", why))
    ]
    assert said, "no preemption on this trace: the test needs one"
    for a, rel, b in said:
        assert rel == (">" if int(a) > int(b) else "=" if a == b else "<")


@pytest.mark.parametrize(
    ("jobs", "total", "message"),
    [
        ([JobDemand("a", 5, 100.0, ((4, 10.0),))], -5, "total_tiles must be a whole number ≥ 0"),
        ([JobDemand("a", 5, 100.0, ((-8, 10.0),))], 16, "a budget of -8 tiles"),
        ([JobDemand("a", 5, 100.0, ((2.5, 10.0),))], 16, "a budget of 2.5 tiles"),  # type: ignore[arg-type]
        (
            [JobDemand("a", 5, 100.0, ((4, 10.0),)), JobDemand("a", 1, 50.0, ((4, 5.0),))],
            16,
            "job 'a' is given twice",
        ),
    ],
)
def test_allocate_jobs_refuses_impossible_demands(jobs, total, message):
    with pytest.raises(ValueError, match=message):
        allocate_jobs(jobs, total)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ilp_dtime_limit": -1}, "ilp_dtime_limit must be a finite number ≥ 0, got -1"),
        ({"ilp_time_limit_s": 0}, "ilp_time_limit_s must be a finite number > 0"),
        ({"match_budget_ms": math.inf}, "match_budget_ms must be a finite number ≥ 0"),
        ({"match_nodes": -5}, "match_nodes must be a finite number ≥ 0, got -5"),
        ({"hops": 0}, "hops must be a finite number ≥ 1"),
    ],
)
def test_plan_model_names_the_argument_out_of_range(kwargs, message):
    with pytest.raises(PlanError, match=message):
        plan_model(load_zoo_model("mobilenetv2"), HW, **kwargs)


def test_a_hardware_file_names_every_missing_field():
    with open(ROOT / "isosched" / "hw" / "presets" / "edge-4x4.json") as fh:
        doc = json.load(fh)
    del doc["mesh"], doc["clock_ghz"]
    with pytest.raises(HardwareError, match="missing fields mesh, clock_ghz"):
        parse_hardware(doc)
