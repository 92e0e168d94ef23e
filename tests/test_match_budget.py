"""The matcher keeps its budgets: node budgets exactly, on every path of both engines.

Wall-time overrun is measured by ``bench/match_budget.py`` (docs/performance.md), not here:
these tests count nodes, which do not depend on how busy the machine is.
"""

import random

import numpy as np
import pytest

from isosched.match import TileMatcher, candidate_matrix, mesh_target, planted_instance, refine
from isosched.match import candidates as candidates_module
from isosched.match.candidates import CandidateRows, domains_from_matrix
from isosched.match.search import SearchSpace, SearchState, SearchStats

ENGINES = ("mcts", "ullmann")
#: A wall budget far beyond what the node budgets below take: only nodes stop these runs.
NO_WALL_MS = 600_000.0


def held_tiles(side, fraction, seed):
    """Tiles held by other jobs: random rectangles until ``fraction`` of the chip is held."""
    rng = random.Random(seed)
    held: set[tuple[int, int]] = set()
    while len(held) < fraction * side * side:
        w, h = rng.randint(1, max(1, side // 3)), rng.randint(1, max(1, side // 3))
        x, y = rng.randrange(side - w + 1), rng.randrange(side - h + 1)
        held |= {(x + i, y + j) for i in range(w) for j in range(h)}
    return sorted(held)


def crowded(side, hops, fraction, kind, seed):
    """A pattern grown on the empty chip, 90 % as large as what the held chip leaves free.

    It rarely fits around the held tiles, and the search backjumps over and over (high h: the
    2h neighbourhood ``conflict_position`` looks at is large).
    """
    held = held_tiles(side, fraction, seed)
    n = int(0.9 * (side * side - len(held)))
    inst = planted_instance(side, side, n, hops, 0.0, kind, seed)
    return TileMatcher(mesh_target(side, side, hops, held), inst.pattern)


#: (side, hops, held fraction, kind, seed): both engines fail within 1,000 nodes, and 40-90 %
#: of their steps are backjumps.
BACKJUMPING = [
    (8, 4, 0.5, "transformer", 2),
    (12, 4, 0.5, "chain", 0),
    (12, 6, 0.5, "transformer", 3),
    (16, 6, 0.5, "multibranch", 1),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", BACKJUMPING)
def test_node_budget_is_exact_through_backjump_chains(engine, case):
    """A run stopped by ``max_nodes`` has placed exactly that many nodes, backjumps included."""
    matcher = crowded(*case)
    jumped = 0
    for max_nodes in (1, 2, 3, 7, 50, 129, 400, 1000):
        r = matcher.match(engine=engine, budget_ms=NO_WALL_MS, seed=3, max_nodes=max_nodes)
        assert r.stats["nodes"] <= max_nodes
        if not r.found:
            assert r.reason == "budget"
            assert r.stats["nodes"] == max_nodes
        jumped = max(jumped, r.stats["backjumps"])
    assert jumped > 100  # the budget was reached through long backjump chains


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", [*BACKJUMPING, (10, 2, 0.2, "multibranch", 4)])
def test_same_node_budget_gives_the_same_result(engine, case):
    """Same inputs, seed and node budget: the same result, whatever the wall budget."""
    docs = []
    for budget_ms in (NO_WALL_MS, 2 * NO_WALL_MS):
        r = crowded(*case).match(engine=engine, budget_ms=budget_ms, seed=5, max_nodes=600)
        doc = r.to_doc()
        del doc["elapsed_ms"]
        docs.append(doc)
    assert docs[0] == docs[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_zero_budget_places_nothing(engine):
    """A budget that has already ended stops both engines before their first placement."""
    r = crowded(*BACKJUMPING[2]).match(engine=engine, budget_ms=0.0)
    assert not r.found and r.reason == "budget"
    assert r.stats.get("nodes", 0) == 0


def reference_conflict_position(state, v):
    """The definition: deepest position among v's neighbours, its unplaced neighbours'
    neighbours, and every tile within 2h of its first placed neighbour."""
    sp = state.space
    parents = [u for u in sp.padj[v] if state.tile_of[u] >= 0]
    if not parents:
        return state.depth - 1
    c = max(state.position[p] for p in parents)
    for u in sp.padj[v]:
        if state.tile_of[u] < 0:
            c = max([c, *(state.position[q] for q in sp.padj[u])])
    t = state.tile_of[parents[0]]
    r = 2 * sp.target.hops
    for q in range(sp.target.size):
        if sp.hop(t, q) <= r and state.occupant[q] > c:
            c = state.occupant[q]
    return c


class CheckedState(SearchState):
    calls = 0

    def conflict_position(self, v):
        got = super().conflict_position(v)
        assert got == reference_conflict_position(self, v)
        CheckedState.calls += 1
        return got


@pytest.mark.parametrize("case", BACKJUMPING)
def test_conflict_position_matches_its_definition(case):
    """The shortcut (walk placements deeper than the bound) agrees with a full 2h scan."""
    matcher = crowded(*case)
    CheckedState.calls = 0
    state = CheckedState(SearchSpace(matcher.pattern, matcher.target))
    gen = state.dfs(float("inf"), SearchStats(), rng=random.Random(1), noise=1.0, max_nodes=800)
    for _ in gen:
        break
    gen.close()
    assert CheckedState.calls > 50


def test_refinement_in_blocks_equals_one_block(monkeypatch):
    """Refinement gives the same matrix whatever the block size it checks its deadline at."""
    matcher = crowded(10, 2, 0.3, "chain", 1)
    m = candidate_matrix(matcher.pattern, matcher.target)
    whole, rounds = refine(m, matcher.pattern, matcher.target)
    monkeypatch.setattr(candidates_module, "BLOCK_WORK", 1)
    rows, rounds_rows = refine(m, matcher.pattern, matcher.target)
    assert rounds == rounds_rows
    assert np.array_equal(whole.toarray(), rows.toarray())


def test_refinement_past_its_deadline_returns_a_sound_matrix():
    """An interrupted refinement returns its input (sound), having done no round."""
    matcher = crowded(10, 2, 0.3, "chain", 1)
    m = candidate_matrix(matcher.pattern, matcher.target)
    got, rounds = refine(m, matcher.pattern, matcher.target, deadline=0.0)
    assert rounds == 0
    assert np.array_equal(got.toarray(), m.toarray())


def test_lazy_candidate_rows_equal_the_eager_ones():
    matcher = crowded(8, 2, 0.25, "multibranch", 2)
    m, _ = refine(
        candidate_matrix(matcher.pattern, matcher.target), matcher.pattern, matcher.target
    )
    lazy, eager = CandidateRows(m), domains_from_matrix(m)
    assert len(lazy) == len(eager)
    order = np.random.default_rng(0).permutation(len(eager)).tolist()
    assert [lazy[i] for i in order] == [eager[i] for i in order]
    assert lazy[1:4] == eager[1:4]
