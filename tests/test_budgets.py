"""Budgets hold on adversarial inputs, and impossible ones are answered with the reason.

Times are checked against the library's own reports with generous slack (machines are noisy);
pytest-timeout guards against a hang.
"""

import random
import time
from pathlib import Path

import pytest

from isosched.cost import EnergyPj
from isosched.errors import IsoschedError
from isosched.graph import parse_graph
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.trace_jsonl import read_scenario
from isosched.match import TileMatcher, mesh_target
from isosched.match.planted import planted_instance
from isosched.plan import PlanCache, plan_model
from isosched.plan.ilp import solve_allocation
from isosched.plan.options import Option
from isosched.sim import PlanBook, summarize
from isosched.sim.engine import Simulator
from isosched.sim.policies import make_policy
from isosched.tilegraph import TileGraph
from isosched.trace import generate_trace

ROOT = Path(__file__).resolve().parent.parent
SLACK_MS = 3000.0


def graph(n, edges):
    return TileGraph.from_doc(
        {
            "vertices": [{"id": f"v{i}"} for i in range(n)],
            "edges": [{"src": f"v{a}", "dst": f"v{b}", "bytes": 1} for a, b in edges],
        }
    )


@pytest.mark.parametrize("engine", ["mcts", "ullmann"])
@pytest.mark.parametrize(
    ("pattern", "mesh", "hops", "reason"),
    [
        (graph(6, [(i, j) for i in range(6) for j in range(i + 1, 6)]), 8, 1, "neighbours"),
        (graph(3, [(0, 1), (1, 2), (0, 2)]), 8, 1, "odd cycle"),
        (graph(20, [(i, i + 1) for i in range(19)]), 4, 2, "only 16 tiles"),
    ],
)
def test_impossible_placements_are_proved_with_a_reason(engine, pattern, mesh, hops, reason):
    result = TileMatcher(mesh_target(mesh, mesh, hops), pattern).match(engine, budget_ms=10_000)
    assert not result.found and result.proved
    assert result.reason == "impossible" and reason in result.detail
    assert result.elapsed_ms < 1000  # cheap proofs come before any search


def with_random_edges(pattern: TileGraph, count: int, seed: int = 0) -> dict[str, object]:
    """``pattern``'s document with ``count`` extra edges between random vertices (self-loops
    dropped): far apart on the planted placement, so almost surely unplaceable, and neither
    found nor refuted for millions of nodes."""
    rng = random.Random(seed)
    ids = list(pattern.ids)
    doc = pattern.to_doc()
    extra = [{"src": rng.choice(ids), "dst": rng.choice(ids), "bytes": 1} for _ in range(count)]
    doc["edges"] = [e for e in [*doc["edges"], *extra] if e["src"] != e["dst"]]
    return doc


@pytest.mark.parametrize("engine", ["mcts", "ullmann"])
def test_ten_thousand_vertices_stop_within_the_budget(engine):
    inst = planted_instance(110, 110, 10_000, hops=1, blocked_fraction=0.05, seed=3)
    pattern = TileGraph.from_doc(with_random_edges(inst.pattern, 200))
    target = mesh_target(110, 110, 1, blocked=inst.blocked)
    t0 = time.perf_counter()
    result = TileMatcher(target, pattern).match(engine, budget_ms=1500)
    wall_ms = (time.perf_counter() - t0) * 1e3
    assert result.elapsed_ms <= 1500 + SLACK_MS
    assert wall_ms <= 1500 + 4 * SLACK_MS  # includes building the candidates
    if not result.found:
        assert result.reason


def test_ilp_honours_its_time_limit():
    rng = random.Random(1)
    options = [
        [
            Option("rows", 4 * k, rng.randint(1_000, 100_000) // k, 1, EnergyPj())
            for k in range(1, 12)
        ]
        for _ in range(120)
    ]
    t0 = time.perf_counter()
    result = solve_allocation(options, budget_quarters=4 * 256, time_limit_s=0.3)
    assert (time.perf_counter() - t0) * 1e3 <= 300 + SLACK_MS
    assert result.status in ("OPTIMAL", "FEASIBLE")
    with pytest.raises(IsoschedError):  # even the smallest options exceed the budget
        solve_allocation(options, budget_quarters=10, time_limit_s=0.3)


def test_a_layer_larger_than_the_whole_chip_is_planned_through_dram():
    """A 2 GiB activation exceeds every tile's SRAM (and all of them together): the plan tiles
    the data through DRAM instead of failing, within the solver and matcher budgets."""
    doc = {
        "name": "giant",
        "layers": [
            {"id": "x", "op": "input", "shape": [64, 4096, 4096]},
            {
                "id": "c",
                "op": "conv",
                "inputs": ["x"],
                "out_channels": 64,
                "kernel": 3,
                "padding": 1,
            },
        ],
    }
    hw = load_hardware("edge-4x4")
    g = parse_graph(doc)
    assert g["x"].output_bytes > hw.tiles * hw.tile.sram_bytes
    t0 = time.perf_counter()
    plan = plan_model(g, hw, ilp_time_limit_s=1.0, match_budget_ms=500)
    assert time.perf_counter() - t0 < 60
    (seg,) = plan.segments
    assert seg.data_tiles > 1 and plan.latency_ms > 0


def test_replay_stops_at_its_wall_budget():
    sc = read_scenario(ROOT / "traces" / "scenarios" / "ad_stress.json")
    # the camera and LiDAR detectors only: 16,000 jobs, and two models to plan rather than eight
    kept = [s for s in sc.streams if s.model in ("yolov3", "pointpillars")]
    sc = sc.model_copy(update={"streams": kept})
    trace = generate_trace(sc, seed=1, scale=8.0)
    assert len(trace.jobs) > 15_000
    hw = load_hardware("edge-8x8")
    book = PlanBook(hw, load_models({j.model for j in trace.jobs}), PlanCache())
    book.warm({j.model for j in trace.jobs})  # plans first: the budget is the replay's
    t0 = time.perf_counter()
    run = Simulator(trace, hw, make_policy("isosched"), book, wall_budget_s=0.05).run()
    assert time.perf_counter() - t0 <= 0.05 + SLACK_MS / 1e3 + 5
    # Cut short: it says so, and the jobs it did not reach count as unfinished.
    assert run.budget_exhausted
    assert any(j.finish_us is None for j in run.jobs)
    assert summarize(run)["budget_exhausted"] is True
