"""Issue 14: the planner's own limits — its first phase counted and reported, hop escalation
that stops at the matcher's limit, and hardware whose every accepted value can be planned."""

import json
import re
from typing import Any

import pytest

from isosched.errors import IsoschedError
from isosched.graph import parse_graph
from isosched.hw.model import Hardware
from isosched.io.hardware_json import load_hardware, parse_hardware
from isosched.match import TileMatcher, mesh_target, placement_errors
from isosched.plan import plan_model
from isosched.plan.options import unit_io, unit_options
from isosched.plan.placement import PlacementError, place_tile_graph
from isosched.plan.planner import MAX_CUT_WORK
from isosched.plan.units import build_units, cut_work
from isosched.tilegraph import TileGraph
from isosched.zoo import load_zoo_model, zoo_names
from tests.test_service import TINY


def _chain(n: int) -> dict[str, Any]:
    layers: list[dict[str, Any]] = [{"id": "x", "op": "input", "shape": [64]}]
    layers += [
        {
            "id": f"fc{i}",
            "op": "linear",
            "inputs": ["x" if i == 0 else f"fc{i - 1}"],
            "out_features": 64,
        }
        for i in range(n)
    ]
    return {"name": f"chain{n}", "layers": layers}


def test_a_thousand_layer_chain_plans_with_progress_in_its_first_phase():
    """Option building is linear and the segment DP's work is counted first (greedy beyond)."""
    messages: list[str] = []
    plan = plan_model(
        parse_graph(_chain(1000)), load_hardware("edge-8x8"), progress=messages.append
    )
    assert sum(len(s.segment.layers) for s in plan.segments) == 1001
    solved = [i for i, m in enumerate(messages) if re.match(r"segment \d+ \[\d+/", m)]
    first = messages[: solved[0]]  # before the first segment is solved
    assert any(m.startswith("allocation options: 500/1000") for m in first), messages
    assert any("greedy" in m and f"{MAX_CUT_WORK:,}" in m for m in first), messages


@pytest.mark.parametrize("hw", ["edge-4x4", "edge-8x8", "datacenter-16x16", "wafer-64x64"])
def test_every_zoo_model_keeps_the_latency_dp(hw):
    """The work budget never changes a zoo plan: all of them are within it."""
    chip = load_hardware(hw)
    for name in zoo_names():
        g = load_zoo_model(name)
        units = build_units(g)
        everything = {lay.id for lay in g}
        options = [unit_options(g, u, chip, unit_io(g, u, everything)) for u in units]
        least = [min((o.quarters for o in opts), default=4 * chip.tiles) for opts in options]
        assert cut_work(units, chip, least) <= MAX_CUT_WORK, name


def star_of(leaves: int) -> TileGraph:
    """A hub tile task talking to ``leaves`` others."""
    return TileGraph.from_edges(
        ["c", *(f"l{i}" for i in range(leaves))], [("c", f"l{i}", 1) for i in range(leaves)]
    )


@pytest.fixture
def mcts_starved(monkeypatch) -> list[tuple[str, int]]:
    """MCTS given one search node at every bound; the (engine, hop bound) of every match."""
    calls: list[tuple[str, int]] = []
    real = TileMatcher.match

    def starved(self, engine="mcts", **kw):
        calls.append((engine, self.target.hops))
        if engine == "mcts":
            kw["max_nodes"] = 1
        return real(self, engine=engine, **kw)

    monkeypatch.setattr(TileMatcher, "match", starved)
    return calls


def test_hop_escalation_stops_at_the_limit_with_a_clear_message():
    star = star_of(600)
    with pytest.raises(PlacementError, match=r"within h <= 16 .* talks to 600 others\)$"):
        place_tile_graph(star, 40, 40, 2, max_nodes=200)  # node budgets: no word of the clock


def test_a_failure_after_wall_clock_cuts_says_the_budget_may_be_why():
    """Only the wall-clock net stopped the searches (no node budget, a tiny wall budget): the
    failure says so, since a larger budget or another machine may place the graph."""
    chain = TileGraph.from_edges(
        [f"v{i}" for i in range(16)], [(f"v{i}", f"v{i + 1}") for i in range(15)]
    )
    with pytest.raises(
        PlacementError,
        match=r"wall-clock safety net \(1e-06 ms a search\) stopped some of these searches",
    ):
        place_tile_graph(chain, 4, 4, 1, budget_ms=1e-6)


def test_each_hop_bound_is_announced_with_the_work_so_far():
    """A large tile graph can take minutes per hop bound: progress names the bound it tries."""
    star = star_of(13)
    lines: list[str] = []
    placed = place_tile_graph(star, 8, 8, 2, progress=lines.append)
    assert placed.hops == 3  # a hub of 13 neighbours: 12 tiles lie within 2 hops of any tile
    assert lines[0] == "placing 14 tile tasks within 2 hops"
    assert lines[1].startswith("placing 14 tile tasks within 3 hops (none within 2: ")
    assert lines[1].endswith(" search nodes so far)") and len(lines) == 2


