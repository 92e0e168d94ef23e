"""The ``repair`` engine (local search) and the placer's ``cp+repair`` hybrid."""

import math
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isosched.match import (
    STOP_REASONS,
    TileMatcher,
    mesh_target,
    placement_errors,
    planted_instance,
)
from isosched.match import repair as rp
from isosched.match.cp import luby
from isosched.match.placer import HYBRID, HYBRID_FIRST, ONLINE_ENGINE, Victim, place
from isosched.tilegraph import TileGraph
from tests.test_match_cp import draw_mesh_instance


@st.composite
def small_instances(draw):
    """Connected patterns of up to 12 vertices on meshes of up to 8×8, some tiles blocked."""
    return draw_mesh_instance(draw, 12, (2, 8), (2, 8), (1, 3))


def _free_mask(width, height, blocked):
    out = 0
    for y in range(height):
        for x in range(width):
            if (x, y) not in set(blocked):
                out |= 1 << (y * width + x)
    return out


def _valid_partial(pattern, target, tiles):
    """Whether a tile-per-vertex partial placement (-1: unplaced) keeps every constraint."""
    ids = pattern.ids
    placed = {ids[v]: target.coord(t) for v, t in enumerate(tiles) if t >= 0}
    sub = TileGraph.from_edges(
        list(placed),
        [(ids[s], ids[d]) for s, d, _ in pattern.edges if ids[s] in placed and ids[d] in placed],
    )
    return placement_errors(sub, target, placed) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    small_instances(),
    st.integers(0, 2**31 - 1),
    st.integers(0, 120),
    st.integers(1, 40),
    st.data(),
)
def test_compiled_kernel_gives_the_references_answer(inst, seed, steps, base, data):
    """The numba kernel and the interpreted one: the same placement, partial, steps and runs
    (with and without a start: any tiles, some unusable or repeated, which are ignored)."""
    pattern, target = inst
    start = data.draw(
        st.none()
        | st.lists(st.integers(-1, target.size), min_size=len(pattern), max_size=len(pattern))
    )
    far = time.perf_counter() + 600
    got = [
        rp.repair_search(
            pattern, target, far, seed=seed, max_steps=steps, compiled=c, base=base, start=start
        )
        for c in (True, False)
    ]
    assert got[0] == got[1]
    out = got[0]
    assert out.steps <= steps and out.stop in ("found", "budget")
    if out.tiles is not None:
        coords = {pattern.ids[v]: target.coord(t) for v, t in enumerate(out.tiles)}
        assert placement_errors(pattern, target, coords) == []
    assert _valid_partial(pattern, target, out.partial)


def test_runs_follow_the_luby_sequence():
    """Run r (from 1) gets base × Luby(r) steps, as cp's restarts do."""
    pattern, target = planted_instance(8, 8, 30, hops=2, kind="chain", seed=1).pattern, None
    target = mesh_target(8, 8, 2)
    indptr, nbr = rp.pattern_csr(pattern)
    slots = np.flatnonzero(target.allowed).astype(np.int64)
    for run in range(12):
        st_, bufs = rp._state(slots.size, 5, 7, indptr, nbr)
        st_[rp.R_RUN] = run
        kernel: Any = rp._kernel  # the interpreted kernel; state in the arrays
        sx, sy = slots % 8, slots // 8
        kernel(indptr, nbr, sx, sy, rp.excess_table(sx, sy, 2), 2, st_, *bufs, 1)
        assert st_[rp.R_RUN] == run + 1
        assert st_[rp.R_LEFT] == 7 * luby(run + 1)


def test_repair_places_a_loose_instance_and_says_how():
    """At four hops a planted pattern is placed within a few hundred steps, the same each time."""
    inst = planted_instance(12, 12, 70, hops=4, blocked_fraction=0.2, kind="multibranch", seed=3)
    target = mesh_target(12, 12, 4, inst.blocked)
    answers = [
        TileMatcher(target, inst.pattern).match(
            engine="repair", budget_ms=60_000, seed=2, max_nodes=5_000
        )
        for _ in range(2)
    ]
    r = answers[0]
    assert r.found and r.reason == "found" and r.engine == "repair" and not r.proved
    assert r.stats["steps"] == r.nodes <= 5_000 and r.stats["excess"] == 0
    assert r.placement == answers[1].placement and r.nodes == answers[1].nodes
    assert placement_errors(inst.pattern, target, r.placement) == []


