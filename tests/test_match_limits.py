"""The matcher's input limits: what it refuses, and that answers at the limits stay right.

Each case was found by a review that tried to break the placer through its front ends.
"""

import itertools
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


def test_mesh_target_refuses_held_costs_whose_sums_could_overflow():
    """Through the Python API too: at 1e308 two held tiles' costs summed to infinity and every
    cost-aware engine proved "no placement" for a pattern that fits them exactly."""
    from isosched.match.target import HeldTile

    ok = mesh_target(2, 1, 1, held={(0, 0): HeldTile(0, MAX_HELD_COST)}, priority=1)
    assert ok.allowed.all()
    for bad in (1e308, math.inf, math.nan, -1.0):
        with pytest.raises(MatchInputError, match="cost must be in"):
            mesh_target(2, 1, 1, held={(0, 0): HeldTile(0, bad)}, priority=1)


def _held_all(width, height, cost=1.0):
    """Every tile of a ``width × height`` mesh held by a lower-priority job at ``cost``."""
    from isosched.match.target import HeldTile

    held = {(x, y): HeldTile(0, cost) for x in range(width) for y in range(height)}
    return mesh_target(width, height, 2, held=held, priority=1)


def test_a_cost_aware_answer_the_wall_clock_cut_short_says_so():
    """A cost-aware search improves its best until its space is exhausted, its nodes run out or
    the wall clock stops it; only the last makes the answer depend on the machine, and only then
    is it ``wall_limited`` (found or not)."""
    ids = [f"v{i}" for i in range(40)]
    big = TileGraph.from_edges(ids, [(a, b, 1) for a, b in itertools.pairwise(ids)])
    target = _held_all(12, 12)
    for engine in ("cp", "ullmann", "mcts"):
        m = TileMatcher(target, big)
        # a first placement takes about a millisecond; the space is far too big to exhaust
        walled = m.match(engine=engine, cost_aware=True, budget_ms=200.0, max_nodes=10**12)
        assert walled.found and walled.wall_limited, engine
        counted = m.match(engine=engine, cost_aware=True, budget_ms=60_000.0, max_nodes=2_000)
        assert counted.found and counted.nodes <= 2_000 and not counted.wall_limited, engine
    tiny = TileGraph.from_edges(list("abc"), [("a", "b", 1), ("b", "c", 1)])
    for engine in ("cp", "ullmann", "mcts"):
        done = TileMatcher(_held_all(3, 1), tiny).match(
            engine=engine, cost_aware=True, budget_ms=60_000.0, max_nodes=10**9
        )
        assert done.found and done.detail.startswith("optimal") and not done.wall_limited, engine


def test_cost_aware_mcts_ends_when_its_tree_holds_every_placement():
    """A complete placement in the tree is a leaf, pruned once scored: cost-aware MCTS on a
    tiny instance exhausts its tree (optimal) instead of returning to the leaves, uncounted,
    until the wall clock ends it."""
    path = TileGraph.from_edges(list("abc"), [("a", "b", 1), ("b", "c", 1)])
    res = TileMatcher(_held_all(3, 1), path).match(
        engine="mcts", cost_aware=True, budget_ms=60_000.0, max_nodes=10**6
    )
    assert res.found and res.detail == "optimal: search tree exhausted"
    assert res.stats["iterations"] < 100 and res.elapsed_ms < 10_000


def test_the_portfolio_keeps_a_node_budget_of_zero():
    """``cp``'s share of the portfolio is at least one node, but never more than the budget."""
    path = TileGraph.from_edges(["a", "b"], [("a", "b", 1)])
    ans = place(path, 1, 0b11, 2, 1, node_budget=0, engine="portfolio")
    assert ans.nodes == 0 and not ans.found and ans.reason == "budget"


def test_the_portfolio_says_when_the_wall_clock_cut_cps_quarter(monkeypatch):
    """When the wall clock, not its node share, ended ``cp``'s quarter, what MCTS then found
    depends on the machine: the answer is ``wall_limited`` even when found."""
    from isosched.match import placer
    from isosched.match.matcher import MatchResult

    class Stub:
        pattern = TileGraph.from_edges(["a", "b"], [("a", "b", 1)])

        def match(self, engine, **kw):
            if engine == "cp":
                return MatchResult(
                    False, "cp", 1.0, {}, reason="budget", stats={"nodes": 5}, wall_limited=True
                )
            return MatchResult(True, "mcts", 1.0, {"a": (0, 0), "b": (1, 0)}, 0.0, False, "found")

    got, nodes = placer._portfolio(Stub(), 100.0, 0, False, 1_000, None)  # type: ignore[arg-type]
    assert got.found and got.wall_limited and nodes == 5


def test_an_empty_pattern_is_placed_without_an_online_match():
    """Nothing to place is found, with no library and no online match (it was "budget")."""
    empty = TileGraph.from_edges([], [])
    ans = place(empty, 1, 0b1111, 2, 2, online=False)
    assert ans.found and ans.tiles == () and ans.reason == "found" and ans.nodes == 0
    assert place(empty, 1, 0b1111, 2, 2).found


def test_the_portfolios_stats_count_both_stages():
    """The portfolio's ``stats["nodes"]`` is the nodes of both stages, as its answer says."""
    from isosched.match.planted import planted_instance

    inst = planted_instance(16, 16, 150, hops=2, blocked_fraction=0.1, kind="chain", seed=1)
    blocked = set(inst.blocked)
    free = sum(1 << (y * 16 + x) for x in range(16) for y in range(16) if (x, y) not in blocked)
    ans = place(inst.pattern, 2, free, 16, 16, node_budget=400, engine="portfolio")
    assert ans.match is not None and ans.match.engine == "mcts"  # cp's 100 nodes did not do
    assert ans.match.stats["nodes"] == ans.nodes > 100 and ans.match.stats["cp_nodes"] == 100


def test_an_empty_cost_aware_match_is_not_wall_limited():
    """Nothing to place exhausts the space at once: a cost-aware answer is final, not cut short
    by the wall clock (it was flagged, and would have marked a replay's run)."""
    empty = TileGraph.from_edges([], [])
    for engine in ("cp", "ullmann", "mcts"):
        res = TileMatcher(_held_all(2, 2), empty).match(
            engine=engine, cost_aware=True, max_nodes=100
        )
        assert res.found and not res.wall_limited, engine
