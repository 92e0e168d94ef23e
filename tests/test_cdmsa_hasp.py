"""CD-MSA and HASP at their papers' best: hand-derived decisions and timelines on edge-4x4.

CD-MSA's numbers come from the LTS profiles: ``rem(model, g)`` is one inference on ``g`` arrays
(4 tiles each) at the gang's proportional DRAM share, the density test's estimate; a job alone
runs at the whole bandwidth. The drain is the hardware's plus a mean layer time (the next layer
boundary); checkpoints and restores move the on-chip activations of the layer window the job is
in through all of the bandwidth (it is alone on the chip when it moves them). Event times are
rounded up to whole microseconds by the engine.
"""

import math

import pytest

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.plan import PlanCache
from isosched.sim import PlanBook, Simulator
from isosched.sim.policies import hasp as hasp_module
from isosched.sim.policies.cdmsa import CdMsa
from isosched.sim.policies.common import rect_positions
from isosched.sim.policies.hasp import Hasp
from isosched.trace import Job, Trace

HW = load_hardware("edge-4x4")
#: A resume that reads state back restarts its pipeline: the hardware's fixed cost, µs.
RESTART = HW.cycles_to_us(HW.preemption.restore_cycles)
MODELS = load_models(["mobilenetv2", "resnet50", "pointpillars"])
BOOK = PlanBook(HW, MODELS, PlanCache(disk=False))
BW = HW.dram_bytes_per_cycle
M, R, P = "mobilenetv2", "resnet50", "pointpillars"
ARRAY = 4  # tiles per array: the quarter-chip partition (2×2) of edge-4x4


def job(name, release, deadline, model, priority=1, critical=False):
    return Job(
        name, name.split("#")[0], model, release, release + deadline, priority, critical, None
    )


def simulate(policy, *jobs):
    trace = Trace({"schema": "isosched.trace/v1", "scenario": "t", "seed": 0}, tuple(jobs))
    return Simulator(trace, HW, policy, BOOK)


def rem(model: str, g: int) -> float:
    """CD-MSA's estimate: one inference on ``g`` arrays at their proportional DRAM share, µs."""
    return BOOK.lts(model, g * ARRAY, g * ARRAY / HW.tiles).latency_us


def density(model: str, g: int, window: float) -> float:
    return g * rem(model, g) / window


def iso(model: str) -> float:
    """Alone on the whole chip with all of the bandwidth, µs."""
    return BOOK.lts(model, HW.tiles, 1.0).latency_us


def drain(model: str, latency_us: float) -> float:
    """The engine's LTS drain: the fixed stop plus the mean layer time, µs."""
    return HW.cycles_to_us(HW.preemption.drain_cycles) + latency_us / len(MODELS[model].layers)


def move(nbytes: float) -> float:
    """Moving ``nbytes`` through all of the DRAM bandwidth, µs."""
    return HW.cycles_to_us(nbytes / BW)


def spans(js):
    return [(iv["kind"], iv["start_us"], iv["end_us"], len(iv["tiles"])) for iv in js.intervals]


def _tiles(js, k=0):
    return {tuple(t) for t in js.intervals[k]["tiles"]}


class First:
    """Set the chip up at the first scheduling point (t = 0), then let CD-MSA decide."""

    name = "cdmsa"

    def __init__(self, setup):
        self.setup, self.inner, self.armed = setup, CdMsa(), False

    def schedule(self, sim):
        if not self.armed:
            self.armed = True
            self.setup(sim)
        self.inner.schedule(sim)


# ---- CD-MSA: ganged arrays under the density test --------------------------------------------


def test_cdmsa_gangs_the_whole_idle_chip_for_a_lone_job():
    """Alone, a job's least-density gang on edge-4x4 is all four arrays (the bandwidth comes
    with the arrays): it runs on the 16 tiles, at its isolated latency."""
    assert min((density(R, g, 1e6), g) for g in (1, 2, 4))[1] == 4
    sim = simulate(CdMsa(), job("x#0", 0, 10**6, R))
    run = sim.run()
    (x,) = run.jobs
    (iv,) = x.intervals
    assert len(iv["tiles"]) == HW.tiles
    assert x.finish_us == math.ceil(run.decisions[0].charged_us + iso(R))


