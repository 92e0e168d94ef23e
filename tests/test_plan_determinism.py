"""DESIGN.md §10: no wall-clock limit decides a plan; a wall-clock safety net that fires says so.

CP-SAT runs with one worker, a fixed seed and a deterministic-time limit; the matcher with a node
budget. These tests never depend on how fast the machine is: limits are deterministic (or so
small or so large that only one outcome is possible).
"""

import dataclasses
import random
from types import SimpleNamespace

import pytest
from ortools.sat.python import cp_model

from isosched.cost import EnergyPj
from isosched.io.hardware_json import load_hardware
from isosched.match import MatchResult
from isosched.plan import (
    AllocationResult,
    Option,
    place_tile_graph,
    plan_model,
    plan_to_doc,
    solve_allocation,
)
from isosched.plan.ilp import wall_limited
from isosched.plan.multijob import JobDemand, MultiJobResult, allocate_jobs
from isosched.plan.placement import SegmentPlacement, _stopped_by_wall
from isosched.zoo import GraphBuilder

HW4 = load_hardware("edge-4x4")


def _options(units=120, seed=1):
    rng = random.Random(seed)
    return [
        [
            Option("rows", 4 * k, rng.randint(1_000, 100_000) // k, 1, EnergyPj())
            for k in range(1, 12)
        ]
        for _ in range(units)
    ]


def _jobs(n=40, seed=3):
    rng = random.Random(seed)
    out = []
    for j in range(n):
        tiles = rng.sample(range(1, 33), 5)
        opts = tuple(sorted((t, rng.uniform(10, 200) * 16 / t) for t in tiles))
        held = rng.choice([0, 0, opts[0][0]])
        out.append(
            JobDemand(
                f"j{j}",
                rng.choice([1, 3, 9]),
                rng.uniform(20, 150),
                opts,
                held,
                rng.uniform(0, 20),
            )
        )
    return out


def _chain(n_convs=3):
    b = GraphBuilder("tiny")
    x = b.add("input", shape=[16, 32, 32], id="x")
    for i in range(n_convs):
        x = b.add("conv", [x], id=f"c{i}", out_channels=[16, 32, 64][i % 3], kernel=3, padding=1)
        x = b.add("activation", [x], id=f"r{i}", kind="relu")
    return b.build()


def _identity(result):
    """Everything but the measured wall time."""
    return dataclasses.replace(result, elapsed_ms=0.0)


WALL_FIELDS = ("elapsed_ms", "match_ms")


def _strip_wall(doc):
    if isinstance(doc, dict):
        return {k: _strip_wall(v) for k, v in doc.items() if k not in WALL_FIELDS}
    if isinstance(doc, list):
        return [_strip_wall(v) for v in doc]
    return doc


def test_result_fields_exist():
    names = {f.name for f in dataclasses.fields(AllocationResult)}
    assert {"deterministic_time", "wall_limited", "elapsed_ms"} <= names
    names = {f.name for f in dataclasses.fields(MultiJobResult)}
    assert {"deterministic_time", "wall_limited", "elapsed_ms"} <= names
    names = {f.name for f in dataclasses.fields(SegmentPlacement)}
    assert {"wall_limited", "nodes"} <= names
    r = solve_allocation(_options(5), 4 * 16)
    assert isinstance(r.deterministic_time, float) and r.deterministic_time >= 0
    assert r.wall_limited is False and r.status == "OPTIMAL"
    m = allocate_jobs(_jobs(4), 16)
    assert isinstance(m.deterministic_time, float) and m.deterministic_time >= 0
    assert m.wall_limited is False and m.status == "OPTIMAL"


@pytest.mark.parametrize("dtime", [0.0, 1e-4, 1e-3, 5.0])
def test_allocation_is_identical_under_a_deterministic_limit(dtime):
    """Tiny deterministic limits cut the search at the same point every time."""
    options = _options()
    runs = [_identity(solve_allocation(options, 4 * 256, dtime)) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    assert not runs[0].wall_limited
    assert runs[0].status in ("OPTIMAL", "FEASIBLE")
    # The presolve is exact: even a search cut at once returns the optimal allocation.
    assert runs[0].stage_cycles == _identity(solve_allocation(options, 4 * 256)).stage_cycles


@pytest.mark.parametrize("dtime", [0.0, 1e-4, 1e-3, 0.05])
def test_multijob_is_identical_under_a_deterministic_limit(dtime):
    jobs = _jobs()
    runs = [_identity(allocate_jobs(jobs, 64, dtime)) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    assert not runs[0].wall_limited
    assert runs[0].deterministic_time <= max(dtime, 0.0) + 0.01


def test_a_wall_safety_net_that_fires_is_reported():
    """A wall limit of a microsecond ends the search before any deterministic limit."""
    r = solve_allocation(_options(), 4 * 256, 100.0, time_limit_s=1e-6)
    assert r.wall_limited and r.status == "FEASIBLE"
    m = allocate_jobs(_jobs(), 64, 100.0, time_limit_s=1e-6)
    assert m.wall_limited and m.status != "OPTIMAL"


def test_wall_limited_tells_the_limits_apart():
    def solver(dtime, wall):
        return SimpleNamespace(deterministic_time=dtime, wall_time=wall)

    assert not wall_limited(solver(0.0, 9.0), cp_model.OPTIMAL, 1.0, 1.0)
    assert not wall_limited(solver(0.0, 9.0), cp_model.INFEASIBLE, 1.0, 1.0)
    assert not wall_limited(solver(1.0001, 0.1), cp_model.FEASIBLE, 1.0, 60.0)
    assert wall_limited(solver(0.2, 60.0), cp_model.FEASIBLE, 1.0, 60.0)
    assert wall_limited(solver(0.2, 1.0), cp_model.UNKNOWN, 1.0, 60.0)  # unsure: say so
    assert wall_limited(solver(1.5, 60.0), cp_model.FEASIBLE, 1.0, 60.0)  # both reached


def test_limits_are_validated():
    with pytest.raises(ValueError, match="dtime_limit"):
        solve_allocation(_options(2), 64, -1.0)
    with pytest.raises(ValueError, match="time_limit_s"):
        allocate_jobs(_jobs(2), 16, time_limit_s=0.0)
    with pytest.raises(ValueError, match="workers"):
        allocate_jobs(_jobs(2), 16, workers=0)


def test_matcher_stop_reasons():
    def result(found=False, proved=False, reason="", nodes=0):
        return MatchResult(found, "mcts", 1.0, {}, None, proved, reason, {"nodes": nodes})

    budget = "budget exhausted before a placement was found"
    assert not _stopped_by_wall(result(found=True, reason="found", nodes=3), 100)
    assert not _stopped_by_wall(result(proved=True, reason="proved: odd cycle"), 100)
    assert not _stopped_by_wall(result(reason="search tree exhausted", nodes=7), 100)
    assert not _stopped_by_wall(result(reason=budget, nodes=100), 100)  # the node budget
    assert _stopped_by_wall(result(reason=budget, nodes=99), 100)  # the wall clock
    assert _stopped_by_wall(result(reason=budget, nodes=10**6), None)


def test_placement_is_decided_by_the_node_budget():
    """A node budget too small for low hop bounds raises the bound the same way every time."""
    plan = plan_model(_chain(6), load_hardware("edge-8x8"))
    tg = max((s.tile_graph for s in plan.segments), key=len)
    assert len(tg) == 50
    hops = {}
    for max_nodes in (50, 20_000):
        runs = [place_tile_graph(tg, 8, 8, 1, 60_000.0, 0, max_nodes) for _ in range(3)]
        keys = [(r.placement, r.hops, r.library, r.nodes, r.wall_limited) for r in runs]
        assert keys[0] == keys[1] == keys[2]
        assert not runs[0].wall_limited
        hops[max_nodes] = runs[0].hops
    assert hops[50] > 1  # h = 1 failed on the node budget: not wall-limited


@pytest.mark.parametrize("dtime", [0.0, 1e-4, 5.0])
def test_plans_are_identical_apart_from_wall_times(dtime):
    g = _chain(4)
    docs = [
        _strip_wall(plan_to_doc(plan_model(g, HW4, ilp_dtime_limit=dtime), library=True))
        for _ in range(2)
    ]
    assert docs[0] == docs[1]
    assert docs[0]["wall_limited"] is False
    seg = docs[0]["segments"][0]
    assert {"deterministic_time", "wall_limited"} <= set(seg["solver"])
    assert {"match_nodes", "match_wall_limited"} <= set(seg)
    assert "deterministic_time" in docs[0]["solver"]
