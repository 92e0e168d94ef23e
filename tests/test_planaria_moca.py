"""Planaria and MoCA: hand-derived allocations, fission at layer boundaries, throttling."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isosched.sim.engine as engine
import isosched.sim.planbook as planbook
import isosched.sim.policies.moca as moca
import isosched.sim.policies.planaria as planaria
from isosched.cost import lts_job_cost
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.plan import PlanCache
from isosched.sim import PlanBook, Simulator, make_policy
from isosched.sim.policies.moca import Moca, bandwidth_shares, memory_aware_order
from isosched.sim.policies.planaria import Candidate, allocate, pod_shape
from isosched.trace import Job, Trace, generate_trace, parse_scenario

HW = load_hardware("edge-8x8")  # 16 pods of 2×2 tiles, as Planaria's 16 subarrays
#: A resume that reads state back restarts its pipeline: the hardware's fixed cost, µs.
RESTART = HW.cycles_to_us(HW.preemption.restore_cycles)
MODELS = load_models(["mobilenetv2", "resnet50", "segformer_b0", "yolov3"])
BOOK = PlanBook(HW, MODELS, PlanCache(disk=False))
S = HW.scheduler


def trace_of(*jobs):
    return Trace({"schema": "isosched.trace/v1", "scenario": "t", "seed": 0}, tuple(jobs))


def job(name, release, deadline, model="mobilenetv2", priority=1, critical=False):
    return Job(
        name, name.split("#")[0], model, release, release + deadline, priority, critical, None
    )


def simulate(trace, policy):
    return Simulator(trace, HW, make_policy(policy) if isinstance(policy, str) else policy, BOOK)


def cand(name, priority, min_pods, rem_min=1000.0, rem_all=100.0, slack=1e6, demand=0.0):
    return Candidate(name, priority, min_pods, rem_min, rem_all, slack, demand)


def steps(model):
    return sum(1 for lay in MODELS[model] if lay.is_compute)


# ---- the artifact's allocation rules ---------------------------------------------------------


def test_all_minima_fit_spare_pods_go_by_priority_over_remaining_time():
    """Minima 2 and 4; scores 1/1000 and 3/1000; 10 spare pods split 2.5 / 7.5, rounded half to
    even (2 and 8): 4 and 12."""
    targets, order = allocate([cand("a", 1, 2), cand("b", 3, 4)], 16)
    assert targets == {"a": 4, "b": 12}
    assert order == ["b", "a"]


def test_rounding_leftovers_go_to_the_highest_priority_job():
    """Three jobs of equal score share 4 spare pods as 1.33 each: one pod left, to the job of
    highest priority (ties: highest score, then id)."""
    cs = [cand("a", 2, 1, rem_min=200.0), cand("b", 1, 1, rem_min=100.0), cand("c", 1, 1)]
    # scores: a 2/200 = b 1/100 = 0.01, c 0.001 -> spare 4: a 1.9 -> 2, b 1.9 -> 2, c 0.19 -> 0
    targets, _ = allocate(cs, 7)
    assert targets == {"a": 3, "b": 3, "c": 1}
    cs = [cand("a", 3, 1), cand("b", 1, 1, rem_min=1000 / 3), cand("c", 1, 1, rem_min=1000 / 3)]
    targets, _ = allocate(cs, 7)  # equal scores 0.003: 4/3 each, 1 each, one left to a
    assert targets == {"a": 3, "b": 2, "c": 2}


def test_minima_that_do_not_fit_go_by_priority_over_slack_times_minimum():
    """Capacity 4: the critical job (9 / (1000 × 3)) gets its 3, the background job
    (1 / (500 × 2)) what is left (1 pod), the job that cannot meet its deadline nothing."""
    cs = [cand("bg", 1, 2, slack=500.0), cand("hi", 9, 3, slack=1000.0), cand("late", 2, None)]
    targets, order = allocate(cs, 4)
    assert targets == {"hi": 3, "bg": 1, "late": 0}
    assert order == ["hi", "bg", "late"]


def test_when_no_job_can_meet_its_deadline_pods_go_by_priority_over_remaining_time():
    """Scores -1/100 and -3/100: 10 pods split 2.5 / 7.5, rounded half to even (2 and 8)."""
    targets, _ = allocate([cand("x", 1, None), cand("y", 3, None)], 10)
    assert targets == {"x": 2, "y": 8}


def test_pods_are_the_sixteen_subarrays():
    sim = simulate(trace_of(job("a#0", 0, 10**6)), "planaria")
    assert pod_shape(sim) == (2, 2)


# ---- fission and re-fusion on the simulator -----------------------------------------------------


@pytest.mark.parametrize("policy", ["planaria", "moca"])
def test_a_lone_job_grows_to_the_whole_chip(policy):
    """Alone, a job gets every pod and finishes at the whole-chip LTS latency plus the charged
    decision time: 16 pod tests, the whole-chip profile, then 4 halvings of the binary search
    for its minimum (one lookup each)."""
    run = simulate(trace_of(job("a#0", 0, 50_000, "resnet50")), policy).run()
    (js,) = run.jobs
    (iv,) = js.intervals
    charged = (S.decision_ns + (16 + 1 + 4) * S.lookup_ns) / 1e3
    assert run.decisions[0].charged_us == pytest.approx(charged)
    assert len(iv["tiles"]) == HW.tiles and iv["start_us"] == 0
    whole = BOOK.lts("resnet50", HW.tiles, 1.0).latency_us
    assert js.finish_us == math.ceil(charged + whole)


def test_a_second_arrival_makes_the_first_shrink_at_its_next_layer_boundary():
    """A runs alone on the whole chip (all the bandwidth: its work fraction grows as time over
    its whole-chip latency L). B arrives midway between two of A's layer boundaries; A keeps
    running to the next boundary k/S, shrinks there, and B starts there on the pods A gave up.
    Later, when B is done, A grows back to the whole chip."""
    lat = BOOK.lts("resnet50", HW.tiles, 1.0).latency_us
    s = steps("resnet50")
    d0 = (S.decision_ns + 21 * S.lookup_ns) / 1e3  # A's start, as for a lone job
    k = 7
    arrive = math.ceil(d0 + (k - 0.5) / s * lat)
    boundary = d0 + k / s * lat
    trace = trace_of(job("a#0", 0, 10**6, "resnet50"), job("b#0", arrive, 10**5))
    run = simulate(trace, "planaria").run()
    by = {j.id: j for j in run.jobs}
    a, b = by["a#0"], by["b#0"]
    first, second = a.intervals[0], a.intervals[1]
    assert first["end_us"] == math.ceil(boundary) and len(first["tiles"]) == HW.tiles
    assert 0 < len(second["tiles"]) < HW.tiles
    kept = {tuple(t) for t in second["tiles"]}
    assert kept < {tuple(t) for t in first["tiles"]}
    assert b.started_us == math.ceil(boundary)
    took = {tuple(t) for t in b.intervals[0]["tiles"]}
    assert took and not took & kept
    assert len(took) + len(kept) == HW.tiles  # every pod in use
    assert a.preemptions == 0 and b.preemptions == 0
    assert a.finish_us is not None and b.finish_us is not None
    assert b.finish_us <= b.job.deadline_us
    # A grows back once B is done.
    assert len(a.intervals[-1]["tiles"]) == HW.tiles
    assert a.intervals[-1]["start_us"] >= b.finish_us


def _preemption_trace(model="yolov3"):
    """A background job on the whole chip; a critical job whose minimum is every pod."""
    whole = BOOK.lts(model, HW.tiles, 1.0).latency_us
    fifteen = BOOK.lts(model, 60, 15 / 16).latency_us
    assert fifteen > whole
    rel = math.ceil((whole + fifteen) / 2 / planaria.SLACK_SHARE)  # fits on 16 pods, not on 15
    return trace_of(job("bg#0", 0, 10**7, "resnet50"), job("hi#0", 100, rel, model, 9, True))


def test_the_lower_score_job_is_preempted_at_a_layer_boundary_and_restores_its_activations():
    """Both minima (16 pods and 1) do not fit: the critical job scores 9 / (slack × 16), far
    above the background job, and gets every pod. The background job runs to its next layer
    boundary, writes the activations it holds on-chip there to DRAM (alone, with all of the
    bandwidth), and lets the pods go; the critical job starts then. When it is done the
    background job resumes: it reads its activations back (the restore), and its layers re-read
    their weights as they run (no separate reload under LTS)."""
    trace = _preemption_trace()
    run = simulate(trace, "planaria").run()
    by = {j.id: j for j in run.jobs}
    bg, hi = by["bg#0"], by["hi#0"]
    lat = BOOK.lts("resnet50", HW.tiles, 1.0).latency_us
    s = steps("resnet50")
    d0 = run.decisions[0].charged_us
    k = math.floor((100 - d0) / lat * s) + 1
    boundary = math.ceil(d0 + k / s * lat)
    prof = BOOK.lts("resnet50", HW.tiles, 1.0)
    state = prof.state_bytes(k / s, HW.dram_bytes_per_cycle)
    assert state > 0
    kinds = [iv["kind"] for iv in bg.intervals]
    assert kinds == ["run", "checkpoint", "restore", "run"]
    run1, ckpt, restore, _ = bg.intervals
    assert run1["end_us"] == boundary
    drain = HW.cycles_to_us(HW.preemption.drain_cycles)
    sim = simulate(trace, "fcfs")
    assert ckpt["end_us"] == math.ceil(boundary + drain + sim.dram_us(state, 1.0))
    assert hi.started_us == ckpt["end_us"] and len(hi.intervals[0]["tiles"]) == HW.tiles
    assert hi.finish_us is not None and hi.finish_us <= hi.job.deadline_us
    # Resumed alone after the critical job: restore at all of the bandwidth after the decision.
    resumed = next(d for d in run.decisions if d.at_us == restore["start_us"])
    assert restore["start_us"] >= hi.finish_us
    assert restore["end_us"] == math.ceil(
        restore["start_us"] + resumed.charged_us + sim.dram_us(state, 1.0) + RESTART
    )
    e = HW.energy.dram_pj_per_bit * 8
    assert bg.checkpoint_pj == pytest.approx(2 * state * e)  # written once, read back once
    assert bg.preemptions == 1 and bg.restarts == 0 and bg.finish_us is not None


# ---- MoCA ---------------------------------------------------------------------------------------


def test_bandwidth_goes_to_the_job_at_risk_from_lower_scores_down_to_their_floor():
    """Demands 0.8 and 0.6 split 4/7 and 3/7. The urgent job needs 0.7: it takes 0.7 - 4/7 from
    the background job, which keeps 0.3 (above its floor of KEEP_SHARE × 3/7)."""
    shares = bandwidth_shares([0.8, 0.6], [0.7, None], [9.0, 1.0])
    assert shares == pytest.approx([0.7, 0.3])
    # Needing more than the others can give leaves the split as it is.
    assert bandwidth_shares([0.8, 0.6], [0.95, None], [9.0, 1.0]) == pytest.approx([4 / 7, 3 / 7])
    # A co-runner that needs its own share for its deadline is not throttled below it.
    assert bandwidth_shares([0.8, 0.6], [0.7, 0.35], [9.0, 1.0]) == pytest.approx([4 / 7, 3 / 7])
    # A lower-score job at risk takes nothing from a higher-score one.
    assert bandwidth_shares([0.8, 0.6], [None, 0.5], [9.0, 1.0]) == pytest.approx([4 / 7, 3 / 7])
    # A checkpointing job (demand 1, fixed) counts in the split only.
    assert bandwidth_shares([0.5, 0.5], [None, None], [1.0, 1.0], fixed=1) == pytest.approx(
        [0.25, 0.25]
    )


def test_a_compute_bound_job_is_co_located_before_a_second_memory_bound_one():
    """Admitted so far: the memory-bound a (0.9). Next by score is the memory-bound b (0.9 would
    oversubscribe), so the compute-bound c (0.1) of the same priority goes first; d, of another
    priority, keeps its place."""
    a, b = cand("a", 3, 1, demand=0.9), cand("b", 3, 1, demand=0.9)
    c, d = cand("c", 3, 1, demand=0.1), cand("d", 9, 1, demand=0.9)
    pairs = [(a, 5.0), (b, 4.0), (c, 3.0), (d, 2.0)]
    assert [x.id for x, _ in memory_aware_order(pairs, 16)] == ["a", "c", "b", "d"]
    # Only the jobs that get pods are re-ordered.
    assert [x.id for x, _ in memory_aware_order(pairs, 1)] == ["a", "b", "c", "d"]
    # Planaria hands minima out by score alone.
    cs = [a, b, c]
    targets, _ = allocate(cs, 2, lambda p, n: p)  # by score: a, b
    assert targets == {"a": 1, "b": 1, "c": 0}


def test_need_is_the_smallest_share_that_meets_the_deadline():
    """The share MoCA raises a job to, checked against the job's remaining pieces timed at
    shares on a fine grid."""
    sim = simulate(trace_of(job("u#0", 0, 10**6, "resnet50")), "moca")
    js = sim.jobs["u#0"]
    p = BOOK.lts("resnet50", 16, 1.0)
    js.state, js.tiles, js.pieces = "running", tuple(range(16)), p.pieces
    js.piece, js.piece_left, js.remaining = 1, 0.5, 0.7
    bw = HW.dram_bytes_per_cycle

    def left_us(share):
        rest = [(c * 0.5, b * 0.5) for c, b in p.pieces[1:2]] + list(p.pieces[2:])
        return HW.cycles_to_us(sum(max(c, b / (bw * share)) for c, b in rest))

    policy = sim.policy
    assert isinstance(policy, Moca)
    for raw in (left_us(1.0) * 0.9, left_us(1.0) * 1.01, left_us(0.5), left_us(0.2) * 1.3):
        deadline = math.ceil(raw)  # deadlines are whole µs (Job.deadline_us: int)
        js.job = job("u#0", 0, deadline, "resnet50")
        need = policy.need(sim, js)
        if left_us(1.0) > deadline:
            assert need is None
            continue
        assert need is not None and left_us(need) <= deadline * (1 + 1e-9)
        assert left_us(need * 0.999) > deadline


def _throttle_run(monkeypatch, throttle):
    """A memory-bound background job on the chip; a critical job arrives, sized tightly (the
    artifact's rule: its minimum pods meet the deadline at their share of the bandwidth, with no
    margin), then shares the bandwidth with the background job by demand."""
    monkeypatch.setattr(planaria, "SLACK_SHARE", 1.0)
    monkeypatch.setattr(moca, "THROTTLE", throttle)
    whole = BOOK.lts("resnet50", HW.tiles, 1.0).latency_us
    trace = trace_of(
        job("bg#0", 0, 10**7, "segformer_b0", 1),
        job("u#0", 100, math.ceil(1.3 * whole), "resnet50", 9, True),
    )
    shares: list[tuple[float, float]] = []

    def record(sim, incremental):
        """The background job's share and weight whenever the bandwidth is re-split."""
        u, bg = sim.jobs["u#0"], sim.jobs["bg#0"]
        if u.state == "running" and bg.state == "running":
            shares.append((bg.dram_share, bg.dram_weight))

    monkeypatch.setattr(engine, "AFTER_SPLIT", record)
    run = Simulator(trace, HW, make_policy("moca"), BOOK).run()
    return {j.id: j for j in run.jobs}, shares