def test_repair_completes_the_start_it_is_given():
    """Started from a valid placement, repair returns it after its first step (the start)."""
    inst = planted_instance(10, 10, 40, hops=2, blocked_fraction=0.1, kind="transformer", seed=6)
    target = mesh_target(10, 10, 2, inst.blocked)
    r = TileMatcher(target, inst.pattern).match(engine="cp", budget_ms=60_000, max_nodes=50_000)
    assert r.found
    tiles = [y * 10 + x for x, y in (r.placement[v] for v in inst.pattern.ids)]
    out = rp.repair_search(inst.pattern, target, time.perf_counter() + 60, start=tiles)
    assert out.tiles == tuple(tiles) and out.steps == 1
    again = TileMatcher(target, inst.pattern).match(
        engine="repair", budget_ms=60_000, max_nodes=5, start=r.placement
    )
    assert again.found and again.placement == r.placement and again.nodes == 1


def test_repair_never_proves_and_keeps_a_valid_partial():
    """K(2,3) at one hop has no placement on a mesh (two tiles share at most two neighbours),
    and no precheck says so: repair stops on its budget, with a valid partial placement."""
    ids = ["a", "b", "x", "y", "z"]
    edges = [(s, d) for s in "ab" for d in "xyz"]
    pattern = TileGraph.from_edges(ids, edges)
    target = mesh_target(4, 4, 1)
    r = TileMatcher(target, pattern).match(engine="repair", budget_ms=60_000, max_nodes=300)
    assert not r.found and not r.proved and r.reason == "budget" and not r.wall_limited
    assert r.nodes == 300 and r.stats["excess"] > 0 and r.partial
    sub_ids = list(r.partial)
    sub = TileGraph.from_edges(sub_ids, [(s, d) for s, d in edges if {s, d} <= set(sub_ids)])
    assert placement_errors(sub, target, r.partial) == []


def test_repair_stops_on_the_wall_clock_and_says_so():
    inst = planted_instance(12, 12, 80, hops=2, kind="transformer", seed=4)
    target = mesh_target(12, 12, 2, inst.blocked)
    r = TileMatcher(target, inst.pattern).match(engine="repair", budget_ms=0.0)
    assert not r.found and r.reason == "budget" and r.wall_limited


def test_a_step_counts_as_more_nodes_on_large_chips():
    assert rp.step_nodes(1) == rp.step_nodes(256) == 1
    assert rp.step_nodes(257) == 2 and rp.step_nodes(1936) == 8
    inst = planted_instance(20, 20, 60, hops=3, kind="chain", seed=1)
    target = mesh_target(20, 20, 3, inst.blocked)
    r = TileMatcher(target, inst.pattern).match(
        engine="repair", budget_ms=60_000, max_nodes=7, seed=1
    )
    assert r.nodes == 2 * r.stats["steps"] and r.nodes <= 7
    # three steps (6 nodes) spend the budget of 7: the step budget, not the clock, stopped it
    assert r.found or (r.reason == "budget" and r.stats["steps"] == 3 and not r.wall_limited)


# ---- the placer's hybrid -------------------------------------------------------------------


def test_the_placers_online_engine_is_the_hybrid():
    assert ONLINE_ENGINE == HYBRID == "cp+repair"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hybrid_within_its_first_turn_is_cp_answer_for_answer(seed):
    """Up to ``HYBRID_FIRST`` nodes the hybrid is cp: the simulator's 150-node matches are
    unchanged by it."""
    inst = planted_instance(12, 12, 60, hops=2, blocked_fraction=0.1, kind="transformer", seed=seed)
    free = _free_mask(12, 12, inst.blocked)
    for budget in (1, 150, HYBRID_FIRST):
        a = place(inst.pattern, 2, free, 12, 12, node_budget=budget, engine="cp", seed=seed)
        b = place(inst.pattern, 2, free, 12, 12, node_budget=budget, engine=HYBRID, seed=seed)
        assert (a.found, a.tiles, a.nodes, a.reason, a.detail) == (
            b.found,
            b.tiles,
            b.nodes,
            b.reason,
            b.detail,
        )
        assert a.match is not None and b.match is not None
        assert a.match.partial == b.match.partial


