"""Cost model checked against numbers worked out by hand on edge-8x8.

edge-8x8: 1,024 MAC/cycle per tile, conv utilisation 0.85, 64 vector ops/cycle, DRAM 64 B/cycle,
NoC link 32 B/cycle, MAC 0.2 pJ, SRAM 0.13 pJ/bit, NoC 0.7 pJ/bit/hop, DRAM 7.5 pJ/bit.
"""

import pytest

from isosched.cost import (
    compute_cycles,
    lts_layer_cost,
    mean_port_hops,
    pipeline_timing,
    sram_bytes_per_tile,
    tss_layer_cost,
    weight_load_cost,
)
from isosched.graph import parse_graph
from isosched.io.hardware_json import load_hardware

HW = load_hardware("edge-8x8")


def _layers():
    g = parse_graph(
        {
            "name": "hand",
            "layers": [
                {"id": "x", "op": "input", "shape": [64, 8, 8]},
                # 1x1 conv: 64*8*8*64 = 262,144 MACs; 4,096 B weights, in and out.
                {"id": "c", "op": "conv", "inputs": ["x"], "out_channels": 64, "kernel": 1},
                # depthwise 3x3: 64*8*8*9 = 36,864 MACs.
                {
                    "id": "dw",
                    "op": "conv",
                    "inputs": ["c"],
                    "out_channels": 64,
                    "kernel": 3,
                    "padding": 1,
                    "groups": 64,
                },
                {"id": "r", "op": "activation", "inputs": ["dw"], "kind": "relu"},
            ],
        }
    )
    return g["c"], g["dw"], g["r"]


def test_layer_sizes():
    c, dw, _ = _layers()
    assert (c.macs, c.weight_bytes, c.input_bytes, c.output_bytes) == (262144, 4096, 4096, 4096)
    assert dw.macs == 36864


def test_compute_cycles_by_hand():
    c, dw, r = _layers()
    assert compute_cycles(c, 4, HW) == pytest.approx(262144 / (4 * 1024 * 0.85))
    # Depthwise convs reach only 25 % of the array.
    assert compute_cycles(dw, 1, HW) == pytest.approx(36864 / (1024 * 0.25))
    # ReLU: 4,096 element ops on the 64-wide vector unit of 2 tiles.
    assert compute_cycles(r, 2, HW) == pytest.approx(4096 / (2 * 64))


def test_mean_port_hops_west_east():
    # Columns 0..7 are 1,2,3,4,4,3,2,1 hops from the nearest west/east port.
    assert mean_port_hops(HW) == pytest.approx(2.5)


def test_lts_is_dram_bound_by_hand():
    c, _, _ = _layers()
    cost = lts_layer_cost(c, 4, HW)
    assert cost.dram_bytes == 12288
    assert cost.dram_cycles == pytest.approx(12288 / 64)
    assert cost.cycles == pytest.approx(192.0)
    assert cost.bound == "dram"
    assert cost.energy.mac == pytest.approx(262144 * 0.2)
    assert cost.energy.sram == pytest.approx(2 * 12288 * 8 * 0.13)
    assert cost.energy.dram == pytest.approx(12288 * 8 * 7.5)
    assert cost.energy.noc == pytest.approx(12288 * 8 * 2.5 * 0.7)


def test_lts_bandwidth_share_slows_dram():
    c, _, _ = _layers()
    assert lts_layer_cost(c, 4, HW, dram_share=0.5).cycles == pytest.approx(384.0)
    with pytest.raises(ValueError, match="dram_share"):
        lts_layer_cost(c, 4, HW, dram_share=0.0)


def test_tss_stage_streams_over_noc_by_hand():
    c, _, _ = _layers()
    cost = tss_layer_cost(c, 4, HW, hops=2.0)
    assert cost.dram_bytes == 0
    assert cost.noc_cycles == pytest.approx(4096 / (4 * 32))
    assert cost.cycles == pytest.approx(262144 / (4 * 1024 * 0.85))
    assert cost.bound == "compute"
    assert cost.energy.noc == pytest.approx(4096 * 2.0 * 8 * 0.7)
    assert cost.energy.dram == 0
    # TSS avoids the DRAM round trip LTS pays for the same layer.
    assert cost.energy.total < lts_layer_cost(c, 4, HW).energy.total


def test_tss_segment_boundary_touches_dram():
    c, _, _ = _layers()
    cost = tss_layer_cost(c, 1, HW, input_from_dram=True, output_to_dram=True)
    assert cost.dram_bytes == 8192
    assert cost.noc_bytes == 0
    assert cost.energy.dram == pytest.approx(8192 * 8 * 7.5)


def test_pipeline_timing_by_hand():
    t = pipeline_timing([100.0, 200.0, 50.0], data_tiles=4, weight_load_cycles=10.0)
    assert t.ii_cycles == pytest.approx(50.0)
    assert t.fill_cycles == pytest.approx(87.5)
    assert t.latency_cycles == pytest.approx(10 + 87.5 + 3 * 50)
    # One data tile: latency is the plain sum of stages.
    assert pipeline_timing([100.0, 200.0], 1).latency_cycles == pytest.approx(300.0)


def test_weight_load_and_sram():
    assert weight_load_cost(6400, HW).cycles == pytest.approx(100.0)
    c, _, _ = _layers()
    # 4,096 B weights over 2 tiles plus double-buffered (4,096 + 4,096) / (16 * 2).
    assert sram_bytes_per_tile(c, 2, 16) == pytest.approx(2048 + 512)


def test_more_tiles_never_slower():
    c, _, _ = _layers()
    times = [tss_layer_cost(c, k, HW).cycles for k in (1, 2, 4, 8, 16)]
    assert times == sorted(times, reverse=True)


def test_input_layers_are_free():
    g = parse_graph({"name": "i", "layers": [{"id": "x", "op": "input", "shape": [3, 8, 8]}]})
    for cost in (lts_layer_cost(g["x"], 4, HW), tss_layer_cost(g["x"], 4, HW)):
        assert cost.cycles == 0 and cost.energy.total == 0