def test_moca_throttles_a_low_priority_memory_bound_co_runner(monkeypatch):
    """Under the engine's demand split the critical job would miss; MoCA raises its share to
    what its deadline needs by throttling the background job (its weight and share drop), and
    it meets the deadline."""
    equal, plain = _throttle_run(monkeypatch, False)
    moca_jobs, throttled = _throttle_run(monkeypatch, True)
    u0, u1 = equal["u#0"], moca_jobs["u#0"]
    assert u0.finish_us is not None and u0.finish_us > u0.job.deadline_us
    assert u1.finish_us is not None and u1.finish_us <= u1.job.deadline_us < u0.finish_us
    assert plain and all(w == 1.0 for _, w in plain)
    assert throttled and min(w for _, w in throttled) < 1.0
    assert min(s for s, _ in throttled) < min(s for s, _ in plain)


# ---- decision cost ------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["planaria", "moca"])
def test_profiles_are_computed_once_per_model_and_pod_count(monkeypatch, policy):
    """A contended replay costs one LTS pricing per (model, tile count) at most: every later
    look-up is the plan book's cache (decision time measures the policy, not the cost model)."""
    calls = []

    def counting(layers, tiles, hw):
        calls.append(tiles)
        return lts_job_cost(layers, tiles, hw)

    monkeypatch.setattr(planbook, "lts_job_cost", counting)
    sc = parse_scenario(
        {
            "name": "busy",
            "horizon_ms": 20,
            "streams": [
                {
                    "id": "bg",
                    "model": "resnet50",
                    "period_ms": 0.5,
                    "deadline_ms": 10,
                    "priority": 1,
                },
                {
                    "id": "cam",
                    "model": "mobilenetv2",
                    "period_ms": 1,
                    "deadline_ms": 2,
                    "priority": 9,
                    "critical": True,
                },
            ],
        }
    )
    trace = generate_trace(sc, seed=1)
    book = PlanBook(HW, MODELS, PlanCache(disk=False))
    run = Simulator(trace, HW, make_policy(policy), book).run()
    assert len(run.decisions) > 50
    assert len(calls) <= 2 * 16  # two models, at most 16 pod counts each
    assert len(calls) == len(set(book._lts_cost))


