"""PREMA (Choi and Rhu, HPCA 2020): hand-derived timelines on edge-4x4.

Every expected time below is derived by hand from the LTS profiles (one job alone on the 16
tiles with all of the DRAM bandwidth), the hardware's drain, DRAM bandwidth and decision costs,
and the engine's rule that event times are rounded up to whole microseconds. The comments give
today's numbers (mobilenetv2 ≈ 142.8 µs, resnet50 ≈ 1004.2 µs alone).
"""

import math

import pytest

from isosched.cost import roofline_cycles
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.plan import PlanCache
from isosched.sim import PlanBook, Simulator
from isosched.sim.policies.prema import Prema, choose_mechanism
from isosched.trace import Job, Trace

HW = load_hardware("edge-4x4")
#: A resume that reads state back restarts its pipeline: the hardware's fixed cost, µs.
RESTART = HW.cycles_to_us(HW.preemption.restore_cycles)
MODELS = load_models(["mobilenetv2", "resnet50"])
BOOK = PlanBook(HW, MODELS, PlanCache(disk=False))
M, R = "mobilenetv2", "resnet50"
BW = HW.dram_bytes_per_cycle
#: Simulated time charged for one decision that places a job (fixed cost plus one lookup).
C = (HW.scheduler.decision_ns + HW.scheduler.lookup_ns) / 1e3


def iso(model: str) -> float:
    """Isolated time: alone on the whole chip with all of the DRAM bandwidth, µs."""
    return BOOK.lts(model, HW.tiles, 1.0).latency_us


def drain(model: str) -> float:
    """The engine's LTS drain: the fixed stop plus the mean layer time, µs."""
    return HW.cycles_to_us(HW.preemption.drain_cycles) + layer(model)


def layer(model: str) -> float:
    """The mean layer time alone, µs: how far a drain runs a job on (credited to it)."""
    return iso(model) / len(MODELS[model].layers)


def move(nbytes: int) -> float:
    """Moving ``nbytes`` through all of the DRAM bandwidth, µs."""
    return HW.cycles_to_us(nbytes / BW)


def state_at(model: str, progress_us: float) -> tuple[int, int]:
    """(piece, on-chip bytes) of the layer window a job is in after ``progress_us`` of work."""
    p = BOOK.lts(model, HW.tiles, 1.0)
    acc = 0.0
    for i, (c, b) in enumerate(p.pieces):
        acc += HW.cycles_to_us(max(c, b / BW))
        if progress_us < acc:
            return i, p.live_bytes[i]
    raise AssertionError("past the end of the inference")


def job(name, release, model, priority, deadline=10**7):
    return Job(name, name.split("#")[0], model, release, release + deadline, priority, False, None)


def run(*jobs, policy=None):
    policy = policy or Prema()
    trace = Trace({"schema": "isosched.trace/v1", "scenario": "t", "seed": 0}, tuple(jobs))
    result = Simulator(trace, HW, policy, BOOK).run()
    return {js.id: js for js in result.jobs}, policy, result


def spans(js):
    return [(iv["kind"], iv["start_us"], iv["end_us"]) for iv in js.intervals]


# ---- Algorithm 3 (and KILL), as a function ----------------------------------------------------


def test_mechanism_rule():
    """DRAIN when the runner would suffer the larger slowdown, else preempt; KILL only when the
    work lost is no more than the checkpoint would cost; ties preempt."""
    # Runner 100 µs alone with 10 left; candidate 50 µs: runner's slowdown 50/100 = 0.5 if
    # preempted, candidate's 10/50 = 0.2 if the runner drains: drain.
    assert choose_mechanism(100, 10, 50, 50, 5).mechanism == "drain"
    # 90 left: candidate's slowdown 1.8 > 0.5, preempt; 10 µs of work lost > 5 µs: checkpoint.
    d = choose_mechanism(100, 90, 50, 50, 5)
    assert d.mechanism == "checkpoint"
    assert (d.runner_slowdown, d.candidate_slowdown, d.lost_us) == pytest.approx((0.5, 1.8, 10))
    # The same with a checkpoint costing 20 µs: killing loses less, kill.
    assert choose_mechanism(100, 90, 50, 50, 20).mechanism == "kill"
    # The paper's rule alone never kills.
    assert choose_mechanism(100, 90, 50, 50, 20, kill=False).mechanism == "checkpoint"
    # Equal slowdowns (25/100 = 0.25 = 12.5/50): preempt.
    assert choose_mechanism(100, 12.5, 50, 25, 1).mechanism == "checkpoint"