def _half_busy(tight: bool):
    """X (resnet50) runs on the left half (two arrays). A (pointpillars, critical, 40 ms) needs
    the whole chip (its least density) but only the right half is free; three background jobs
    B (pointpillars, later deadlines, so behind A) are admitted and wait too. A may take the two
    free arrays only if the density test still holds with A's density on two arrays instead of
    four. With the B's deadlines tight enough, their densities leave too little room: A waits
    its turn for the whole chip instead."""
    wa = 40_000.0
    need_a, wide_a = density(P, 4, wa), density(P, 2, wa)
    # The B's make the admitted set fit with A on four arrays but not on two.
    per_b = (4 - (need_a + wide_a) / 2) / 3
    wb = math.ceil(4 * rem(P, 4) / per_b) if tight else 10**7
    assert wb > wa  # the B's come after A, earliest deadline first
    x = job("x#0", 0, 10**7, R)
    a = job("a#0", 0, int(wa), P, priority=9, critical=True)
    bs = [job(f"b{k}#0", 0, wb, P) for k in range(3)]

    def left_half(sim):
        tiles = rect_positions(sim, (2, 4))[0][1]
        p = BOOK.lts(R, len(tiles), 1.0)
        sim.start(sim.jobs["x#0"], tiles, p.latency_us, p.energy_pj, pieces=p.pieces)

    run = simulate(First(left_half), x, a, *bs).run()
    by = {j.id: j for j in run.jobs}
    return by, need_a, wide_a, 3 * density(P, 4, wb) + density(R, 4, 10**7)


def test_cdmsa_gangs_two_arrays_when_the_density_test_allows():
    by, _, wide_a, others = _half_busy(tight=False)
    assert rem(P, 2) <= 40_000 < rem(P, 1)  # two arrays are A's narrowest feasible gang
    assert wide_a + others <= 4
    kind, start, _, tiles = spans(by["a#0"])[0]
    assert (kind, start, tiles) == ("run", 0, 2 * ARRAY)
    assert not _tiles(by["x#0"]) & _tiles(by["a#0"])


def test_cdmsa_does_not_gang_two_arrays_when_the_density_test_refuses():
    by, need_a, wide_a, others = _half_busy(tight=True)
    assert need_a + others <= 4 < wide_a + others  # all admitted; no room to gang A narrow
    a = by["a#0"]
    assert a.started_us is not None and a.started_us > 0  # it waited for the whole chip
    assert len(a.intervals[0]["tiles"]) == HW.tiles
    assert a.finish_us is not None and a.finish_us <= a.job.deadline_us
    assert by["x#0"].preemptions == 0  # it could wait: nobody was preempted for it


# ---- CD-MSA: cooperative preemption and task fusion ---------------------------------------------


