"""The run-time placer: library images, cheapest victims, online matches checked by networkx."""

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networkx.algorithms import isomorphism

from isosched.match import MatchInputError, mesh_target, placement_errors
from isosched.match.placer import Victim, library_images, place
from isosched.tilegraph import TileGraph

SQUARE = TileGraph.from_edges(
    ["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "d")]
)
BASE = [(0, 0), (1, 0), (0, 1), (1, 1)]


def mask(tiles, w):
    m = 0
    for x, y in tiles:
        m |= 1 << (y * w + x)
    return m


def test_library_holds_every_translation_and_symmetry():
    domino = [(0, 0), (1, 0)]
    lib = library_images(domino, 3, 3)
    # Horizontal: 2 x 3 positions, vertical: 3 x 2, each in both directions of the domino.
    assert len(lib.images) == 2 * (6 + 6)
    assert len({m for m, _ in lib.images}) == 12
    # The square's 8 symmetries keep a 2x2 box a 2x2 box: one image per position and symmetry.
    assert {m for m, _ in library_images(BASE, 4, 4).images} == {
        mask([(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)], 4)
        for x in range(3)
        for y in range(3)
    }


def test_library_hit_on_free_tiles_costs_lookups_not_nodes():
    lib = library_images(BASE, 4, 4)
    free = (1 << 16) - 1 & ~mask([(0, 0)], 4)
    ans = place(SQUARE, 2, free, 4, 4, library=lib)
    assert ans.found and ans.source == "library" and ans.nodes == 0 and ans.lookups > 1
    assert not mask([(t % 4, t // 4) for t in ans.tiles], 4) & ~free


def test_victims_cheapest_first_and_counted_once():
    lib = library_images(BASE, 4, 2)
    # Left half held by an expensive job, right half by a cheap one, nothing free.
    victims = {
        "dear": Victim(mask([(0, 0), (1, 0), (0, 1), (1, 1)], 4), 10.0),
        "cheap": Victim(mask([(2, 0), (3, 0), (2, 1), (3, 1)], 4), 1.0),
    }
    ans = place(SQUARE, 2, 0, 4, 2, library=lib, victims=victims)
    assert ans.found and ans.victims == ("cheap",) and ans.cost == 1.0


def test_library_for_a_looser_bound_gives_no_hit():
    # BASE puts the edge a-d across a diagonal: two hops. At one hop no image of it is a
    # placement (library_images does not check), and SQUARE's triangle a-b-d cannot go on a
    # bipartite mesh at all, so the answer is a proof, not a library hit.
    lib = library_images(BASE, 4, 4)
    everything = (1 << 16) - 1
    assert not place(SQUARE, 1, everything, 4, 4, library=lib, online=False).found
    ans = place(SQUARE, 1, everything, 4, 4, library=lib)
    assert not ans.found and ans.reason == "impossible"
    victims = {"cheap": Victim(mask([(0, 0), (1, 0), (0, 1), (1, 1)], 4), 1.0)}
    held = place(
        SQUARE, 1, 0, 4, 2, library=library_images(BASE, 4, 2), victims=victims, online=False
    )
    assert not held.found
    assert place(SQUARE, 2, everything, 4, 4, library=lib, online=False).source == "library"


def test_a_library_for_another_chip_or_pattern_is_bad_input():
    everything = (1 << 16) - 1
    with pytest.raises(MatchInputError, match="for a 4x2 chip, not 4x4"):
        place(SQUARE, 2, everything, 4, 4, library=library_images(BASE, 4, 2))
    with pytest.raises(MatchInputError, match="places 3 vertices, the pattern has 4"):
        place(SQUARE, 2, everything, 4, 4, library=library_images(BASE[:3], 4, 4))
    with pytest.raises(MatchInputError, match="two vertices on one tile"):
        library_images([(0, 0), (1, 0), (0, 0)], 4, 4)


def test_online_match_finds_an_irregular_area_the_library_cannot():
    held = [(1, 1), (3, 1), (1, 3), (3, 3)]  # one tile of every aligned 2x2 block
    free = (1 << 16) - 1 & ~mask(held, 4)
    lib = library_images(BASE, 4, 4)
    assert not place(SQUARE, 2, free, 4, 4, library=lib, online=False).found
    ans = place(SQUARE, 2, free, 4, 4, library=lib, node_budget=500)
    assert ans.found and ans.source == "online" and ans.nodes > 0
    coords = {v: (t % 4, t // 4) for v, t in zip(SQUARE.ids, ans.tiles, strict=True)}
    target = mesh_target(4, 4, 2, blocked=held)
    assert placement_errors(SQUARE, target, coords) == []


def _exists(pattern, w, h, hops, free):
    g: nx.Graph[tuple[int, int]] = nx.Graph()
    tiles = [(t % w, t // w) for t in range(w * h) if free >> t & 1]
    g.add_nodes_from(tiles)
    for a in tiles:
        for b in tiles:
            if a < b and abs(a[0] - b[0]) + abs(a[1] - b[1]) <= hops:
                g.add_edge(a, b)
    p: nx.Graph[int] = nx.Graph()
    p.add_nodes_from(range(len(pattern)))
    p.add_edges_from((s, d) for s, d, _ in pattern.edges)
    return isomorphism.GraphMatcher(g, p).subgraph_is_monomorphic()


RING = TileGraph.from_edges(["a", "b", "c", "d"], [("a", "b"), ("b", "d"), ("d", "c"), ("c", "a")])


@settings(max_examples=60, deadline=None)
@given(free=st.integers(0, (1 << 16) - 1), pattern=st.sampled_from([SQUARE, RING]))
def test_complete_online_match_agrees_with_networkx(free, pattern):
    ans = place(pattern, 1, free, 4, 4, node_budget=None, engine="ullmann", budget_ms=20_000)
    assert ans.match is not None
    if ans.found:
        assert all(free >> t & 1 for t in ans.tiles)
    else:
        assert ans.match.proved
    assert ans.found == _exists(pattern, 4, 4, 1, free)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 6),
    st.integers(0, (1 << 81) - 1),
    st.lists(st.tuples(st.integers(0, (1 << 81) - 1), st.floats(0, 10)), max_size=3),
)
def test_online_target_is_the_labelled_mesh(w, h, hops, free, vics):
    """The placer's target (built from bit masks) equals ``mesh_target`` of the same labels."""
    from isosched.match.placer import labelled_target
    from isosched.match.target import HeldTile

    victims = {f"j{i}": Victim(m, c) for i, (m, c) in enumerate(vics)}
    got, held_any = labelled_target(w, h, hops, free, victims)
    cost: dict[int, float] = {}
    for v in victims.values():
        cost.update({t: v.cost for t in range(w * h) if v.mask >> t & 1})
    blocked, held = [], {}
    for t in range(w * h):
        if free >> t & 1:
            continue
        if t in cost:
            held[(t % w, t // w)] = HeldTile(0, cost[t])
        else:
            blocked.append((t % w, t // w))
    want = mesh_target(w, h, hops, blocked=blocked, held=held, priority=1)
    assert held_any == bool(held)
    for field in ("allowed", "tile_cost", "indptr", "indices"):
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype and (a == b).all(), field


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 6),
    edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=10),
    base=st.permutations(range(25)),
    hops=st.integers(1, 3),
    free=st.integers(0, (1 << 25) - 1),
    held=st.lists(st.tuples(st.integers(1, (1 << 25) - 1), st.floats(0, 10)), max_size=2),
    online=st.booleans(),
)
def test_a_found_answer_is_a_placement_whatever_the_library(
    n, edges, base, hops, free, held, online
):
    """Any library (its placement may break the bound), free area and victims: found is valid."""
    ids = [f"v{i}" for i in range(n)]
    pairs = sorted({(a, b) for a, b in edges if a < n and b < n and a != b})
    pattern = TileGraph.from_edges(ids, [(ids[a], ids[b]) for a, b in pairs])
    lib = library_images([(t % 5, t // 5) for t in base[:n]], 5, 5)
    victims, taken = {}, free
    for i, (m, c) in enumerate(held):
        if m & ~taken:
            victims[f"j{i}"] = Victim(m & ~taken, c)
            taken |= m
    ans = place(
        pattern, hops, free, 5, 5, library=lib, victims=victims, online=online, node_budget=300
    )
    if not ans.found:
        return
    usable = free
    for v in victims.values():
        usable |= v.mask
    assert len(set(ans.tiles)) == n and all(usable >> t & 1 for t in ans.tiles)
    coords = {v: (t % 5, t // 5) for v, t in zip(pattern.ids, ans.tiles, strict=True)}
    blocked = [(t % 5, t // 5) for t in range(25) if not usable >> t & 1]
    assert placement_errors(pattern, mesh_target(5, 5, hops, blocked=blocked), coords) == []


def test_a_librarys_span_is_kept_per_pattern_and_not_shared_by_a_copy():
    """The span check is cached on the library; a copy with other images checks again."""
    import dataclasses

    lib = library_images(BASE, 4, 4)
    assert lib.span(SQUARE) == 2  # the diagonal a-d
    line = dataclasses.replace(lib, images=((0b1111, (0, 1, 2, 3)),))  # a row of four tiles
    assert line.span(SQUARE) == 3 and lib.span(SQUARE) == 2
    hits = place(SQUARE, 2, 0xFFFF, 4, 4, library=line, online=False)
    assert not hits.found  # the copy's images span 3 hops: no hit at a bound of 2


@pytest.mark.parametrize("engine", ["cp+repair", "cp", "mcts"])
def test_a_wall_clock_stop_without_a_node_budget_is_flagged(engine):
    """With no node budget the wall clock is the budget: its stop is machine-dependent, so the
    answer says so, as it does when the safety net stops a node-budgeted match."""
    chain = [f"v{i}" for i in range(60)]
    pattern = TileGraph.from_edges(chain, list(itertools.pairwise(chain)))
    a = place(pattern, 1, (1 << 64) - 1, 8, 8, node_budget=None, budget_ms=1e-6, engine=engine)
    assert not a.found and a.reason == "budget" and a.wall_limited