# ---- the three mechanisms, timeline by timeline -----------------------------------------------


def test_kill_when_the_runner_has_made_little_progress():
    """resnet50 (priority 1) starts at 0; mobilenetv2 (priority 9) arrives at 5 µs. The runner
    has done 5 - C ≈ 2.7 µs of work, less than a checkpoint would cost it (the fixed drain, 2 µs,
    plus writing and reading back ≈ 1.6 MB, ≈ 62.7 µs each way; its run to the layer boundary
    is its own work): PREMA kills it and starts the
    candidate at once; the killed job starts its inference again when the candidate ends."""
    jobs, policy, _ = run(job("bg#0", 0, R, 1), job("cam#0", 5, M, 9))
    bg, cam = jobs["bg#0"], jobs["cam#0"]
    lost = 5 - C
    _, state = state_at(R, lost + layer(R))
    assert lost < drain(R) - layer(R) + 2 * move(state)
    ((at, runner, cand, why),) = policy.log
    assert (at, runner, cand, why.mechanism) == (5, "bg#0", "cam#0", "kill")
    assert why.lost_us == pytest.approx(lost)
    cam_end = math.ceil(5 + C + iso(M))  # 151
    assert spans(cam) == [("run", 5, cam_end)]
    assert spans(bg) == [("run", 0, 5), ("run", cam_end, math.ceil(cam_end + C + iso(R)))]
    assert (bg.preemptions, bg.restarts, bg.checkpoint_pj) == (1, 1, 0.0)
    assert bg.finish_us == math.ceil(cam_end + C + iso(R))  # 1158: the whole inference again


def test_without_kill_the_same_case_checkpoints():
    """The paper's Algorithm 3 alone (DRAIN or CHECKPOINT): the runner writes its on-chip
    activations at the layer boundary, the candidate starts when the checkpoint ends, and the
    runner restores them and finishes the work it had left."""
    jobs, policy, _ = run(job("bg#0", 0, R, 1), job("cam#0", 5, M, 9), policy=Prema(kill=False))
    bg, cam = jobs["bg#0"], jobs["cam#0"]
    done = 5 - C + layer(R)  # it runs on through the drain to its layer boundary
    _, state = state_at(R, done)
    assert policy.log[0][3].mechanism == "checkpoint"
    stop = math.ceil(5 + layer(R))  # 11: it runs on to its layer boundary, then checkpoints
    ckpt_end = math.ceil(5 + drain(R) + move(state))  # 76
    cam_end = math.ceil(ckpt_end + iso(M))  # 219
    restored = C + move(state) + RESTART
    assert spans(cam) == [("run", ckpt_end, cam_end)]
    assert spans(bg) == [
        ("run", 0, stop),
        ("checkpoint", stop, ckpt_end),
        ("restore", cam_end, math.ceil(cam_end + restored)),
        ("run", math.ceil(cam_end + restored), bg.finish_us),
    ]
    assert bg.finish_us == math.ceil(cam_end + restored + iso(R) - done)
    assert (bg.preemptions, bg.restarts) == (1, 0)


def test_drain_when_the_runner_is_nearly_done():
    """mobilenetv2 (priority 1) starts at 0; resnet50 (priority 9) arrives at 130 µs, when the
    runner has ≈ 15 µs left. Preempting would slow the runner by 1004/143 ≈ 7.0; draining slows
    the candidate by 15/1004 ≈ 0.015: PREMA drains, the runner finishes uninterrupted and the
    candidate starts then."""
    jobs, policy, _ = run(job("bg#0", 0, M, 1), job("cam#0", 130, R, 9))
    bg, cam = jobs["bg#0"], jobs["cam#0"]
    left = iso(M) - (130 - C)
    ((at, _, _, why),) = policy.log
    assert at == 130 and why.mechanism == "drain"
    assert why.runner_slowdown == pytest.approx(iso(R) / iso(M))
    assert why.candidate_slowdown == pytest.approx(left / iso(R))
    bg_end = math.ceil(C + iso(M))  # 146
    assert spans(bg) == [("run", 0, bg_end)]
    assert bg.preemptions == 0
    assert spans(cam) == [("run", bg_end, math.ceil(bg_end + C + iso(R)))]  # 146 .. 1153