def test_hybrid_turns_spend_at_most_the_budget_and_count_their_work():
    """Past cp's first turn, repair gets its turn; the nodes of every turn are counted."""
    inst = planted_instance(16, 16, 120, hops=2, blocked_fraction=0.1, kind="transformer", seed=8)
    free = _free_mask(16, 16, inst.blocked)
    for budget in (HYBRID_FIRST + 1, 2 * HYBRID_FIRST + 17, 5_000):
        ans = place(inst.pattern, 2, free, 16, 16, node_budget=budget, engine=HYBRID)
        assert ans.nodes <= budget and ans.reason in STOP_REASONS
        assert ans.match is not None
        stats = ans.match.stats
        if "turns" in stats:
            assert stats["cp_nodes"] + stats["repair_nodes"] == ans.nodes
        if not ans.found:
            assert ans.reason == "budget" and ans.nodes == budget and not ans.wall_limited
            assert stats["turns"] >= 2 and stats["repair_nodes"] > 0
    again = place(inst.pattern, 2, free, 16, 16, node_budget=5_000, engine=HYBRID)
    assert (again.tiles, again.nodes, again.reason) == (ans.tiles, ans.nodes, ans.reason)


def test_hybrid_answer_from_a_repair_turn(monkeypatch):
    """With 2-node first turns, cp and repair alternate until repair places the pattern: the
    answer is repair's (verified), with every turn's work counted."""
    import isosched.match.placer as placer_module

    monkeypatch.setattr(placer_module, "HYBRID_FIRST", 2)
    monkeypatch.setattr(placer_module, "HYBRID_REPAIR_FIRST", 2)
    inst = planted_instance(12, 12, 70, hops=4, blocked_fraction=0.2, kind="multibranch", seed=1)
    free = _free_mask(12, 12, inst.blocked)
    ans = place(inst.pattern, 4, free, 12, 12, node_budget=5_000, engine=HYBRID)
    assert ans.found and ans.source == "online" and ans.match is not None
    stats = ans.match.stats
    assert ans.match.engine == "repair" and stats["turns"] % 2 == 0 and stats["turns"] > 2
    # turns of 2, 4, 8, ... nodes: cp had all of its turns, repair its last one in part
    cp_turns = stats["turns"] // 2
    assert stats["cp_nodes"] <= sum(2 << k for k in range(cp_turns))
    assert stats["cp_nodes"] + stats["repair_nodes"] == ans.nodes
    target = mesh_target(12, 12, 4, inst.blocked)
    coords = {v: (t % 12, t // 12) for v, t in zip(inst.pattern.ids, ans.tiles, strict=True)}
    assert placement_errors(inst.pattern, target, coords) == []


def test_hybrid_goes_on_past_a_repair_turn_on_a_large_chip(monkeypatch):
    """On more than 256 tiles a repair step counts as several nodes, so a repair turn may leave a
    few of its nodes unspent: that is not the wall clock, and the next cp turn runs."""
    import isosched.match.placer as placer_module

    monkeypatch.setattr(placer_module, "HYBRID_FIRST", 100)
    monkeypatch.setattr(placer_module, "HYBRID_REPAIR_FIRST", 100)
    inst = planted_instance(24, 24, 200, hops=2, blocked_fraction=0.1, kind="transformer", seed=3)
    free = _free_mask(24, 24, inst.blocked)
    ans = place(inst.pattern, 2, free, 24, 24, node_budget=None, budget_ms=60_000, engine=HYBRID)
    assert ans.found and not ans.wall_limited and ans.match is not None
    assert ans.match.stats["turns"] > 2  # cp's first turn of 100 nodes cannot place 200 vertices


def test_hybrid_proves_no_room_like_cp():
    """Proofs come from cp's turns: a clique of five at one hop is impossible."""
    ids = [f"k{i}" for i in range(5)]
    pattern = TileGraph.from_edges(ids, [(a, b) for a in ids for b in ids if a < b])
    ans = place(pattern, 1, (1 << 64) - 1, 8, 8, node_budget=50_000, engine=HYBRID)
    assert not ans.found and ans.reason == "impossible"


def test_hybrid_with_victims_is_cps_cost_aware_search():
    """Repair ignores tile costs, so with victims the hybrid runs cp alone, cheapest first."""
    inst = planted_instance(8, 8, 20, hops=2, blocked_fraction=0.0, kind="chain", seed=2)
    free = _free_mask(8, 8, [(x, y) for x in range(8) for y in range(8) if x < 4])
    held = ((1 << 64) - 1) & ~free
    victims = {"j1": Victim(held, 5.0)}
    a = place(inst.pattern, 2, free, 8, 8, victims=victims, node_budget=3_000, engine="cp")
    b = place(inst.pattern, 2, free, 8, 8, victims=victims, node_budget=3_000, engine=HYBRID)
    assert (a.tiles, a.nodes, a.reason, a.cost) == (b.tiles, b.nodes, b.reason, b.cost)


def test_hybrid_leaves_large_patterns_to_cp():
    """Above HYBRID_MAX_VERTICES the hybrid is cp alone, answer for answer, past its first turn."""
    from isosched.match.placer import HYBRID_MAX_VERTICES

    inst = planted_instance(24, 24, 300, hops=2, blocked_fraction=0.1, kind="transformer", seed=3)
    assert len(inst.pattern) > HYBRID_MAX_VERTICES
    free = _free_mask(24, 24, inst.blocked)
    a = place(inst.pattern, 2, free, 24, 24, node_budget=5_000, engine="cp")
    b = place(inst.pattern, 2, free, 24, 24, node_budget=5_000, engine=HYBRID)
    assert (a.found, a.tiles, a.nodes, a.reason) == (b.found, b.tiles, b.nodes, b.reason)
    assert b.match is not None and "turns" not in b.match.stats


@pytest.mark.parametrize("engine", ["cp", "cp-py"])
def test_a_matcher_reuses_cps_model_with_the_same_answers(engine):
    """The hybrid runs cp in turns on one matcher, which keeps cp's static model: every search
    on it answers as a search on a fresh matcher does (the model is only read)."""
    inst = planted_instance(12, 12, 60, hops=2, blocked_fraction=0.1, kind="transformer", seed=4)
    target = mesh_target(12, 12, 2, inst.blocked)
    kept = TileMatcher(target, inst.pattern)
    for seed in (0, 1, 2, 0):
        for budget in (40, 400):
            docs = []
            for m in (kept, TileMatcher(target, inst.pattern)):
                d = m.match(engine=engine, budget_ms=60_000, seed=seed, max_nodes=budget).to_doc()
                del d["elapsed_ms"]
                docs.append(d)
            assert docs[0] == docs[1]
    assert len(kept._cp_models) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_instances())
def test_each_neighbour_entry_knows_its_twin(inst):
    """``rev[q]`` is the entry of the same edge in the other end's list (the breakout weights of
    both ends move together)."""
    pattern = inst[0]
    indptr, nbr = rp.pattern_csr(pattern)
    rev = rp._reverse(indptr, nbr)
    src = np.repeat(np.arange(len(pattern)), np.diff(indptr))
    assert (nbr[rev] == src).all() and (src[rev] == nbr).all()
    assert (rev[rev] == np.arange(nbr.size)).all()


def test_breakout_weights_keep_the_excess_books_straight():
    """After every slice of a tight search: each vertex's plain and weighted excess are what its
    edges say, an edge weighs the same at both ends, the total is the plain one, and some edges
    were weighted up (the search got stuck and broke out)."""
    inst = planted_instance(8, 8, 40, hops=1, blocked_fraction=0.2, kind="transformer", seed=4)
    target = mesh_target(8, 8, 1, inst.blocked)
    indptr, nbr = rp.pattern_csr(inst.pattern)
    slots = np.flatnonzero(target.allowed).astype(np.int64)
    sx, sy = slots % 8, slots // 8
    st_, bufs = rp._state(slots.size, 3, 50, indptr, nbr)
    pos, exc, wq, rev, uexc = bufs[0], bufs[2], bufs[10], bufs[11], bufs[12]
    kernel: Any = rp._kernel
    dex = rp.excess_table(sx, sy, 1)
    heavier = False
    for _ in range(12):
        kernel(indptr, nbr, sx, sy, dex, 1, st_, *bufs, 25)
        if st_[rp.R_FOUND]:
            break
        src = np.repeat(np.arange(len(inst.pattern)), np.diff(indptr))
        stretch = np.maximum(
            0, np.abs(sx[pos[src]] - sx[pos[nbr]]) + np.abs(sy[pos[src]] - sy[pos[nbr]]) - 1
        )
        assert (uexc == np.bincount(src, stretch, len(pos)).astype(np.int64)).all()
        assert (exc == np.bincount(src, wq * stretch, len(pos)).astype(np.int64)).all()
        assert (wq == wq[rev]).all() and (wq >= 1).all()
        assert st_[rp.R_TOTAL] == uexc.sum() // 2
        heavier |= bool((wq > 1).any())
    assert heavier


def _weighted_total(indptr, nbr, wq, pos, sx, sy, hops):
    """Sum over the pattern's edges (each once) of weight × hops beyond the bound."""
    src = np.repeat(np.arange(len(pos)), np.diff(indptr))
    stretch = np.maximum(
        0, np.abs(sx[pos[src]] - sx[pos[nbr]]) + np.abs(sy[pos[src]] - sy[pos[nbr]]) - hops
    )
    return int((wq * stretch).sum()) // 2


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["chain", "multibranch", "transformer"]),
    st.integers(12, 30),
    st.integers(0, 50),
    st.integers(0, 2**31 - 1),
    st.integers(0, 200),
)
def test_a_step_takes_a_best_move(kind, n, inst_seed, seed, warmup):
    """With no noise, a step moves (or swaps) the chosen vertex to a tile that lowers the
    weighted excess most among the allowed tiles, as scoring every tile in full says: the scan's
    bound skips only tiles that cannot win. (Tight instances, one hop on a 6×6 mesh with blocked
    tiles, so that the search is still stepping after the warm-up.)"""
    inst = planted_instance(6, 6, n, hops=1, blocked_fraction=0.1, kind=kind, seed=inst_seed)
    pattern, target = inst.pattern, mesh_target(6, 6, 1, inst.blocked)
    indptr, nbr = rp.pattern_csr(pattern)
    slots = np.flatnonzero(target.allowed).astype(np.int64)
    if len(pattern) > slots.size:
        return
    sx, sy, hops = slots % target.width, slots // target.width, target.hops
    st_, bufs = rp._state(slots.size, seed, 10**6, indptr, nbr)
    pos, _, exc, taboo_v, taboo_until = bufs[:5]
    wq = bufs[10]
    kernel: Any = rp._kernel
    dex = rp.excess_table(sx, sy, hops)
    kernel(indptr, nbr, sx, sy, dex, hops, st_, *bufs, 1 + warmup)  # a start, then some steps
    st_[rp.R_NOISE] = 0
    for _ in range(5):
        if st_[rp.R_FOUND]:
            return
        before, weights, step = pos.copy(), wq.copy(), int(st_[rp.R_STEPS])
        tv, tu = taboo_v.copy(), taboo_until.copy()
        movers = [v for v in range(len(pos)) if exc[v] > 0]
        kernel(indptr, nbr, sx, sy, dex, hops, st_, *bufs, 1)
        moved = [v for v in range(len(pos)) if pos[v] != before[v]]
        realised = _weighted_total(indptr, nbr, weights, pos, sx, sy, hops) - _weighted_total(
            indptr, nbr, weights, before, sx, sy, hops
        )
        if not moved:
            continue  # every other tile taboo to the chosen vertex
        best_of = {}
        for x in movers:
            deltas = []
            for s in range(slots.size):
                if s == before[x] or (tv[s] == x and tu[s] > step):
                    continue
                trial = before.copy()
                y = int(np.flatnonzero(before == s)[0]) if (before == s).any() else -1
                trial[x] = s
                if y >= 0:
                    trial[y] = before[x]
                deltas.append(
                    _weighted_total(indptr, nbr, weights, trial, sx, sy, hops)
                    - _weighted_total(indptr, nbr, weights, before, sx, sy, hops)
                )
            best_of[x] = min(deltas) if deltas else None
        assert any(x in best_of and best_of[x] == realised for x in moved), (best_of, realised)