def test_cdmsa_cooperative_preemption_at_a_layer_boundary_with_restore_on_resume():
    """X (pointpillars) holds the whole chip; A (mobilenetv2, critical, 2 ms) arrives at 3 ms
    and cannot wait for X (11.8 ms alone). Their contexts do not fit on-chip together
    (X's live activations alone exceed half the SRAM), so A does not fuse: X stops at its next
    layer boundary (the work up to it is X's), writes its on-chip activations to DRAM, A runs on
    the freed arrays, and X resumes after A, reading them back (restore) before it continues."""
    t_a, w_a = 3000, 2000
    x = job("x#0", 0, 10**7, P)
    a = job("a#0", t_a, w_a, M, priority=9, critical=True)
    sim = simulate(CdMsa(), x, a)
    run = sim.run()
    by = {j.id: j for j in run.jobs}
    xs, as_ = by["x#0"], by["a#0"]
    p = BOOK.lts(P, HW.tiles, 1.0)
    c0 = run.decisions[0].charged_us
    # X alone at the whole bandwidth until A's release, then on through its drain to the next
    # layer boundary (the mean layer time), which is credited to it.
    done = (t_a - c0 + iso(P) / len(MODELS[P].layers)) / iso(P)
    state = p.state_bytes(done, BW)
    peak = max(BOOK.lts(M, HW.tiles).live_bytes)
    assert state + peak > HW.tiles * HW.tile.sram_bytes // 2 and state > 0  # no fusion
    assert t_a + iso(P) > t_a + w_a  # A cannot wait for X
    ck_end = math.ceil(t_a + drain(P, iso(P)) + move(state))
    kinds = [k for k, *_ in spans(xs)]
    assert kinds == ["run", "checkpoint", "restore", "run"]
    stop = math.ceil(t_a + iso(P) / len(MODELS[P].layers))  # on to its layer boundary
    assert spans(xs)[0][1:3] == (0, stop)
    assert spans(xs)[1][1:3] == (stop, ck_end)
    assert as_.started_us == ck_end and len(as_.intervals[0]["tiles"]) == HW.tiles
    assert as_.finish_us == math.ceil(ck_end + iso(M)) <= as_.job.deadline_us
    # X resumes when A is done: the decision's charge, then the restore of what it wrote.
    resume = as_.finish_us
    restore_iv = spans(xs)[2]
    assert restore_iv[1] == resume
    charged = next(d.charged_us for d in run.decisions if d.at_us == resume)
    assert restore_iv[2] == math.ceil(resume + charged + move(state) + RESTART)
    left = (1 - done) * iso(P)
    assert xs.finish_us == math.ceil(resume + charged + move(state) + RESTART + left)
    assert xs.preemptions == 1 and run.counters.get("fusions", 0) == 0


def test_cdmsa_fuses_a_short_job_into_a_running_one_when_both_contexts_fit():
    """Dynamic task fusion: X (resnet50) holds the whole chip; A (mobilenetv2, critical) cannot
    wait for it. X's live activations plus A's fit in half the SRAM, so A runs as a guest on
    X's arrays from X's next layer boundary, nothing is written to DRAM, and X continues on the
    same arrays when A is done — no checkpoint traffic, no restore."""
    t_a, w_a = 200, 400
    x = job("x#0", 0, 10**7, R)
    a = job("a#0", t_a, w_a, M, priority=9, critical=True)
    run = simulate(CdMsa(), x, a).run()
    by = {j.id: j for j in run.jobs}
    xs, as_ = by["x#0"], by["a#0"]
    p = BOOK.lts(R, HW.tiles, 1.0)
    c0 = run.decisions[0].charged_us
    done = (t_a - c0 + iso(R) / len(MODELS[R].layers)) / iso(R)  # on to its layer boundary
    peak = max(BOOK.lts(M, HW.tiles).live_bytes)
    assert p.state_bytes(done, BW) + peak <= HW.tiles * HW.tile.sram_bytes // 2
    assert run.counters["fusions"] == 1
    ck_end = math.ceil(t_a + drain(R, iso(R)))  # the drain only: nothing to write
    assert [k for k, *_ in spans(xs)] == ["run", "checkpoint", "run"]
    stop = math.ceil(t_a + iso(R) / len(MODELS[R].layers))  # on to its layer boundary
    assert spans(xs)[1][1:3] == (stop, ck_end)
    assert as_.started_us == ck_end and as_.finish_us == math.ceil(ck_end + iso(M))
    assert as_.finish_us <= as_.job.deadline_us
    home = {tuple(t) for t in xs.intervals[0]["tiles"]}
    assert {tuple(t) for t in as_.intervals[0]["tiles"]} == home
    assert {tuple(t) for t in xs.intervals[-1]["tiles"]} == home
    resume = as_.finish_us
    charged = next(d.charged_us for d in run.decisions if d.at_us == resume)
    assert spans(xs)[2][1] == resume
    assert xs.finish_us == math.ceil(resume + charged + (1 - done) * iso(R))


# ---- HASP: room for a periodic critical stream, never preempting ---------------------------------

BGS = ("bga#0", "bgb#0", "bgc#0")