def test_checkpoint_otherwise_and_the_resumed_job_pays_its_restore():
    """resnet50 (priority 1) starts at 0; mobilenetv2 (priority 9) arrives at 500 µs, when the
    runner has done ≈ 498 µs (in its second layer window, ≈ 0.4 MB live on-chip). Killing would
    lose more than the checkpoint costs (2 + 2 × 15.7 µs; its run on to the boundary is its
    own): it checkpoints exactly its live activations, the candidate starts when the checkpoint
    ends (the decision was charged at 500), and on resume the runner restores them before
    finishing its remaining work. Its layers re-read their weights as they run, so there is no
    separate reload."""
    jobs, policy, _ = run(job("bg#0", 0, R, 1), job("cam#0", 500, M, 9))
    bg, cam = jobs["bg#0"], jobs["cam#0"]
    done = 500 - C
    ran = done + layer(R)  # it runs on through the drain to its layer boundary
    piece, state = state_at(R, ran)
    assert piece == 1 and state > 0
    assert done > drain(R) - layer(R) + 2 * move(state)  # more to lose than a checkpoint
    ((at, _, _, why),) = policy.log
    assert (at, why.mechanism) == (500, "checkpoint")
    assert why.checkpoint_us == pytest.approx(drain(R) - layer(R) + 2 * move(state))
    ckpt_end = math.ceil(500 + drain(R) + move(state))  # 524
    cam_end = math.ceil(ckpt_end + iso(M))  # 667
    restore_end = cam_end + C + move(state) + RESTART  # the charge, then the restore
    bg_end = math.ceil(restore_end + iso(R) - ran)  # 1188
    assert spans(cam) == [("run", ckpt_end, cam_end)]
    stop = math.ceil(500 + layer(R))  # it runs on to its layer boundary
    assert spans(bg) == [
        ("run", 0, stop),
        ("checkpoint", stop, ckpt_end),
        ("restore", cam_end, math.ceil(restore_end)),
        ("run", math.ceil(restore_end), bg_end),
    ]
    assert bg.finish_us == bg_end and bg.remaining == 0
    assert (bg.preemptions, bg.restarts) == (1, 0)
    # The state went out and came back through DRAM: both ways in the checkpoint energy.
    assert bg.checkpoint_pj == pytest.approx(2 * state * 8 * HW.energy.dram_pj_per_bit)


def test_a_checkpoint_writes_the_activations_at_the_boundary_the_drain_reaches():
    """mobilenetv2 (priority 9) arrives at 330 µs, near the end of resnet50's first layer window
    (≈ 1.6 MB live): the runner drains on into its second window (≈ 0.4 MB live), and that is
    what it writes and reads back."""
    jobs, policy, _ = run(job("bg#0", 0, R, 1), job("cam#0", 330, M, 9))
    bg = jobs["bg#0"]
    assert policy.log[0][3].mechanism == "checkpoint"
    before, _ = state_at(R, 330 - C)
    piece, state = state_at(R, 330 - C + layer(R))
    assert piece == before + 1 and 0 < state < state_at(R, 330 - C)[1]
    assert bg.checkpoint_pj == pytest.approx(2 * state * 8 * HW.energy.dram_pj_per_bit)


# ---- Algorithm 2: tokens, threshold, shortest candidate ---------------------------------------


class Recording:
    """PREMA that records every job's tokens after each decision (a wrapper: the policy's
    class may be compiled, and a compiled class cannot be subclassed from Python)."""

    def __init__(self, **kw):
        self.inner = Prema(**kw)
        self.name = self.inner.name
        self.kind = self.inner.kind
        self.seen: dict[int, dict[str, float]] = {}

    @property
    def log(self):
        return self.inner.log

    def schedule(self, sim):
        self.inner.schedule(sim)
        self.seen[sim.now] = {
            js.id: js.tokens
            for js in sim.jobs.values()
            if js.state in ("waiting", "running", "checkpointing")
        }


