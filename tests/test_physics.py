"""One physics for every policy (issue 15): LTS activations on-chip, shared DRAM bandwidth."""

import math

import pytest

from isosched.cost import compute_cycles, lts_job_cost, roofline_cycles
from isosched.graph import parse_graph
from isosched.graph.model import Layer
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.plan import PlanCache
from isosched.sim import PlanBook, Simulator
from isosched.sim.policies import make_policy
from isosched.trace import Job, Trace
from isosched.zoo import zoo_names

HW = load_hardware("edge-4x4")  # 16 tiles of 1 MiB SRAM, 64 B/cycle of DRAM at 1 GHz


def chain(out_channels: int, hw_side: int) -> list[Layer]:
    """input -> conv a -> conv b: 1x1 convs on a ``out_channels × side × side`` int8 tensor."""
    g = parse_graph(
        {
            "name": "chain",
            "layers": [
                {"id": "x", "op": "input", "shape": [out_channels, hw_side, hw_side]},
                {
                    "id": "a",
                    "op": "conv",
                    "inputs": ["x"],
                    "out_channels": out_channels,
                    "kernel": 1,
                },
                {
                    "id": "b",
                    "op": "conv",
                    "inputs": ["a"],
                    "out_channels": out_channels,
                    "kernel": 1,
                },
            ],
        }
    )
    return list(g)


def test_an_output_that_fits_stays_on_chip_and_one_that_does_not_goes_through_dram():
    small = chain(64, 32)  # a's output: 64 KiB, fits 16 MiB of SRAM
    c = lts_job_cost(small, 16, HW)
    x, a, b = small
    assert c.on_chip_bytes == a.output_bytes
    # DRAM: the input, both layers' weights, b's output (the model output); not a's output.
    assert c.dram_bytes == x.output_bytes + a.weight_bytes + b.weight_bytes + b.output_bytes
    big = chain(64, 600)  # a's output: 64*600*600 B = 23 MB > 16 MiB
    c2 = lts_job_cost(big, 16, HW)
    x, a, b = big
    assert c2.on_chip_bytes == 0
    # a's output written to DRAM and read back by b.
    want = x.output_bytes + a.weight_bytes + b.weight_bytes + 2 * a.output_bytes + b.output_bytes
    assert c2.dram_bytes == want


def test_paper_premise_option_sends_every_intermediate_through_dram():
    via = HW.model_copy(
        update={"dataflow": HW.dataflow.model_copy(update={"lts_activations_via_dram": True})}
    )
    layers = chain(64, 32)
    a = layers[1]
    c = lts_job_cost(layers, 16, via)
    assert c.on_chip_bytes == 0
    assert c.dram_bytes == lts_job_cost(layers, 16, HW).dram_bytes + 2 * a.output_bytes


def test_prefetched_weights_and_kept_activations_never_claim_more_than_the_sram():
    """input -> a -> b -> c -> d, 1x1 convs of 384 channels on 30x30 on one tile (1 MiB): each
    layer has 144 KiB of weights and a 338 KiB output, kept on-chip. Three steps' weights fit the
    half-SRAM prefetch window, but beside b's input and output (675 KiB) they would claim 1.08 MiB:
    the window closes after b, and c and d form the next one."""
    g = parse_graph(
        {
            "name": "chain4",
            "layers": [{"id": "x", "op": "input", "shape": [384, 30, 30]}]
            + [
                {"id": n, "op": "conv", "inputs": [p], "out_channels": 384, "kernel": 1}
                for p, n in zip("xabc", "abcd", strict=True)
            ],
        }
    )
    layers = list(g)
    sram = HW.tile.sram_bytes
    x, a, b, c, d = layers
    assert 3 * a.weight_bytes <= sram / 2 < 4 * a.weight_bytes
    assert 3 * a.weight_bytes + a.output_bytes + b.output_bytes > sram
    cost = lts_job_cost(layers, 1, HW)
    assert cost.on_chip_bytes == a.output_bytes + b.output_bytes + c.output_bytes
    comp = [compute_cycles(lay, 1, HW) for lay in (a, b, c, d)]
    assert [p[0] for p in cost.pieces] == [comp[0] + comp[1], comp[2] + comp[3]]
    assert cost.pieces[0][1] == x.output_bytes + a.weight_bytes + b.weight_bytes


BOOK = PlanBook(HW, load_models(["resnet50", "mobilenetv2"]), PlanCache(disk=False))


class TwoAtOnce:
    """Start every released job on its own half of the chip (a scripted LTS policy)."""

    name = "two"

    def schedule(self, sim):
        for js in sorted(sim.ready(), key=lambda j: j.id):
            half = [t for t in range(16) if (t < 8) == (js.id == "a#0")]
            p = sim.plans.lts(js.job.model, 8, 1.0)
            sim.start(js, half, p.latency_us, p.energy_pj, pieces=p.pieces)


