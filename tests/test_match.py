"""The placement matcher against networkx VF2, planted and impossible instances."""

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from networkx.algorithms import isomorphism as iso

from isosched.match import (
    HeldTile,
    MatchInputError,
    TileMatcher,
    candidate_matrix,
    mesh_target,
    placement_cost,
    placement_errors,
    planted_instance,
    refine,
)
from isosched.tilegraph import TileGraph, TileGraphError
from tests.test_match_cp import draw_mesh_instance

CONTRACT_CHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "contract_check.py"


def target_graph(t):
    """The target as a networkx graph (tiles within h hops linked)."""
    g: nx.Graph[int] = nx.Graph()
    for a in range(t.size):
        if t.allowed[a]:
            g.add_node(a)
            g.add_edges_from((a, b) for b in t.neighbours(a).tolist())
    return g


def pattern_graph(p):
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(len(p)))
    g.add_edges_from((s, d) for s, d, _ in p.edges if s != d)
    return g


@st.composite
def instances(draw):
    n = draw(st.integers(1, 7))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    w, h = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    hops = draw(st.integers(1, 3))
    tiles = [(x, y) for x in range(w) for y in range(h)]
    blocked = draw(st.lists(st.sampled_from(tiles), unique=True, max_size=len(tiles) // 3))
    ids = [f"v{i}" for i in range(n)]
    pattern = TileGraph.from_edges(ids, [(f"v{a}", f"v{b}", 64) for a, b in edges])
    return pattern, mesh_target(w, h, hops, blocked)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_complete_engine_agrees_with_vf2(inst):
    """Ullmann finds a placement exactly when networkx VF2 finds a monomorphism."""
    pattern, target = inst
    oracle = iso.GraphMatcher(target_graph(target), pattern_graph(pattern))
    exists = oracle.subgraph_is_monomorphic()
    result = TileMatcher(target, pattern).match(engine="ullmann", budget_ms=10_000)
    assert result.found == exists
    if result.found:
        assert placement_errors(pattern, target, result.placement) == []
    else:
        assert result.proved and result.placement == {}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(0, 1000))
def test_mcts_placements_are_valid_and_never_invented(inst, seed):
    """MCTS returns only valid placements, and finds none when VF2 proves there is none."""
    pattern, target = inst
    exists = iso.GraphMatcher(
        target_graph(target), pattern_graph(pattern)
    ).subgraph_is_monomorphic()
    result = TileMatcher(target, pattern).match(engine="mcts", budget_ms=2_000, seed=seed)
    if result.found:
        assert exists
        assert placement_errors(pattern, target, result.placement) == []
    else:
        assert result.placement == {}
    if exists:
        # Tiny instances: the search tree is exhausted long before the budget.
        assert result.found


@settings(max_examples=40, deadline=None)
@given(instances())
def test_enumeration_counts_match_vf2(inst):
    """The iterator yields every monomorphism exactly once, as networkx does."""
    pattern, target = inst
    if len(pattern) > 4 or target.size > 9:
        return
    ours = list(TileMatcher(target, pattern).subgraph_monomorphisms_iter())
    assert len({tuple(sorted(m.items())) for m in ours}) == len(ours)
    theirs = iso.GraphMatcher(target_graph(target), pattern_graph(pattern))
    assert len(ours) == sum(1 for _ in theirs.subgraph_monomorphisms_iter())


@pytest.mark.parametrize(
    ("size", "side", "engine"),
    [(50, 10, "ullmann"), (50, 10, "mcts"), (120, 14, "mcts"), (200, 20, "mcts")],
)
@pytest.mark.parametrize("kind", ["chain", "multibranch", "transformer"])
def test_planted_instances_are_found(size, side, engine, kind):
    """Planted DNN-like tile graphs (ids shuffled) are placed validly."""
    inst = planted_instance(side, side, size, hops=2, blocked_fraction=0.1, kind=kind, seed=3)
    target = mesh_target(side, side, 2, inst.blocked)
    assert placement_errors(inst.pattern, target, inst.planted) == []
    result = TileMatcher(target, inst.pattern).match(engine=engine, budget_ms=20_000, seed=1)
    assert result.found, result.reason
    assert placement_errors(inst.pattern, target, result.placement) == []


def test_triangle_at_one_hop_is_impossible():
    """A mesh is bipartite, so a triangle cannot be placed at h = 1; it can at h = 2."""
    tri = TileGraph.from_edges(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    for engine in ("mcts", "ullmann"):
        r = TileMatcher(mesh_target(6, 6, 1), tri).match(engine=engine, budget_ms=500)
        assert not r.found and r.proved and r.reason == "impossible" and "odd cycle" in r.detail
    assert TileMatcher(mesh_target(6, 6, 2), tri).match(budget_ms=500).found


def test_clique_beyond_tile_degree_is_impossible():
    """K14 at h = 2: every vertex needs 13 neighbours, a tile has at most 12."""
    k = TileGraph.from_edges(
        [f"k{i}" for i in range(14)],
        [(f"k{a}", f"k{b}") for a, b in itertools.combinations(range(14), 2)],
    )
    r = TileMatcher(mesh_target(16, 16, 2), k).match(budget_ms=500)
    assert not r.found and r.proved and r.reason == "impossible" and "neighbours" in r.detail


def test_pattern_larger_than_chip_is_impossible():
    chain = TileGraph.from_edges(
        [f"c{i}" for i in range(20)], [(f"c{i}", f"c{i + 1}") for i in range(19)]
    )
    r = TileMatcher(mesh_target(4, 4, 2, blocked=[(0, 0)]), chain).match(budget_ms=500)
    assert not r.found and r.proved and "only 15 tiles" in r.detail


def test_refinement_proves_what_degree_cannot():
    """A 5-cycle at h = 1 on a path of tiles: degrees fit, refinement or search proves no."""
    cycle = TileGraph.from_edges(
        [f"c{i}" for i in range(4)], [(f"c{i}", f"c{(i + 1) % 4}") for i in range(4)]
    )
    target = mesh_target(8, 1, 1)  # a 1-wide mesh is a path: no 4-cycle fits
    r = TileMatcher(target, cycle).match(engine="ullmann", budget_ms=2000)
    assert not r.found and r.proved


def test_budget_is_honoured_on_a_hard_impossible_instance():
    """No placement exists and nothing proves it cheaply: the search stops at the budget."""
    # 60 vertices, every one joined to its next 6 (a band), at h = 2 on a 9x9 mesh with a
    # blocked cross: degrees fit, the band does not.
    ids = [f"b{i}" for i in range(60)]
    edges = [(ids[i], ids[j]) for i in range(60) for j in range(i + 1, min(60, i + 7))]
    band = TileGraph.from_edges(ids, edges)
    blocked = [(4, y) for y in range(9)] + [(x, 4) for x in range(9)]
    for engine in ("mcts", "ullmann"):
        r = TileMatcher(mesh_target(9, 9, 2, blocked), band).match(engine=engine, budget_ms=300)
        assert not r.found
        # Generous: the contract is a small constant over the budget, not a timing test.
        assert r.elapsed_ms < 300 + 5_000


def brute_force_min_cost(pattern, target):
    g = iso.GraphMatcher(target_graph(target), pattern_graph(pattern))
    ids = pattern.ids
    best = None
    for m in g.subgraph_monomorphisms_iter():
        placement = {ids[v]: target.coord(t) for t, v in m.items()}
        c = placement_cost(pattern, target, placement)
        best = c if best is None else min(best, c)
    return best


def test_cost_aware_ullmann_is_optimal_against_brute_force():
    """Branch and bound returns the cheapest placement (byte-hops plus preemption cost)."""
    held = {(1, 1): HeldTile(priority=1, cost=500.0), (2, 1): HeldTile(priority=1, cost=100.0)}
    target = mesh_target(4, 3, 2, blocked=[(3, 0)], held=held, priority=5)
    pattern = TileGraph.from_edges(
        ["a", "b", "c", "d"], [("a", "b", 300), ("b", "c", 50), ("a", "c", 10), ("c", "d", 200)]
    )
    r = TileMatcher(target, pattern).match(engine="ullmann", budget_ms=20_000, cost_aware=True)
    assert r.found and r.reason == "found" and r.detail.startswith("optimal")
    assert r.cost == pytest.approx(brute_force_min_cost(pattern, target))
    mc = TileMatcher(target, pattern).match(engine="mcts", budget_ms=300, cost_aware=True)
    assert mc.found and mc.cost is not None and r.cost is not None and mc.cost >= r.cost


def test_held_tiles_follow_priority():
    """Tiles of lower-priority jobs are usable at their cost; others are not."""
    held = {(0, 0): HeldTile(priority=3, cost=7.0), (1, 0): HeldTile(priority=9, cost=1.0)}
    t = mesh_target(2, 1, 1, held=held, priority=5)
    assert t.allowed.tolist() == [True, False]
    assert t.tile_cost.tolist() == [7.0, 0.0]
    assert mesh_target(2, 1, 1, held=held).allowed.tolist() == [False, False]


def test_semantic_feasibility_hook_is_honoured():
    """Overriding the hook restricts both engines, as networkx's hook does."""

    class LeftHalfOnly(TileMatcher):
        def semantic_feasibility(self, vertex, tile):
            return tile % self.target.width < 3

    inst = planted_instance(6, 6, 10, hops=2, blocked_fraction=0.0, kind="chain", seed=1)
    for engine in ("mcts", "ullmann"):
        r = LeftHalfOnly(mesh_target(6, 6, 2), inst.pattern).match(engine=engine, budget_ms=5000)
        assert r.found
        assert all(x < 3 for x, _ in r.placement.values())


def test_candidate_matrix_and_refinement_are_sparse_algebra():
    """The initial matrix filters by degree; refinement removes unsupported pairs."""
    star = TileGraph.from_edges(["c", "a", "b", "d", "e"], [("c", x) for x in "abde"])
    target = mesh_target(3, 3, 1)
    m = candidate_matrix(star, target)
    # Only the centre tile (1, 1) has four neighbours at h = 1.
    assert m[[0], :].nonzero()[1].tolist() == [4]
    refined, _ = refine(m, star, target)
    # Leaves must sit next to the centre: tiles (1,0), (0,1), (2,1), (1,2).
    assert sorted(refined[[1], :].nonzero()[1].tolist()) == [1, 3, 5, 7]


def test_bad_inputs():
    with pytest.raises(MatchInputError, match="outside"):
        mesh_target(4, 4, 2, blocked=[(4, 0)])
    with pytest.raises(MatchInputError, match="hops"):
        mesh_target(4, 4, 0)
    p = TileGraph.from_edges(["a"], [])
    with pytest.raises(MatchInputError, match="engine"):
        TileMatcher(mesh_target(2, 2), p).match(engine="vf3")
    with pytest.raises(TileGraphError, match="unknown vertex"):
        TileGraph.from_doc({"vertices": [{"id": "a"}], "edges": [{"src": "a", "dst": "b"}]})
    with pytest.raises(TileGraphError, match="duplicate"):
        TileGraph.from_doc({"vertices": [{"id": "a"}, {"id": "a"}], "edges": []})


def test_a_graph_pickled_before_its_cached_fields_still_answers():
    """Graphs in an on-disk plan cache were pickled before ``_ids`` (and ``_csr``) existed;
    loaded again, they answer as a fresh graph does (a replay read such a cache)."""
    g = TileGraph.from_edges(["a", "b", "c"], [("a", "b", 8), ("b", "c")])
    old = object.__new__(TileGraph)
    old.__dict__.update({k: v for k, v in g.__dict__.items() if k not in ("_ids", "_csr")})
    back = pickle.loads(pickle.dumps(old))
    assert "_ids" not in back.__dict__
    assert back.ids == ["a", "b", "c"]
    assert back.ids is not back.ids  # a fresh list each time
    assert [a.tolist() for a in back.undirected_csr()] == [a.tolist() for a in g.undirected_csr()]


def test_tilegraph_document_round_trip():
    inst = planted_instance(8, 8, 20, kind="multibranch", seed=2)
    doc = inst.pattern.to_doc()
    assert TileGraph.from_doc(json.loads(json.dumps(doc))) == inst.pattern


def test_cli_match_meets_the_contract(tmp_path):
    """`isosched match --json` prints one document that the independent checker accepts."""
    inst = planted_instance(10, 10, 40, hops=2, blocked_fraction=0.1, kind="chain", seed=4)
    pat, blk = tmp_path / "p.json", tmp_path / "b.json"
    pat.write_text(json.dumps(inst.pattern.to_doc()))
    blk.write_text(json.dumps({"tiles": [list(t) for t in inst.blocked]}))
    args = ["--mesh", "10x10", "--hops", "2", "--blocked", str(blk)]
    proc = subprocess.run(
        [sys.executable, "-m", "isosched", "match", str(pat), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["found"] and doc["engine"] == "mcts" and doc["elapsed_ms"] >= 0
    out = tmp_path / "r.json"
    out.write_text(proc.stdout)
    if CONTRACT_CHECK.exists():
        check = subprocess.run(
            [sys.executable, str(CONTRACT_CHECK), "match", str(pat), str(out), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mesh", "4y4"], "mesh must look like"),
        (["--mesh", "4x4", "--engine", "vf9"], "unknown engine"),
        (["--mesh", "4x4", "--hops", "0"], "hops"),
    ],
)
def test_cli_match_bad_input_exits_2(tmp_path, args, message):
    pat = tmp_path / "p.json"
    pat.write_text(json.dumps({"vertices": [{"id": "a"}], "edges": []}))
    proc = subprocess.run(
        [sys.executable, "-m", "isosched", "match", str(pat), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_bench_reports_a_peer_error_as_an_error_not_a_miss():
    """bench/match_bench.py: a raising or dying peer is an error with its exception; a peer runs
    in a child of the fork server, with its graphs built there."""
    import functools
    import os
    import time
    from collections.abc import Callable
    from typing import cast

    from bench.match_bench import Outcome, Peer, PeerJob, _cell, run_capped

    path = ((0, 1), (1, 2))
    assert run_capped(PeerJob("networkx_vf2", (0, 1, 2), path, 2, ((0, 1),)), 5.0).solved
    no = run_capped(PeerJob("networkx_vf2", (0, 1, 2), path, 4, ((0, 1), (1, 2), (2, 3))), 5.0)
    assert no.status == "no" and no.ms < 5_000
    # a peer that raises while it is built (igraph 1.0's removed keyword raised a TypeError)
    bad = run_capped(cast("Callable[[], Peer]", functools.partial(int, "time_limit")), 5.0)
    assert bad.status == "error" and "time_limit" in bad.error
    dead = run_capped(functools.partial(os._exit, 3), 5.0)
    assert dead.status == "error" and "code 3" in dead.error
    unknown = run_capped(PeerJob("vf3", (0,), (), 1, ()), 5.0)
    assert unknown.status == "error" and "unknown peer 'vf3'" in unknown.error
    # a search still running at the cap is capped (and its child killed, not waited for)
    slow = functools.partial(functools.partial, time.sleep, 30.0)
    assert run_capped(cast("Callable[[], Peer]", slow), 0.2).status == "capped"
    notes: dict[str, int] = {}
    cell = _cell([Outcome("solved", 2.0), bad, Outcome("capped")], notes)
    assert cell == "1/3, 2.0 ms; error ×1 [1]"
    assert notes == {bad.error: 1}


@st.composite
def _small_mesh_instances(draw):
    return draw_mesh_instance(draw, 10, (2, 6), (2, 6), (1, 3))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_small_mesh_instances(), st.data())
def test_the_answer_check_agrees_with_placement_errors(inst, data):
    """The matcher's array check of an answer says valid exactly when ``placement_errors`` finds
    nothing: on found placements and on tiles drawn at random (repeats, blocked tiles, tiles off
    the mesh, stretched edges)."""
    pattern, target = inst
    m = TileMatcher(target, pattern)
    n = len(pattern)
    drawn = st.lists(st.integers(-2, target.size + 1), min_size=n, max_size=n)
    found = m.match(engine="cp", max_nodes=2_000)
    if found.found:
        good = [found.placement[v][1] * target.width + found.placement[v][0] for v in pattern.ids]
        assert m._valid(good)
        drawn = st.one_of(drawn, st.just(good), st.just(good[::-1]))
    tiles = data.draw(drawn)
    coords = {pattern.ids[v]: (t % target.width, t // target.width) for v, t in enumerate(tiles)}
    in_mesh = all(0 <= t < target.size for t in tiles)
    assert m._valid(tiles) == (in_mesh and placement_errors(pattern, target, coords) == [])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_small_mesh_instances(), st.data())
def test_the_cost_of_an_answer_is_placement_cost_to_the_bit(inst, data):
    """The engines' cost of a tile-per-vertex answer is :func:`placement_cost`'s, bit for bit
    (the same sums in the same order), with tile costs and a communication weight drawn, and
    in whatever order the placement lists its vertices."""
    from isosched.match.matcher import _cost_of

    drawn = _priced_answer(inst, data)
    if drawn is None:
        return
    pattern, priced, tiles, weight = drawn
    coords = {pattern.ids[v]: priced.coord(t) for v, t in enumerate(tiles)}
    assert _cost_of(pattern, priced, tiles, weight) == placement_cost(
        pattern, priced, coords, weight
    )
    order = data.draw(st.permutations(list(coords)), label="the placement's key order")
    shuffled = {v: coords[v] for v in order}
    assert placement_cost(pattern, priced, shuffled, weight) == placement_cost(
        pattern, priced, coords, weight
    )


def _priced_answer(inst, data):
    """A pattern, its target with drawn tile costs, a tile per vertex and a weight (``None``
    when the pattern has more vertices than there are usable tiles)."""
    from isosched.match.target import masked_target

    pattern, target = inst
    n = len(pattern)
    if n > int(target.allowed.sum()):
        return None
    costs = data.draw(
        st.lists(st.floats(0, 1e6, allow_nan=False), min_size=target.size, max_size=target.size)
    )
    priced = masked_target(
        target.width, target.height, target.hops, target.allowed, np.asarray(costs, dtype=float)
    )
    tiles = data.draw(st.permutations(np.flatnonzero(target.allowed).tolist()))[:n]
    return pattern, priced, tiles, data.draw(st.floats(0, 10, allow_nan=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(1, 7),
    st.data(),
)
def test_the_compiled_links_are_the_references(width, height, hops, data):
    """``masked_target``'s compiled CSR equals its numpy reference's (``ISOSCHED_CP=py``), row
    for row and in dtype, on random usable-tile masks."""
    import os

    from isosched.match.native import ENV_SWITCH
    from isosched.match.target import masked_target

    allowed = np.asarray(
        data.draw(st.lists(st.booleans(), min_size=width * height, max_size=width * height))
    )
    cost = np.zeros(width * height)
    new = masked_target(width, height, hops, allowed, cost)
    saved = os.environ.get(ENV_SWITCH)
    os.environ[ENV_SWITCH] = "py"
    try:
        ref = masked_target(width, height, hops, allowed, cost)
    finally:
        if saved is None:
            del os.environ[ENV_SWITCH]
        else:
            os.environ[ENV_SWITCH] = saved
    assert new.indptr.dtype == ref.indptr.dtype and new.indices.dtype == ref.indices.dtype
    assert np.array_equal(new.indptr, ref.indptr) and np.array_equal(new.indices, ref.indices)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_small_mesh_instances(), st.data())
def test_the_compiled_answer_cost_is_the_references_to_the_bit(inst, data):
    """The matcher's compiled cost of an answer equals :func:`_cost_of` (the reference) bit for
    bit, with tile costs, byte counts and a communication weight drawn."""
    from isosched.match.matcher import _cost_of

    pattern, target = inst
    m = len(pattern.edges)
    byts = data.draw(st.lists(st.integers(0, 2**40), min_size=m, max_size=m))
    edges = tuple((s, d, b) for (s, d, _), b in zip(pattern.edges, byts, strict=True))
    drawn = _priced_answer((TileGraph(pattern.vertices, edges), target), data)
    if drawn is None:
        return
    pattern, priced, tiles, weight = drawn
    got = TileMatcher(priced, pattern)._answer_cost(tiles, weight)
    assert got == _cost_of(pattern, priced, tiles, weight) and isinstance(got, float)


def _read_lad(text: str) -> "nx.Graph[int]":
    lines = text.splitlines()
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(int(lines[0])))
    arcs = set()
    for v, line in enumerate(lines[1:]):
        degree, *nbrs = map(int, line.split())
        assert degree == len(nbrs) == len(set(nbrs)) and v not in nbrs
        arcs |= {(v, u) for u in nbrs}
    assert arcs == {(u, v) for v, u in arcs}  # every edge listed at both ends
    g.add_edges_from(arcs)
    return g


@st.composite
def small_chips(draw):
    """A connected pattern of up to 7 vertices on a mesh of at most 5×5, a third blocked."""
    return draw_mesh_instance(draw, 7, (2, 5), (2, 5), (1, 3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_chips())
def test_the_lad_export_asks_the_placers_question(inst):
    """bench/match_lad.py: VF2 on the two LAD graphs answers as the placer does, and a found
    placement, read through the exported tile order, maps the pattern's edges onto target
    edges."""
    from bench.match_bench import OnlineInstance
    from bench.match_lad import lad_pattern, lad_target
    from isosched.match.placer import place

    pattern, target = inst
    free = sum(1 << t for t in range(target.size) if target.allowed[t])
    chip = OnlineInstance("t", "test", pattern, [], target.hops, target.width, target.height, free)
    text, tiles = lad_target(chip)
    p, t = _read_lad(lad_pattern(chip)), _read_lad(text)
    assert tiles == np.flatnonzero(target.allowed).tolist()
    exists = iso.GraphMatcher(t, p).subgraph_is_monomorphic()
    ans = place(pattern, target.hops, free, target.width, target.height, node_budget=100_000)
    assert ans.found == exists and ans.reason == ("found" if exists else "impossible")
    if ans.found:
        at = {tile: k for k, tile in enumerate(tiles)}
        for a, b in p.edges:
            assert t.has_edge(at[ans.tiles[a]], at[ans.tiles[b]])


def test_a_target_prints_as_a_summary():
    held = {(1, 1): HeldTile(priority=1, cost=5.0)}
    t = mesh_target(4, 4, hops=1, blocked=[(0, 0)], held=held, priority=2)
    assert repr(t) == (
        "ChipTarget(4x4, hops=1, 15 of 16 tiles allowed, 1 of them at a cost, 44 directed links)"
    )
