"""The matcher's input limits: what it refuses, and that answers at the limits stay right.

Each case was found by a review that tried to break the placer through its front ends.
"""

import math

import pytest

from isosched.match import TileMatcher, mesh_target
from isosched.match.placer import MAX_HELD_COST, labelled_tiles, place
from isosched.match.target import MAX_LINKS, MatchInputError, check_mesh, max_hops
from isosched.plan.placement import PlacementError, place_tile_graph
from isosched.tilegraph import MAX_EDGE_BYTES, TileGraph, TileGraphError

CHAIN = TileGraph.from_edges(list("abcd"), [("a", "b"), ("b", "c"), ("c", "d")])


def test_mesh_limits_bound_the_targets_links():
    check_mesh(64, 64, 16)  # the wafer preset at the largest hop bound
    check_mesh(128, 128, 10)
    with pytest.raises(MatchInputError, match="tile links"):
        check_mesh(128, 128, 11)
    with pytest.raises(MatchInputError, match="per side"):
        check_mesh(129, 1, 1)  # 300x300 at 16 hops took 5.5 GB before
    with pytest.raises(MatchInputError, match="hops"):
        check_mesh(8, 8, 17)
    for side in (1, 8, 64, 100, 128):
        top = max_hops(side, side)
        check_mesh(side, side, top)
        assert top == 16 or side * side * 2 * (top + 1) * (top + 2) > MAX_LINKS
    with pytest.raises(MatchInputError, match="tile links"):
        place(CHAIN, 11, (1 << (128 * 128)) - 1, 128, 128)


def test_the_planner_stays_within_the_hop_limit_of_wide_meshes():
    with pytest.raises(PlacementError, match=r"hops must be in 1\.\.10 on 128x128"):
        place_tile_graph(CHAIN, 128, 128, hops=11)


def test_held_costs_are_bounded_so_their_sums_stay_finite():
    """At 1e308 a job's cost summed over its tiles overflowed, and ``cp`` proved "no placement"
    for a chain that fits the held tiles exactly."""
    held = {"j": ([[0, 0], [1, 0], [0, 1], [1, 1]], MAX_HELD_COST)}
    free, victims = labelled_tiles(2, 2, [], held)
    ans = place(CHAIN, 1, free, 2, 2, victims=victims, engine="cp")
    assert ans.found and ans.victims == ("j",) and math.isfinite(ans.cost)
    for bad in (1e308, math.inf, math.nan, -1.0):
        with pytest.raises(MatchInputError, match="cost must be in"):
            labelled_tiles(2, 2, [], {"j": ([[0, 0]], bad)})
    with pytest.raises(MatchInputError, match="holds no tile"):
        labelled_tiles(2, 2, [], {"j": ([], 1.0)})


@pytest.mark.parametrize("engine", ["cp+repair", "cp", "repair", "mcts"])
def test_budgets_are_checked_by_every_engine(engine):
    for budget in (-1.0, math.nan, math.inf):
        with pytest.raises(MatchInputError, match="budget_ms"):
            place(CHAIN, 1, 0xFFFF, 4, 4, engine=engine, budget_ms=budget)
    with pytest.raises(MatchInputError, match="node_budget"):
        place(CHAIN, 1, 0xFFFF, 4, 4, engine=engine, node_budget=-1)
    # a node budget past 64 bits is no budget at all, not an overflow in the compiled kernels
    ans = place(CHAIN, 1, 0xFFFF, 4, 4, engine=engine, node_budget=2**70)
    assert ans.found


def test_a_repair_turn_without_a_step_says_so():
    r = TileMatcher(mesh_target(4, 4, 1), CHAIN).match(engine="repair", max_nodes=0)
    assert r.reason == "budget" and r.detail.startswith("no repair step")


def test_tile_graph_edges_name_vertices_by_string_and_bound_their_bytes():
    vertices = [{"id": "a"}, {"id": "b"}]
    for edge, message in (
        ({"src": ["a"], "dst": "b"}, "must be vertex ids"),
        ({"src": "a", "dst": {"k": 1}}, "must be vertex ids"),
        ({"src": "a", "dst": "b", "bytes": MAX_EDGE_BYTES + 1}, "'bytes' is above"),
    ):
        with pytest.raises(TileGraphError, match=message):
            TileGraph.from_doc({"vertices": vertices, "edges": [edge]})
    edge = {"src": "a", "dst": "b", "bytes": MAX_EDGE_BYTES}
    tg = TileGraph.from_doc({"vertices": vertices, "edges": [edge]})
    free, victims = labelled_tiles(4, 1, [], {"j": ([[2, 0], [3, 0]], 1.0)})
    assert place(tg, 1, free, 4, 1, victims=victims, engine="cp").found