@pytest.mark.parametrize("policy", ["planaria", "moca"])
def test_compiled_division_equals_the_reference_and_charges_the_same(monkeypatch, policy):
    """Sizing and allocation compiled give every job the pods, order and lookups of the
    per-job searches and :func:`allocate` (the reference), at every scheduling point."""
    fast = planaria.Planaria._division
    calls = []

    def checked(self, sim, jobs, npods, capacity):
        before = sim._charged_us
        cands = [self._candidate(sim, js, npods) for js in jobs]
        charged = sim._charged_us - before
        want_targets, want_order = allocate(cands, capacity, self.order(sim))
        sim._charged_us = before
        assert self._candidates(sim, jobs, npods) == cands
        sim._charged_us = before
        targets, order, mins = fast(self, sim, jobs, npods, capacity)
        assert sim._charged_us - before == charged
        assert {js.id: t for js, t in zip(jobs, targets, strict=True)} == want_targets
        assert [jobs[i].id for i in order] == want_order
        assert [k or None for k in mins] == [c.min_pods for c in cands]
        calls.append(len(jobs))
        return targets, order, mins

    monkeypatch.setattr(planaria, "DIVISION_HOOK", checked)
    sc = parse_scenario(
        {
            "name": "mixed",
            "horizon_ms": 60,
            "streams": [
                {
                    "id": "cam",
                    "model": "mobilenetv2",
                    "period_ms": 0.5,
                    "deadline_ms": 6,
                    "priority": 3,
                    "critical": True,
                },
                {"id": "det", "model": "yolov3", "period_ms": 8, "deadline_ms": 40, "priority": 2},
                {
                    "id": "seg",
                    "model": "segformer_b0",
                    "period_ms": 4,
                    "deadline_ms": 20,
                    "priority": 1,
                },
                {
                    "id": "bg",
                    "model": "resnet50",
                    "period_ms": 0.5,
                    "deadline_ms": 30,
                    "priority": 1,
                },
            ],
        }
    )
    run = simulate(generate_trace(sc, seed=3), policy).run()
    assert max(calls) >= 5  # contended: several jobs sized at once
    assert any(r.state == "done" for r in run.jobs)
    assert any(r.state == "dropped" for r in run.jobs)