def test_hybrid_starts_repair_from_the_plans_image_on_most_usable_tiles(monkeypatch):
    """With a library that misses, the hybrid's geometric start is the image on the most usable
    tiles, keeping the vertices on usable tiles only."""
    import isosched.match.placer as placer_module

    inst = planted_instance(8, 8, 40, hops=3, blocked_fraction=0.0, kind="multibranch", seed=5)
    ids = inst.pattern.ids
    base = [inst.planted[v] for v in ids]
    lib = placer_module.library_images(base, 8, 8)
    free = (1 << 64) - 1
    for mask, _ in lib.images:  # block one tile of every image, so that the library misses
        if not mask & ~free:
            free &= ~(1 << (mask & -mask).bit_length() - 1)
    seen: dict[str, Any] = {}
    real = placer_module._hybrid

    def spy(*args: Any) -> Any:
        seen["start"] = args[-1]
        return real(*args)

    monkeypatch.setattr(placer_module, "_hybrid", spy)
    ans = place(inst.pattern, 3, free, 8, 8, library=lib, node_budget=5_000, engine=HYBRID)
    on = max((m & free).bit_count() for m, _ in lib.images)
    best = next(tiles for m, tiles in lib.images if (m & free).bit_count() == on)
    want = {v: (t % 8, t // 8) for v, t in zip(ids, best, strict=True) if free >> t & 1}
    assert seen["start"] == want and len(want) == on < len(ids)
    assert ans.found and ans.source == "online" and ans.match is not None
    assert ans.match.engine == "repair" and ans.match.stats["cp_nodes"] == 0
    # the glance (repair from the image) places it: no cp model was built
    assert ans.match.stats["turns"] == 1 and ans.nodes <= placer_module.HYBRID_GLANCE


def test_hybrid_turns_with_a_geometric_start(monkeypatch):
    """With a library that missed: a glance from the image, cp's root (no node), repair from the
    image, then cp and repair (from cp's partial) as without one."""
    import isosched.match.placer as placer_module

    inst = planted_instance(10, 10, 60, hops=2, blocked_fraction=0.0, kind="transformer", seed=2)
    ids = inst.pattern.ids
    lib = placer_module.library_images([inst.planted[v] for v in ids], 10, 10)
    free = (1 << 100) - 1
    for mask, _ in lib.images:  # two tiles of every image blocked
        for _ in range(2):
            if mask & free:
                free &= ~(1 << ((mask & free) & -(mask & free)).bit_length() - 1)
    calls: list[tuple[str, int | None, bool]] = []
    real = TileMatcher.match

    def spy(self: TileMatcher, *args: Any, **kw: Any) -> Any:
        out = real(self, *args, **kw)
        start = kw.get("start")
        calls.append((kw["engine"], kw["max_nodes"], bool(start) and start == geo[0]))
        return out

    geo: list[Any] = [None]
    real_hybrid = placer_module._hybrid

    def keep(*args: Any) -> Any:
        geo[0] = args[-1]
        return real_hybrid(*args)

    monkeypatch.setattr(TileMatcher, "match", spy)
    monkeypatch.setattr(placer_module, "_hybrid", keep)
    g, first = placer_module.HYBRID_GLANCE, HYBRID_FIRST
    budget = g + 2 * first + 10
    ans = place(inst.pattern, 2, free, 10, 10, library=lib, node_budget=budget, engine=HYBRID)
    want = [
        ("repair", g, True),
        ("cp", 0, False),
        ("repair", first, True),
        ("cp", first, False),
        ("repair", 10, False),  # from cp's partial, on what is left of the budget
    ]
    assert geo[0] and calls == want
    assert ans.match is not None and ans.reason == "budget" and ans.nodes == budget


def test_hybrid_without_a_library_starts_with_cp():
    """No library, no geometric start: the hybrid's first turn is cp's (the simulator's case)."""
    inst = planted_instance(12, 12, 90, hops=2, blocked_fraction=0.1, kind="transformer", seed=1)
    free = _free_mask(12, 12, inst.blocked)
    ans = place(inst.pattern, 2, free, 12, 12, node_budget=HYBRID_FIRST + 500, engine=HYBRID)
    assert ans.match is not None and ans.reason == "budget"
    stats = ans.match.stats
    want = (2, HYBRID_FIRST, 500, 500)
    assert (stats["turns"], stats["cp_nodes"], stats["repair_nodes"], stats["repair_steps"]) == want


def test_hybrid_counts_repair_steps_apart_from_nodes(monkeypatch):
    """Above 256 usable tiles a repair step counts as two nodes: the stats say both."""
    import isosched.match.placer as placer_module

    monkeypatch.setattr(placer_module, "HYBRID_FIRST", 2)  # repair's turn comes at once
    inst = planted_instance(20, 20, 150, hops=2, blocked_fraction=0.1, kind="transformer", seed=1)
    free = _free_mask(20, 20, inst.blocked)
    assert rp.step_nodes(free.bit_count()) == 2
    ans = place(inst.pattern, 2, free, 20, 20, node_budget=502, engine=HYBRID)
    assert ans.match is not None
    stats = ans.match.stats
    assert stats["turns"] >= 2 and stats["cp_nodes"] + stats["repair_nodes"] == ans.nodes
    assert stats["repair_steps"] > 0 and stats["repair_nodes"] == 2 * stats["repair_steps"]


@given(
    st.lists(st.integers(-3, 40), max_size=14),
    st.lists(st.booleans(), min_size=1, max_size=36),
    st.integers(0, 12),
)
def test_a_start_keeps_usable_tiles_once_each_first_vertex_first(start, usable, n):
    """``start_slots`` against a plain loop: unusable, out-of-range and repeated tiles ignored."""
    slots = [t for t, ok in enumerate(usable) if ok]
    slot_of = np.full(len(usable), -1, dtype=np.int64)
    slot_of[slots] = np.arange(len(slots))
    want = [-1] * n
    taken: set[int] = set()
    for v, t in enumerate(start[:n]):
        if 0 <= t < len(usable) and slot_of[t] >= 0 and t not in taken:
            want[v] = int(slot_of[t])
            taken.add(t)
    assert rp.start_slots(start, slot_of, n).tolist() == want


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=20), st.integers(0, 6))
def test_the_excess_table_is_hops_beyond_the_bound(xy, hops):
    """Entry (a, b) of the kernel's table: XY distance between slots a and b beyond ``hops``."""
    sx = np.array([x for x, _ in xy], dtype=np.int64)
    sy = np.array([y for _, y in xy], dtype=np.int64)
    table = rp.excess_table(sx, sy, hops)
    assert table.shape == (len(xy), len(xy)) and table.dtype == np.int64
    for a, (xa, ya) in enumerate(xy):
        for b, (xb, yb) in enumerate(xy):
            assert table[a, b] == max(0, abs(xa - xb) + abs(ya - yb) - hops)