def job(name, release, model):
    return Job(name, name.split("#")[0], model, release, release + 10**7, 1, False, None)


def test_a_lone_job_gets_all_the_bandwidth_and_two_share_it_by_demand():
    trace = Trace({"schema": "isosched.trace/v1", "seed": 0}, (job("a#0", 0, "resnet50"),))
    run = Simulator(trace, HW, TwoAtOnce(), BOOK).run()
    (a,) = run.jobs
    p = BOOK.lts("resnet50", 8, 1.0)
    assert a.dram_share == 1.0
    assert a.finish_us == math.ceil(p.latency_us)
    # Two jobs released together: shares proportional to their demands, summing to one.
    trace2 = Trace(
        {"schema": "isosched.trace/v1", "seed": 0},
        (job("a#0", 0, "resnet50"), job("b#0", 0, "resnet50")),
    )
    sim = Simulator(trace2, HW, TwoAtOnce(), BOOK)
    run2 = sim.run()
    a2, b2 = run2.jobs
    assert a2.finish_us == b2.finish_us  # same model, same demand: half each
    bw = HW.dram_bytes_per_cycle
    half = HW.cycles_to_us(roofline_cycles(p.pieces, bw / 2))
    assert a2.finish_us == math.ceil(half)
    assert half > p.latency_us  # sharing slows a memory-bound job


@pytest.mark.parametrize("model", ["resnet50", "mobilenetv2"])
def test_plans_read_the_model_input_from_dram(model):
    plan = BOOK.job_plan(model, (4, 4))
    g = BOOK.graph(model)
    inputs = sum(lay.output_bytes for lay in g if lay.op == "input")
    assert plan.segments[0].io_bytes >= inputs > 0


# ---- the "done when" of issue 15: a lone job under every LTS policy near its simple bound ------

HW8 = load_hardware("edge-8x8")  # 64 MiB of SRAM


def _fits_on_chip(name: str) -> bool:
    """Whether every layer's inputs and output fit in the chip's SRAM at once."""
    g = load_models([name])[name]
    by_id = {lay.id: lay for lay in g}
    live = max(sum(by_id[i].output_bytes for i in lay.inputs) + lay.output_bytes for lay in g)
    return live <= HW8.tiles * HW8.tile.sram_bytes


# The bound below holds where activations need not spill to DRAM: every zoo model but the
# six-camera BEVFormer-tiny (105 MiB live at its stem), whose spills are compulsory.
SPILLS = {"bevformer_tiny"}
ZOO = [n for n in zoo_names() if n not in SPILLS]
MODELS8 = load_models(ZOO)
BOOK8 = PlanBook(HW8, MODELS8, PlanCache(disk=False))


def simple_bound_us(model: str) -> float:
    """max(compute of its layers on the whole chip, (weights + input + output) / DRAM BW), µs."""
    g = MODELS8[model]
    layers = list(g)
    compute = sum(compute_cycles(lay, HW8.tiles, HW8) for lay in layers if lay.op != "input")
    consumers = g.consumers()
    io = g.weight_bytes
    io += sum(lay.output_bytes for lay in layers if lay.op == "input" or not consumers[lay.id])
    return HW8.cycles_to_us(max(compute, io / HW8.dram_bytes_per_cycle))


@pytest.mark.parametrize("policy", ["fcfs", "prema", "planaria", "moca", "cdmsa"])
def test_a_lone_job_of_every_zoo_model_runs_within_1_25x_of_its_bound(policy):
    """Alone on the chip, every LTS policy gives a job the whole chip and all of the DRAM
    bandwidth, so its run (from its start, after the charged decision) is within 1.25× of
    max(compute on the whole chip, compulsory DRAM traffic / bandwidth). Embedding gathers read
    rows, not whole tables, so BERT and GPT-2 run below the (whole-table) bound."""
    assert not any(_fits_on_chip(n) for n in SPILLS) and _fits_on_chip("yolov3")
    for model in ZOO:
        lone = Job("a#0", "a", model, 0, 10**10, 1, False, None)
        trace = Trace({"schema": "isosched.trace/v1", "seed": 0}, (lone,))
        (js,) = Simulator(trace, HW8, make_policy(policy), BOOK8).run().jobs
        (interval,) = js.intervals
        assert len(interval["tiles"]) == HW8.tiles and js.preemptions == 0
        assert js.finish_us is not None
        run_us = js.finish_us - interval["start_us"]
        assert run_us <= 1.25 * simple_bound_us(model) + 1, model  # + 1: whole-µs events


# ---- DRAM sharing as progress rates (issue 16's engine) ------------------------------------------


