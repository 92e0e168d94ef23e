"""The compiled ``cp`` core against its pure-Python reference: the same answers, step for step.

Same placement, same node, backtrack and propagation counts, same stop reason and partial
placement, for every node budget, seed, cost setting and domain mode; and the same static data
(initial domains, distance layers, balls of the target graph).
"""

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isosched.match import TileMatcher, cpcore, mesh_target, planted_instance
from isosched.match import cp as cp_module
from isosched.match.bitmesh import BitMesh
from isosched.match.cp import CPModel, cp_search
from isosched.tilegraph import TileGraph, TileVertex
from tests.test_match_cp import draw_mesh_instance, instances, wide_instances


def outcome_key(model_args, compiled, **kw):
    pattern, target = model_args
    model = CPModel(pattern, target, weighted_twins=kw.get("cost_aware", False), compiled=compiled)
    out = cp_search(model, math.inf, **kw)
    s = out.stats
    return (
        out.stop,
        out.reason,
        out.tiles,
        out.cost,
        out.partial,
        s.nodes,
        s.backtracks,
        s.max_depth,
        s.exhausted,
        s.timed_out,
        sorted(s.extra.items()),
    )


def row_int(row):
    return int.from_bytes(np.asarray(row, dtype="<u8").tobytes(), "little")


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(
    st.one_of(instances(), wide_instances()),
    # small seeds restart inside the compiled core; huge ones return to Python at each restart
    st.one_of(st.integers(0, 20), st.sampled_from([-7, cp_module.INCORE_SEED, 2**40 + 3])),
    st.sampled_from([1, 7, 60, 2000]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1, 2, cp_module.RESTART_FAILS]),
)
def test_compiled_cp_gives_the_reference_answer(
    inst, seed, max_nodes, cost_aware, lazy, restart_fails
):
    """Also with restarts after (almost) every failure: root nogoods and varied orders."""
    saved = cp_module.ACTIVE_LIMIT, cp_module.RESTART_FAILS
    if lazy:
        cp_module.ACTIVE_LIMIT = 0
    cp_module.RESTART_FAILS = restart_fails
    try:
        kw = {"seed": seed, "max_nodes": max_nodes, "cost_aware": cost_aware}
        assert outcome_key(inst, True, **kw) == outcome_key(inst, False, **kw)
    finally:
        cp_module.ACTIVE_LIMIT, cp_module.RESTART_FAILS = saved


@SETTINGS
@given(st.one_of(instances(), wide_instances()))
def test_compiled_setup_equals_the_reference(inst):
    pattern, target = inst
    ref = CPModel(pattern, target, compiled=False)
    comp = CPModel(pattern, target, compiled=True)
    assert comp.proof == ref.proof
    a = comp.arrays
    assert [row_int(r) for r in a["dom0"]] == ref.dom0
    layers = []
    for v in range(ref.n):
        row = []
        for e in range(a["lay_ptr"][v], a["lay_ptr"][v + 1]):
            us = a["lay_u"][a["lay_uptr"][e] : a["lay_uptr"][e + 1]].tolist()
            row.append((int(a["lay_d"][e]), us))
        layers.append(row)
    assert layers == ref.layers
    bm = BitMesh.of(target)
    for t in range(target.size):
        if target.allowed[t]:
            assert row_int(a["nbr"][t]) == bm.nbr[t]
            for d in range(a["balls"].shape[0]):
                assert row_int(a["balls"][d, t]) == bm.ball(t, d)


@pytest.mark.parametrize(
    ("kind", "side", "n", "seed", "max_nodes", "cost_aware"),
    [
        ("transformer", 14, 110, 5, 3000, False),  # restarts, four words
        ("multibranch", 14, 110, 7, 400, True),
        ("transformer", 12, 60, 2, 3000, False),
        ("chain", 20, 200, 1, 2000, True),
    ],
)
def test_compiled_cp_on_planted_instances(kind, side, n, seed, max_nodes, cost_aware):
    inst = planted_instance(side, side, n, hops=2, blocked_fraction=0.1, kind=kind, seed=seed)
    target = mesh_target(side, side, 2, inst.blocked)
    kw = {"seed": 3, "max_nodes": max_nodes, "cost_aware": cost_aware}
    a = outcome_key((inst.pattern, target), True, **kw)
    assert a == outcome_key((inst.pattern, target), False, **kw)


def test_compiled_cp_lazy_mode_and_hook(monkeypatch):
    """Lazy domains (above EAGER_LIMIT) and a semantic hook give the reference's answer."""
    monkeypatch.setattr(cp_module, "EAGER_LIMIT", 20)
    inst = planted_instance(12, 12, 60, hops=2, blocked_fraction=0.1, kind="multibranch", seed=4)
    target = mesh_target(12, 12, 2, inst.blocked)

    class Even(TileMatcher):
        def semantic_feasibility(self, vertex: int, tile: int) -> bool:
            return vertex != 3 or tile % 2 == 0

    docs = []
    for engine in ("cp", "cp-py"):
        r = Even(target, inst.pattern).match(engine=engine, budget_ms=60_000, max_nodes=2000)
        d = r.to_doc()
        del d["elapsed_ms"], d["engine"]
        docs.append(d)
    assert docs[0] == docs[1]
    assert docs[0]["found"]


def test_mersenne_twister_matches_python_random():
    for key in (0, 7, 3_000_011, 2**40 + 3, 2**70 + 5):
        mt = cp_module._mt_state(key)
        s = np.zeros(cpcore.NS, dtype=np.int64)
        s[cpcore.S_MTI] = 624
        r = random.Random(key)
        assert [cpcore._mt_random(mt, s) for _ in range(700)] == [r.random() for _ in range(700)]