@pytest.mark.parametrize(
    ("width", "height", "hops", "blocked", "kind"),
    [
        (8, 8, 2, 0.3, "chip"),
        (16, 16, 6, 0.1, "chip"),
        (20, 20, 3, 0.5, "own"),
        (40, 30, 3, 0.3, "none"),
    ],
)
def test_a_models_table_is_its_slots_excess_where_it_has_one(width, height, hops, blocked, kind):
    """Cut from the chip's kept table (chips of up to TABLE_SLOTS tiles), computed (more tiles,
    up to TABLE_SLOTS usable), or none (the kernel computes the excess): never the kept table."""
    inst = planted_instance(width, height, 20, hops=hops, blocked_fraction=blocked, seed=2)
    target = mesh_target(width, height, hops, inst.blocked)
    model = rp.RepairModel.of(inst.pattern, target)
    m = model.slots.size
    assert kind == (
        "none" if m > rp.TABLE_SLOTS else "chip" if target.size <= rp.TABLE_SLOTS else "own"
    )
    if kind == "none":
        assert model.dex.shape == (0, 0)
        return
    dx = np.abs(model.sx[:, None] - model.sx[None, :])
    dy = np.abs(model.sy[:, None] - model.sy[None, :])
    assert np.array_equal(model.dex, np.maximum(dx + dy - hops, 0))
    assert model.dex.flags.writeable
    if kind == "chip":
        kept = rp._chip_excess(width, height, hops)
        assert not kept.flags.writeable and not np.shares_memory(model.dex, kept)