@pytest.mark.slow
def test_llama2_7b_plans_on_wafer_64x64():
    plan = plan_model(load_zoo_model("llama2_7b"), load_hardware("wafer-64x64"))
    assert plan.hops <= 16 and len(plan.segments) >= 1


def _leaves(schema: dict[str, Any], defs: dict[str, Any], path: tuple[str, ...] = ()):
    """(path, minimum, maximum) of every numeric field of the hardware schema."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub:
            yield from _leaves(sub, defs, (*path, key))
        elif sub.get("type") in ("number", "integer"):
            low = sub.get("minimum", sub.get("exclusiveMinimum"))
            yield (*path, key), low, sub.get("maximum")


HW_SCHEMA = Hardware.model_json_schema(by_alias=True)
FIELDS = list(_leaves(HW_SCHEMA, HW_SCHEMA.get("$defs", {})))


def _with(doc: dict[str, Any], path: tuple[str, ...], value: float) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(("path", "low", "high"), FIELDS, ids=[".".join(f[0]) for f in FIELDS])
def test_every_accepted_hardware_value_can_be_planned(path, low, high):
    """At each end of every numeric field's range a model plans; beyond it, a clear refusal."""
    base = load_hardware("edge-4x4").model_dump(mode="json", by_alias=True)
    g = parse_graph(TINY)
    for value in (low, high):
        if value is None:
            continue
        hw = parse_hardware(_with(base, path, value))
        try:
            plan = plan_model(g, hw, ilp_dtime_limit=0.5)
        except IsoschedError as exc:  # a refusal must name its reason, never crash
            assert str(exc)
        else:
            assert plan.latency_ms >= 0
    with pytest.raises(IsoschedError):
        parse_hardware(_with(base, path, 1e-300 if low not in (None, 0) else -1))


@pytest.mark.parametrize(
    "path", [("noc", "link_bytes_per_cycle"), ("dram", "bandwidth_gb_s"), ("utilisation", "linear")]
)
def test_the_weakest_accepted_chip_plans_a_real_model_or_says_why(path):
    base = load_hardware("edge-4x4").model_dump(mode="json", by_alias=True)
    hw = parse_hardware(_with(base, path, 0.01))
    try:
        plan_model(load_zoo_model("mobilenetv2"), hw, ilp_dtime_limit=0.5)
    except IsoschedError as exc:
        assert "cycles" in str(exc) or "fit" in str(exc)


@pytest.mark.parametrize("mesh", [[1024, 1024], [128, 64], [0, 4], [129, 1]])
def test_meshes_beyond_the_largest_preset_are_refused(mesh):
    base = load_hardware("edge-4x4").model_dump(mode="json", by_alias=True)
    with pytest.raises(IsoschedError, match="mesh"):
        parse_hardware({**base, "mesh": mesh})


def test_cp_places_what_mcts_finds_at_no_bound(mcts_starved):
    """MCTS's budget is a few rollouts of a tile graph of thousands of tasks: when it finds
    nothing at any hop bound, ``cp`` tries the bounds again with the same budgets."""
    ring = {
        "vertices": [{"id": f"v{i}"} for i in range(30)],
        "edges": [{"src": f"v{i}", "dst": f"v{(i + 1) % 30}", "bytes": 8} for i in range(30)],
    }
    tg = TileGraph.from_doc(ring)
    lines: list[str] = []
    placed = place_tile_graph(tg, 6, 6, 1, max_nodes=5_000, progress=lines.append)
    # MCTS at bounds 1..10 on 6x6 (W + H - 2), then cp at 1
    assert [e for e, _ in mcts_starved] == ["mcts"] * 10 + ["cp"]
    assert placed.hops == 1 and not placement_errors(tg, mesh_target(6, 6, 1), placed.placement)
    assert lines[-1].startswith("placing 30 tile tasks within 1 hops by cp (MCTS: none within 10;")


def test_cp_starts_above_the_bounds_proved_impossible(mcts_starved):
    """A proof at a bound rules out every smaller one: cp does not search those again."""
    star = star_of(13)  # 12 tiles lie within 2 hops of any tile, so h <= 2 is proved out
    lines: list[str] = []
    placed = place_tile_graph(star, 8, 8, 1, progress=lines.append)
    assert mcts_starved == [("mcts", h) for h in range(1, 15)] + [("cp", 3)] and placed.hops == 3
    assert lines[-1].startswith("placing 14 tile tasks within 3 hops by cp (MCTS: none within 14;")