def test_env_switch_selects_the_reference(monkeypatch):
    inst = planted_instance(8, 8, 20, hops=2, blocked_fraction=0.1, kind="chain", seed=1)
    target = mesh_target(8, 8, 2, inst.blocked)
    assert CPModel(inst.pattern, target).compiled
    monkeypatch.setenv(cp_module.ENV_SWITCH, "py")
    assert not CPModel(inst.pattern, target).compiled


def test_hundreds_of_root_demotions_agree(monkeypatch):
    """A restart after every failure on a 7-cycle at one hop (no placement: a grid has no odd
    cycle) demotes hundreds of root tiles, past the compiled core's first buffer of 64: the same
    proof, nodes and restarts as the reference."""
    monkeypatch.setattr(cp_module, "RESTART_FAILS", 1)
    ring = TileGraph(
        tuple(TileVertex(f"v{i}") for i in range(7)), tuple((i, (i + 1) % 7, 1) for i in range(7))
    )
    target = mesh_target(6, 6, 1)
    got = [
        cp_search(CPModel(ring, target, compiled=compiled), math.inf, max_nodes=20_000)
        for compiled in (True, False)
    ]
    assert got[0].stop == got[1].stop == "impossible"
    assert got[0].stats.extra["restarts"] > 64
    assert got[0].stats.nodes == got[1].stats.nodes
    assert got[0].stats.extra == got[1].stats.extra


def test_compiled_restart_schedule_is_the_reference_one():
    """The restarts made inside the core: the same Luby terms and the same random streams."""
    assert [cpcore.luby(i) for i in range(1, 300)] == [cp_module.luby(i) for i in range(1, 300)]
    for key in (0, 5, 2**32 - 1, 2**32, 3 * 2**40 + 17):
        s = np.zeros(cpcore.NS, dtype=np.int64)
        s[cpcore.S_MTI] = 624
        mt = cpcore.mt_seed_int(key)
        rng = random.Random(key)
        assert [cpcore._mt_random(mt, s) for _ in range(700)] == [rng.random() for _ in range(700)]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(instances(), wide_instances()), st.integers(0, 5))
def test_compiled_cp_with_a_queue_that_keeps_filling(inst, seed):
    """A full propagation queue is grown and its node run again: the same answer, step for step."""
    saved = cp_module.QUEUE_LEN
    cp_module.QUEUE_LEN = 1
    try:
        kw = {"seed": seed, "max_nodes": 500}
        assert outcome_key(inst, True, **kw) == outcome_key(inst, False, **kw)
    finally:
        cp_module.QUEUE_LEN = saved


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.0, -1.0, -3.25, 1e300, -1e-300, 7.0]),
            st.floats(allow_nan=False, width=64),
        ),
        min_size=1,
        max_size=400,
    )
)
def test_stable_order_is_numpys_stable_argsort(values):
    """The value order's sort without allocation: numpy's stable order, ties included."""
    keys = np.asarray([*values, 9.0], dtype=np.float64)  # a slot past k must not be read
    k = len(values)
    idx = np.full(k + 1, -1, dtype=np.int64)
    buf = np.full(k + 1, -1, dtype=np.int64)
    rk = np.zeros(k + 1, dtype=np.uint64)
    cnt = np.zeros(257, dtype=np.int64)
    cpcore._stable_order(keys, k, idx, buf, rk, cnt)
    assert idx[:k].tolist() == np.argsort(keys[:k], kind="mergesort").tolist()


@st.composite
def sparse_wide_instances(draw):
    """Small patterns on meshes of five to nine words, most of each domain's words zero."""
    return draw_mesh_instance(draw, 16, (17, 24), (17, 24), (1, 2))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(sparse_wide_instances(), st.integers(0, 20), st.booleans(), st.sampled_from([1, 2]))
def test_compiled_cp_on_wide_sparse_meshes(inst, seed, lazy, restart_fails):
    """Rows wider than four words are counted without a branch per word: the same answers."""
    saved = cp_module.ACTIVE_LIMIT, cp_module.RESTART_FAILS
    if lazy:
        cp_module.ACTIVE_LIMIT = 0
    cp_module.RESTART_FAILS = restart_fails
    try:
        kw = {"seed": seed, "max_nodes": 300}
        assert outcome_key(inst, True, **kw) == outcome_key(inst, False, **kw)
    finally:
        cp_module.ACTIVE_LIMIT, cp_module.RESTART_FAILS = saved


def test_compiled_cp_on_a_thousand_vertices_at_44x44():
    """The planted benchmark's largest instance (31 words, lazy domains, restarts): the same
    answer, step for step, for a few hundred nodes."""
    inst = planted_instance(44, 44, 1000, hops=2, blocked_fraction=0.1, kind="transformer", seed=2)
    target = mesh_target(44, 44, 2, inst.blocked)
    kw = {"seed": 2, "max_nodes": 1500}
    assert outcome_key((inst.pattern, target), True, **kw) == outcome_key(
        (inst.pattern, target), False, **kw
    )


@given(st.lists(st.booleans(), max_size=300), st.integers(0, 2))
def test_allowed_tiles_become_the_same_words_as_bit_by_bit(flags, extra):
    """cp's word row of the usable tiles (``_words``, packed) against setting bits one by one."""
    from isosched.match.cp import _words

    w = (len(flags) + 63) // 64 + extra
    want = np.zeros(w, dtype=np.uint64)
    for t, ok in enumerate(flags):
        if ok:
            want[t >> 6] |= np.uint64(1 << (t & 63))
    got = _words(np.asarray(flags, dtype=bool), w)
    assert got.dtype == np.uint64 and got.tolist() == want.tolist()