def _arrays(cs):
    return (
        np.array([c.priority for c in cs], dtype=np.int64),
        np.array([c.min_pods or 0 for c in cs], dtype=np.int64),
        np.array([c.rem_min_us for c in cs], dtype=np.float64),
        np.array([c.rem_all_us for c in cs], dtype=np.float64),
        np.array([c.slack_us for c in cs], dtype=np.float64),
        np.array([c.demand for c in cs], dtype=np.float64),
    )


_cands = st.lists(
    st.tuples(
        st.integers(1, 4),  # priority: few values, so ties happen
        st.one_of(st.none(), st.integers(1, 6)),  # minimal pods
        st.sampled_from([0.0, 50.0, 100.0, 250.0, 1000.0, 1e9]),  # remaining on the minimum
        st.sampled_from([0.5, 1.0, 40.0, 100.0, 3e3]),  # remaining on every pod
        st.sampled_from([-5.0, 0.0, 100.0, 400.0, 1e6]),  # slack
        st.sampled_from([0.0, 0.2, 0.5, 0.9]),  # DRAM demand
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(
    raw=_cands,
    capacity=st.integers(0, 20),
    memory_aware=st.booleans(),
    names=st.permutations(range(12)),
)
def test_compiled_allocation_equals_the_reference(raw, capacity, memory_aware, names):
    from isosched.sim.policies.podalloc import allocate_arrays

    cs = [  # ids in another order than the list's, so that id ties are really broken by id
        Candidate(f"j{names[i]:02d}", p, m, r if m is not None else math.inf, a, s, d)
        for i, (p, m, r, a, s, d) in enumerate(raw)
    ]
    order = memory_aware_order if memory_aware else None
    want_targets, want_order = allocate(cs, capacity, order)
    rank = [0] * len(cs)
    for r, i in enumerate(sorted(range(len(cs)), key=lambda i: cs[i].id)):
        rank[i] = r
    prio, minp, rem_min, rem_all, slack, demand = _arrays(cs)
    got, idx = allocate_arrays(
        prio, minp, rem_min, rem_all, slack, demand, np.array(rank), capacity, memory_aware
    )
    assert {c.id: int(t) for c, t in zip(cs, got, strict=True)} == want_targets
    assert [cs[i].id for i in idx] == want_order


# ---- compiled walks over a job's pieces ---------------------------------------------------------

_pieces = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.1, 0.2, 0.7, 500.0, 1e4 + 0.3, 123456.7]),  # cycles
        st.sampled_from([0.0, 0.3, 64.0, 1e5, 3.3e6]),  # DRAM bytes
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=400, deadline=None)
@given(
    _pieces,
    st.data(),
    st.sampled_from([1e-12, 0.1, 0.37, 1.0]),  # DRAM share
    st.sampled_from([0.05, 0.5, 1.0]),  # piece left
    st.sampled_from([0.0, 0.3, 0.99]),  # done so far
)
def test_compiled_piece_walks_equal_the_reference(pieces, data, share, left, done):
    """``time_to_us`` and MoCA's ``need`` compiled give the plain-Python answers bit for bit
    (ties between turning points included: the sample values repeat)."""
    sim = simulate(trace_of(job("u#0", 0, 10**6, "resnet50")), "moca")
    js = sim.jobs["u#0"]
    js.state, js.pieces = "running", tuple(pieces)
    js.piece = data.draw(st.integers(0, len(pieces)))
    js.piece_left, js.remaining, js.dram_share = left, 1.0 - done, share
    for target in (1.0, min(1.0, done + 0.2)):
        assert planaria.time_to_us(js, sim, target) == planaria.time_to_us(
            js, sim, target, compiled=False
        )
    policy = sim.policy
    assert isinstance(policy, Moca)
    for deadline in (1, 2, 50, 2_000, 10**5, 10**7):
        js.job = job("u#0", 0, deadline, "resnet50")
        for start in (0.0, deadline - 1e-3, deadline - 2e-4):  # budgets down to a cycle or less
            js.progress_from_us = start
            assert policy.need(sim, js) == moca.need_share(sim, js, compiled=False)