class Scripted:
    """Start every released job at once on its own tile, with given pieces and DRAM weights."""

    name = "scripted"

    def __init__(self, pieces: dict[str, tuple[tuple[float, float], ...]], weights=None):
        self.pieces = pieces
        self.weights = weights or {}

    def schedule(self, sim):
        for js in sorted(sim.ready(), key=lambda j: j.id):
            free = [t for t in range(HW.tiles) if sim.occupancy.owner[t] is None]
            sim.start(js, free[:1], 1.0, 0.0, pieces=self.pieces[js.id])
            sim.set_dram_weight(js, self.weights.get(js.id, 1.0))


def _finishes(pieces, weights=None):
    jobs = tuple(job(name, 0, "mobilenetv2") for name in sorted(pieces))
    trace = Trace({"schema": "isosched.trace/v1", "seed": 0}, jobs)
    hw = HW.model_copy(
        update={"scheduler": HW.scheduler.model_copy(update={"decision_ns": 0, "lookup_ns": 0})}
    )
    run = Simulator(trace, hw, Scripted(pieces, weights), BOOK).run()
    return {j.id: j.finish_us for j in run.jobs}


CYC = HW.clock_ghz * 1e3  # cycles per µs
BW = HW.dram_bytes_per_cycle  # bytes per cycle


def test_two_memory_bound_jobs_of_equal_weight_move_at_half_speed():
    """Alone each would take 1000 µs; together each gets half of the bandwidth: 2000 µs."""
    t = 1000 * CYC
    got = _finishes({"a#0": ((0.0, BW * t),), "b#0": ((0.0, BW * t),)})
    assert got == {"a#0": 2000, "b#0": 2000}


def test_weights_split_the_bandwidth_and_the_survivor_speeds_up():
    """Weights 3 and 1: rates 3/4 and 1/4. a ends at 1333.3 µs, when b has done a third of its
    work; b then runs alone and ends at 1333.3 + 666.7 = 2000 µs."""
    t = 1000 * CYC
    got = _finishes({"a#0": ((0.0, BW * t),), "b#0": ((0.0, BW * t),)}, {"a#0": 3.0})
    assert got["a#0"] == math.ceil(4000 / 3)
    assert got["b#0"] == pytest.approx(2000, abs=1)


def test_a_piece_without_dram_traffic_runs_at_full_speed_beside_a_memory_bound_one():
    t = 1000 * CYC
    got = _finishes({"a#0": ((t, 0.0),), "b#0": ((0.0, BW * t),)})
    assert got == {"a#0": 1000, "b#0": 1000}


def test_a_compute_bound_piece_slows_by_the_total_demand():
    """a: 1000 µs of compute moving half as many bytes as the bandwidth allows (demand 1/2);
    b: 500 µs of DRAM traffic (demand 1). D = 3/2, both at rate 2/3: b ends at 750 µs, when a
    has done 500 µs of its 1000; alone again, a ends at 1250 µs."""
    got = _finishes({"a#0": ((1000 * CYC, BW * 500 * CYC),), "b#0": ((0.0, BW * 500 * CYC),)})
    assert got["b#0"] == 750
    assert got["a#0"] == pytest.approx(1250, abs=1)


def test_many_pieces_on_the_shared_clock_match_the_piecewise_sum():
    """Alternating weight loads and pipelines (a TSS job's shape), two jobs offset by one piece:
    the shared clock's answer equals a step-by-step integration of the rates."""
    a = tuple((0.0, BW * 100 * CYC) if i % 2 == 0 else (300 * CYC, BW * 30 * CYC) for i in range(8))
    b = tuple((300 * CYC, BW * 30 * CYC) if i % 2 == 0 else (0.0, BW * 100 * CYC) for i in range(8))
    got = _finishes({"a#0": a, "b#0": b})
    want = _integrate({"a#0": a, "b#0": b})
    for k in got:
        assert got[k] == pytest.approx(want[k], abs=8)  # at most 1 µs of rounding per piece


def _integrate(pieces, dt=0.01):
    """Reference: advance every job by dt µs at rate min(1, 1/D) (1 without DRAM traffic)."""
    state = {k: [0, 0.0] for k in pieces}  # piece index, µs done in it (full bandwidth)
    done: dict[str, float] = {}
    now = 0.0
    while len(done) < len(pieces):
        dem = {}
        for k, (i, _) in state.items():
            if k in done:
                continue
            c, b = pieces[k][i]
            full = max(c, b / BW)
            dem[k] = (b / BW) / full if full > 0 else 0.0
        total = sum(dem.values())
        now += dt
        for k, d in dem.items():
            rate = 1.0 if d <= 0 else min(1.0, 1.0 / total)
            i, x = state[k]
            c, b = pieces[k][i]
            x += dt * rate
            if x >= max(c, b / BW) / CYC:
                i, x = i + 1, 0.0
                if i == len(pieces[k]):
                    done[k] = now
                    continue
            state[k] = [i, x]
    return done