def _stream_and_background(monkeypatch, admission: int, reserve: int):
    """A critical camera stream (mobilenetv2 every 5 ms, 1.5 ms deadline) and three background
    resnet50 jobs released together at 9.5 ms, half a millisecond before the camera's third
    frame. HASP has seen two frames by then, so it expects the third at 10 ms. Each background
    job alone would take the whole chip; behind each other they take the biggest boxes that
    leave the ones behind their minimum (2×2) boxes."""
    monkeypatch.setattr(hasp_module, "ADMISSION", admission)
    monkeypatch.setattr(hasp_module, "RESERVE", reserve)
    cams = [job(f"cam#{k}", 5000 * k, 1500, M, priority=9, critical=True) for k in range(3)]
    bgs = [job(b, 9500, 10**6, R) for b in BGS]
    jobs = sorted([*cams, *bgs], key=lambda j: (j.release_us, j.job))
    run = simulate(Hasp(), *jobs).run()
    return {j.id: j for j in run.jobs}


def _never_preempted(by):
    for j in by.values():
        assert j.preemptions == 0 and [iv["kind"] for iv in j.intervals] == ["run"]


def test_hasp_admits_the_critical_frame_onto_its_reserved_partition(monkeypatch):
    """Admission control with the reserved partition (``RESERVE = 1``): the camera's minimum
    box is a 2×2 partition, so the last aligned 2×2 box (x and y in 2..3) is kept from
    background jobs.
    At 9.5 ms the first background job takes the left half; the others wait although the
    top-right box is free (admission control: with a third DRAM-hungry job beside it, the frame
    expected at 10 ms would need a bigger box than is left). The frame starts at its release on
    the reserved box and meets its deadline; the background jobs start after it, never on the
    reserved tiles. Nobody is preempted."""
    by = _stream_and_background(monkeypatch, admission=1, reserve=1)
    cam = by["cam#2"]
    reserved = {(x, y) for x in (2, 3) for y in (2, 3)}
    assert cam.started_us == cam.job.release_us and _tiles(cam) == reserved
    assert cam.finish_us is not None and cam.finish_us <= cam.job.deadline_us
    first, *others = (by[b] for b in BGS)
    assert first.started_us == 9500 and len(_tiles(first)) == 8
    for j in others:
        assert j.started_us is not None and j.started_us >= cam.started_us
    for j in (first, *others):
        assert not _tiles(j) & reserved
    _never_preempted(by)
    assert all(j.finish_us is not None for j in by.values())


def test_hasp_admission_control_refuses_a_background_job_that_takes_the_critical_room(
    monkeypatch,
):
    """Admission control alone, as shipped (no reserved partition): the first background job
    takes the left half; the others are refused although 8 tiles are free, because beside them
    the frame expected at 10 ms would need a bigger box than would be free by its latest start.
    They wait; the frame starts at its release and meets its deadline. Nobody is preempted."""
    by = _stream_and_background(monkeypatch, admission=1, reserve=0)
    cam = by["cam#2"]
    assert cam.started_us == cam.job.release_us
    assert cam.finish_us is not None and cam.finish_us <= cam.job.deadline_us
    at_release = [by[b] for b in BGS if by[b].started_us == 9500]
    waited = [by[b] for b in BGS if by[b].started_us != 9500]
    assert at_release and waited
    assert sum(len(_tiles(j)) for j in at_release) < HW.tiles  # tiles were left free
    for j in at_release:
        assert not _tiles(cam) & _tiles(j)
    for j in waited:
        assert j.started_us is not None and j.started_us >= cam.started_us
    _never_preempted(by)


def test_hasp_without_admission_control_or_reserve_loses_the_frame(monkeypatch):
    """The paper's rule alone: the background jobs fill the chip at 9.5 ms, and the frame,
    which HASP never preempts for, finds no partition before its deadline."""
    by = _stream_and_background(monkeypatch, admission=0, reserve=0)
    assert all(by[b].started_us == 9500 for b in BGS)
    assert sum(len(_tiles(by[b])) for b in BGS) == HW.tiles
    cam = by["cam#2"]
    assert cam.finish_us is None or cam.finish_us > cam.job.deadline_us
    _never_preempted({k: v for k, v in by.items() if v.intervals})


@pytest.mark.parametrize("policy", [CdMsa, Hasp])
def test_a_lone_job_runs_uninterrupted(policy):
    run = simulate(policy(), job("a#0", 0, 50_000, M)).run()
    (js,) = run.jobs
    assert [iv["kind"] for iv in js.intervals] == ["run"] and js.finish_us is not None