def test_tokens_start_at_the_priority_and_grow_until_the_waiter_competes():
    """resnet50 (priority 3) runs from 0; mobilenetv2 (priority 1) arrives at 10 µs with 1
    token, below the threshold 3 set by the runner. Its tokens grow by 1 × waiting time /
    142.8 µs and reach 3 after 2 × 142.8 µs of waiting, at 296 µs: it is then a candidate, and
    the shortest one (142.8 µs against ≈ 710 µs left), so it preempts the runner, which
    checkpoints (≈ 1.6 MB live in its first window)."""
    policy = Recording()
    jobs, _, _ = run(job("mid#0", 0, R, 3), job("lo#0", 10, M, 1), policy=policy)
    mid, lo = jobs["mid#0"], jobs["lo#0"]
    assert policy.seen[0] == {"mid#0": 3.0}  # tokens start at the priority
    assert policy.seen[10] == {"mid#0": 3.0, "lo#0": 1.0}
    wake = math.ceil(10 + (3 / 1 - 1) * iso(M))  # 296
    assert min(t for t in policy.seen if t > 10) == wake  # nothing in between
    assert policy.seen[wake]["lo#0"] == pytest.approx(1 * (1 + (wake - 10) / iso(M)))
    assert policy.seen[wake]["lo#0"] >= 3
    assert policy.seen[wake]["mid#0"] == 3.0  # a running job's tokens do not grow
    ((at, runner, cand, why),) = policy.log
    assert (at, runner, cand, why.mechanism) == (wake, "mid#0", "lo#0", "checkpoint")
    done = wake - C + layer(R)  # it runs on through the drain to its layer boundary
    _, state = state_at(R, done)
    ckpt_end = math.ceil(wake + drain(R) + move(state))  # 367
    lo_end = math.ceil(ckpt_end + iso(M))  # 510
    assert spans(lo) == [("run", ckpt_end, lo_end)]
    restore_end = lo_end + C + move(state) + RESTART
    stop = math.ceil(wake + layer(R))  # it runs on to its layer boundary
    assert spans(mid) == [
        ("run", 0, stop),
        ("checkpoint", stop, ckpt_end),
        ("restore", lo_end, math.ceil(restore_end)),
        ("run", math.ceil(restore_end), math.ceil(restore_end + iso(R) - done)),
    ]


def test_the_shortest_candidate_wins_and_lower_tokens_are_not_candidates():
    """h (mobilenetv2, priority 9) runs from 0. x (resnet50, 9) arrives at 10, y (mobilenetv2,
    9) at 20, z (mobilenetv2, 1) at 5. The runner is the shortest candidate until it ends at
    146; then y, the shorter of the two priority-9 candidates, runs before x although x came
    first; z, as short as y, is not a candidate (its tokens, 1 + 141/142.8 ≈ 2, are below the
    threshold 9) and x runs after y; z's tokens reach 9 only after its deadline (1005), and it is
    dropped without ever running."""
    jobs, _, _ = run(
        job("h#0", 0, M, 9),
        job("z#0", 5, M, 1, deadline=1000),
        job("x#0", 10, R, 9),
        job("y#0", 20, M, 9),
    )
    h_end = math.ceil(C + iso(M))  # 146
    y_end = math.ceil(h_end + C + iso(M))  # 292
    assert spans(jobs["h#0"]) == [("run", 0, h_end)]
    assert spans(jobs["y#0"]) == [("run", h_end, y_end)]
    assert spans(jobs["x#0"]) == [("run", y_end, math.ceil(y_end + C + iso(R)))]  # .. 1299
    assert 1 + (h_end - 5) / iso(M) < 9 and 5 + 8 * iso(M) > 1005
    assert jobs["z#0"].state == "dropped" and jobs["z#0"].started_us is None
    assert all(j.preemptions == 0 for j in jobs.values())


# ---- a lone job --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [M, R])
def test_a_lone_job_gets_the_whole_chip_and_all_dram_bandwidth(model):
    """Alone, a job holds every tile with all of the DRAM bandwidth and finishes at its LTS
    profile priced with the whole bandwidth, after one charged decision."""
    jobs, policy, result = run(job("a#0", 0, model, 1))
    (js,) = jobs.values()
    p = BOOK.lts(model, HW.tiles, 1.0)
    expected = HW.cycles_to_us(roofline_cycles(p.pieces, BW))
    assert expected == pytest.approx(iso(model))
    assert [d.charged_us for d in result.decisions] == [pytest.approx(C)]
    ((kind, start, end),) = spans(js)
    assert (kind, start, end) == ("run", 0, math.ceil(C + expected))
    assert len(js.intervals[0]["tiles"]) == HW.tiles
    assert js.dram_share == 1.0 and js.latency_us == pytest.approx(expected)
    assert policy.log == [] and js.preemptions == 0