@pytest.mark.parametrize("compiled", [True, False])
def test_repair_answers_the_same_with_or_without_the_table(monkeypatch, compiled):
    """Excess from the table or from the coordinates: the same search, step for step."""
    for seed in range(3):
        inst = planted_instance(
            9, 9, 30, hops=2, blocked_fraction=0.2, kind="transformer", seed=seed
        )
        target = mesh_target(9, 9, 2, inst.blocked)
        with_table = rp.repair_search(
            inst.pattern, target, math.inf, seed=seed, max_steps=400, compiled=compiled
        )
        with monkeypatch.context() as mp:
            mp.setattr(rp, "TABLE_SLOTS", 0)
            model = rp.RepairModel.of(inst.pattern, target)
            assert model.dex.shape == (0, 0)
            without = rp.repair_search(
                inst.pattern, target, math.inf, seed=seed, max_steps=400, compiled=compiled,
                model=model,
            )  # fmt: skip
        assert with_table == without


def test_a_repair_model_for_another_target_is_refused():
    """Another bound, other usable tiles (even as many), another chip shape, another pattern."""
    inst = planted_instance(8, 8, 20, hops=2, blocked_fraction=0.2, seed=1)
    target = mesh_target(8, 8, 2, inst.blocked)
    model = rp.RepairModel.of(inst.pattern, target)
    usable = np.flatnonzero(target.allowed)
    moved = {(int(t) % 8, int(t) // 8) for t in usable[:1]} | {
        (x, y) for x in range(8) for y in range(8) if (y * 8 + x) not in set(usable.tolist())
    }
    free_first = next(t for t in range(64) if t not in set(usable.tolist()))
    moved.discard((free_first % 8, free_first // 8))  # as many usable tiles, not the same ones
    same_count = mesh_target(8, 8, 2, moved)
    assert np.count_nonzero(same_count.allowed) == usable.size
    others = [mesh_target(8, 8, 3, inst.blocked), mesh_target(8, 8, 2), same_count]
    free = mesh_target(8, 8, 2)
    wide = mesh_target(16, 4, 2)
    assert np.count_nonzero(wide.allowed) == np.count_nonzero(free.allowed)
    cases = [(inst.pattern, model, t) for t in others]
    cases.append((inst.pattern, rp.RepairModel.of(inst.pattern, wide), free))
    smaller = planted_instance(8, 8, 12, hops=2, blocked_fraction=0.2, seed=1).pattern
    cases.append((smaller, model, target))
    for pattern, kept, other in cases:
        with pytest.raises(ValueError, match="another target or pattern"):
            rp.repair_search(pattern, other, math.inf, max_steps=10, model=kept)
    assert rp.repair_search(inst.pattern, target, math.inf, max_steps=10, model=model).steps > 0
