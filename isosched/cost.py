"""Analytic time and energy of DNN layers on k tiles, under TSS and LTS (DESIGN.md §3).

Every planner and every policy prices work through this module, so all of them share one cost
model. Times are in cycles of the chip clock, energies in picojoules, sizes in bytes.

A layer's time on ``k`` tiles is a roofline: the compute time on the MAC array (or the vector
unit) bounded below by the time its data needs to arrive, from DRAM or over the NoC.

* **LTS** (layer temporal scheduling): the layer reads its inputs and weights from DRAM and
  writes its output back; the DRAM bandwidth share is a parameter (spatial partitions and
  throttling policies give a job less than the whole chip's bandwidth).
* **TSS** (tile spatial scheduling): the layer is one stage of a pipeline whose weights were
  loaded once at segment start; inputs arrive from the producer stages over the NoC (one ingress
  link per tile), only the segment's inputs and outputs touch DRAM. A segment processes its input
  in ``B`` data tiles: ``latency = weight_load + fill + (B - 1) * II`` with ``II`` the slowest
  stage's time per data tile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from isosched.graph.model import Layer
from isosched.hw.model import Hardware

__all__ = [
    "EnergyPj",
    "JobCost",
    "LayerCost",
    "PipelineTiming",
    "compute_cycles",
    "lts_job_cost",
    "lts_layer_cost",
    "roofline_cycles",
    "mean_port_hops",
    "pipeline_timing",
    "sram_bytes_per_tile",
    "tss_layer_cost",
    "utilisation",
    "weight_load_cost",
]


@dataclass(frozen=True, slots=True)
class EnergyPj:
    """Energy by component, picojoules."""

    mac: float = 0.0
    vector: float = 0.0
    sram: float = 0.0
    noc: float = 0.0
    dram: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all components, pJ."""
        return self.mac + self.vector + self.sram + self.noc + self.dram

    def __add__(self, other: EnergyPj) -> EnergyPj:
        return EnergyPj(
            self.mac + other.mac,
            self.vector + other.vector,
            self.sram + other.sram,
            self.noc + other.noc,
            self.dram + other.dram,
        )

    def scaled(self, factor: float) -> EnergyPj:
        """Every component multiplied by ``factor``."""
        return EnergyPj(
            self.mac * factor,
            self.vector * factor,
            self.sram * factor,
            self.noc * factor,
            self.dram * factor,
        )


@dataclass(frozen=True, slots=True)
class LayerCost:
    """Time and energy of one layer (the whole tensor) on a number of tiles.

    Attributes
    ----------
    tiles : int
        Tiles the layer runs on.
    cycles : float
        Time, the maximum of the three bounds below.
    compute_cycles, dram_cycles, noc_cycles : float
        MAC-array/vector time, DRAM transfer time, NoC ingress time.
    dram_bytes, noc_bytes : int
        Bytes moved to or from DRAM and over the NoC.
    energy : EnergyPj
        Energy by component.
    """

    tiles: int
    cycles: float
    compute_cycles: float
    dram_cycles: float
    noc_cycles: float
    dram_bytes: int
    noc_bytes: int
    energy: EnergyPj

    @property
    def bound(self) -> str:
        """Which resource sets the time: ``compute``, ``dram`` or ``noc``."""
        best = max(self.compute_cycles, self.dram_cycles, self.noc_cycles)
        if best == self.compute_cycles:
            return "compute"
        return "dram" if best == self.dram_cycles else "noc"


@dataclass(frozen=True, slots=True)
class PipelineTiming:
    """Timing of one TSS segment.

    Attributes
    ----------
    ii_cycles : float
        Pipeline interval: the slowest stage's time per data tile.
    fill_cycles : float
        Time for the first data tile to traverse the critical path.
    weight_load_cycles : float
        Time to load the segment's weights from DRAM before it starts.
    latency_cycles : float
        ``weight_load + fill + (B - 1) * II``.
    """

    ii_cycles: float
    fill_cycles: float
    weight_load_cycles: float
    latency_cycles: float


def utilisation(layer: Layer, hw: Hardware) -> float:
    """Fraction of peak MAC throughput the layer reaches (from the hardware file)."""
    u = hw.utilisation
    if layer.op == "conv":
        groups = int(layer.params.get("groups", 1))
        return u.conv_depthwise if groups > 1 and groups == layer.output_shape[0] else u.conv
    table = {
        "conv_transpose": u.conv_transpose,
        "linear": u.linear,
        "matmul": u.matmul,
        "attention": u.attention,
    }
    return table.get(layer.op, u.generic)


def compute_cycles(layer: Layer, tiles: int, hw: Hardware) -> float:
    """Cycles of MAC-array and vector-unit work of ``layer`` spread over ``tiles`` tiles."""
    if tiles < 1:
        raise ValueError(f"tiles must be at least 1, got {tiles}")
    mac = layer.macs / (tiles * hw.tile.macs_per_cycle * utilisation(layer, hw))
    vec = layer.vector_ops / (tiles * hw.tile.vector_ops_per_cycle)
    return mac + vec


def mean_port_hops(hw: Hardware) -> float:
    """Mean XY hop count from a tile to its nearest DRAM port."""
    w, h = hw.mesh
    if hw.dram.ports == "west":
        return sum(x + 1 for x in range(w)) / w
    ew = sum(min(x + 1, w - x) for x in range(w)) / w
    if hw.dram.ports == "all_edges":
        ns = sum(min(y + 1, h - y) for y in range(h)) / h
        return min(ew, ns)
    return ew


def _base_energy(layer: Layer, hw: Hardware, sram_bytes: int) -> EnergyPj:
    e = hw.energy
    return EnergyPj(
        mac=layer.macs * e.mac_pj,
        vector=layer.vector_ops * e.vector_op_pj,
        sram=sram_bytes * 8 * e.sram_pj_per_bit,
    )


def lts_layer_cost(layer: Layer, tiles: int, hw: Hardware, dram_share: float = 1.0) -> LayerCost:
    """Cost of ``layer`` under layer temporal scheduling on ``tiles`` tiles.

    Parameters
    ----------
    layer : Layer
        The layer.
    tiles : int
        Tiles the layer is spread over.
    hw : Hardware
        The chip.
    dram_share : float
        Fraction of the chip's DRAM bandwidth this job gets, in (0, 1].

    Notes
    -----
    Inputs and weights are read from DRAM and the output written back; the data crosses the
    NoC between the DRAM ports and the tiles (energy only: port bandwidth is the DRAM bound).
    """
    if not 0 < dram_share <= 1:
        raise ValueError(f"dram_share must be in (0, 1], got {dram_share}")
    if layer.op == "input":  # names data already in DRAM: nothing to compute or move
        return LayerCost(tiles, 0.0, 0.0, 0.0, 0.0, 0, 0, EnergyPj())
    dram_bytes = layer.input_bytes + layer.weight_bytes + layer.output_bytes
    comp = compute_cycles(layer, tiles, hw)
    dram = dram_bytes / (hw.dram_bytes_per_cycle * dram_share)
    e = hw.energy
    # Every byte is written into and read out of tile SRAM once.
    energy = _base_energy(layer, hw, 2 * dram_bytes) + EnergyPj(
        noc=dram_bytes * 8 * mean_port_hops(hw) * e.noc_pj_per_bit_hop,
        dram=dram_bytes * 8 * e.dram_pj_per_bit,
    )
    return LayerCost(tiles, max(comp, dram), comp, dram, 0.0, dram_bytes, 0, energy)


def tss_layer_cost(
    layer: Layer,
    tiles: int,
    hw: Hardware,
    *,
    input_from_dram: bool = False,
    output_to_dram: bool = False,
    hops: float = 1.0,
    dram_share: float = 1.0,
    input_local: bool = False,
) -> LayerCost:
    """Cost of ``layer`` as one stage of a TSS pipeline on ``tiles`` tiles.

    Parameters
    ----------
    layer : Layer
        The layer.
    tiles : int
        Tiles of the stage.
    hw : Hardware
        The chip.
    input_from_dram, output_to_dram : bool
        Whether the layer reads the segment input from DRAM / writes the segment output to DRAM;
        otherwise its tensors stream over the NoC.
    hops : float
        Mean hop distance from the producers' tiles (from the placement; 1 = neighbours).
    dram_share : float
        Fraction of the chip's DRAM bandwidth available, in (0, 1].
    input_local : bool
        The inputs are already in the stage's own SRAM (a fused follower): no NoC transfer.

    Notes
    -----
    Weights are resident in SRAM (loaded by :func:`weight_load_cost`). NoC ingress bandwidth is
    one link per tile of the stage.
    """
    if not 0 < dram_share <= 1:
        raise ValueError(f"dram_share must be in (0, 1], got {dram_share}")
    if layer.op == "input":
        return LayerCost(tiles, 0.0, 0.0, 0.0, 0.0, 0, 0, EnergyPj())
    dram_bytes = (layer.input_bytes if input_from_dram else 0) + (
        layer.output_bytes if output_to_dram else 0
    )
    noc_bytes = 0 if input_from_dram or input_local else layer.input_bytes
    comp = compute_cycles(layer, tiles, hw)
    dram = dram_bytes / (hw.dram_bytes_per_cycle * dram_share)
    noc = noc_bytes / (tiles * hw.noc.link_bytes_per_cycle)
    e = hw.energy
    sram = layer.input_bytes + layer.output_bytes + layer.weight_bytes
    energy = _base_energy(layer, hw, sram) + EnergyPj(
        noc=(noc_bytes * hops + dram_bytes * mean_port_hops(hw)) * 8 * e.noc_pj_per_bit_hop,
        dram=dram_bytes * 8 * e.dram_pj_per_bit,
    )
    return LayerCost(tiles, max(comp, dram, noc), comp, dram, noc, dram_bytes, noc_bytes, energy)


def weight_load_cost(weight_bytes: int, hw: Hardware, dram_share: float = 1.0) -> LayerCost:
    """Time and energy to load ``weight_bytes`` of weights from DRAM into tile SRAM."""
    cycles = weight_bytes / (hw.dram_bytes_per_cycle * dram_share)
    e = hw.energy
    energy = EnergyPj(
        sram=weight_bytes * 8 * e.sram_pj_per_bit,
        noc=weight_bytes * 8 * mean_port_hops(hw) * e.noc_pj_per_bit_hop,
        dram=weight_bytes * 8 * e.dram_pj_per_bit,
    )
    return LayerCost(0, cycles, 0.0, cycles, 0.0, weight_bytes, 0, energy)


def pipeline_timing(
    stage_cycles: Sequence[float],
    data_tiles: int,
    weight_load_cycles: float = 0.0,
    critical_path_cycles: float | None = None,
) -> PipelineTiming:
    """Latency of a TSS segment from its stage times.

    Parameters
    ----------
    stage_cycles : sequence of float
        Time of each stage for the whole tensor (one :class:`LayerCost` ``cycles`` per stage).
    data_tiles : int
        Data tiles B the input is cut into.
    weight_load_cycles : float
        Weight loading before the first data tile.
    critical_path_cycles : float, optional
        Sum of stage times along the graph's critical path; defaults to the sum of all stages
        (a chain).

    Returns
    -------
    PipelineTiming
        ``II = max(stage) / B``, ``fill = critical_path / B``,
        ``latency = weight_load + fill + (B - 1) * II``.
    """
    if data_tiles < 1:
        raise ValueError(f"data_tiles must be at least 1, got {data_tiles}")
    if not stage_cycles:
        return PipelineTiming(0.0, 0.0, weight_load_cycles, weight_load_cycles)
    ii = max(stage_cycles) / data_tiles
    path = sum(stage_cycles) if critical_path_cycles is None else critical_path_cycles
    fill = path / data_tiles
    return PipelineTiming(
        ii, fill, weight_load_cycles, weight_load_cycles + fill + (data_tiles - 1) * ii
    )


def sram_bytes_per_tile(layer: Layer, tiles: int, data_tiles: int) -> float:
    """SRAM a tile of a TSS stage needs: its weight slice plus double-buffered data tiles.

    Returns
    -------
    float
        ``weight_bytes / k + 2 * (input_bytes + output_bytes) / (B * k)``, bytes.
    """
    k = max(tiles, 1)
    buffers = 2 * (layer.input_bytes + layer.output_bytes) / (data_tiles * k)
    return layer.weight_bytes / k + math.ceil(buffers)


@dataclass(frozen=True, slots=True)
class JobCost:
    """One inference of a model, as pieces that share DRAM bandwidth with other jobs.

    Attributes
    ----------
    pieces : tuple of (float, float)
        ``(cycles of everything but DRAM, DRAM bytes)`` per step (a layer under LTS), in order;
        at a bandwidth of ``bw`` bytes per cycle the step takes the larger of the two.
    energy_pj : float
        Energy of the inference, picojoules (independent of the bandwidth share).
    dram_bytes : int
        Bytes moved to or from DRAM.
    on_chip_bytes : int
        Activation bytes that stayed in SRAM instead of going through DRAM.
    live_bytes : tuple of int
        Per piece, the most activation bytes held in SRAM at a layer boundary inside it: what a
        preemption there must save.
    """

    pieces: tuple[tuple[float, float], ...]
    energy_pj: float
    dram_bytes: int
    on_chip_bytes: int
    live_bytes: tuple[int, ...] = ()


def roofline_cycles(pieces: Sequence[tuple[float, float]], bytes_per_cycle: float) -> float:
    """Time of ``pieces`` run one after another with ``bytes_per_cycle`` of DRAM bandwidth."""
    bw = max(bytes_per_cycle, 1e-12)
    return sum(max(c, b / bw) for c, b in pieces)


def lts_job_cost(layers: Sequence[Layer], tiles: int, hw: Hardware) -> JobCost:
    """One inference under LTS on ``tiles`` tiles (DESIGN §3, "one physics").

    Layers run one after another on all ``tiles``. Every layer reads its weights from DRAM. The
    model's inputs are read from DRAM and its outputs written there. An intermediate tensor
    stays in the tiles' SRAM when it fits there beside the tensors still live and the next
    layers' weights and outputs (a greedy liveness walk in layer order, SET's layer-sequential
    pattern); otherwise it is written to DRAM and read back by each consumer. A compute layer
    and the light layers after it (its epilogue) form one step whose MAC-array and vector work
    overlap, as in a TSS unit. Weights are prefetched ahead of the compute as far as half of the
    SRAM holds them (double buffering) and the activations held meanwhile leave room: the steps
    are cut into windows of consecutive steps whose weights fit both, and within a window DRAM
    traffic overlaps compute (one piece per window). So a window's weights and the activations
    kept during it never claim more than the SRAM, unless one step alone does (before 2026-12-02
    the window ignored them, and the two together claimed up to 1.5× it on some zoo models).
    With the hardware option ``dataflow.lts_activations_via_dram`` every intermediate goes through
    DRAM (the IsoSched paper's premise).

    Parameters
    ----------
    layers : sequence of Layer
        The model's layers in topological order (a :class:`~isosched.graph.model.Graph`).
    tiles : int
        Tiles the job runs on.
    hw : Hardware
        The chip.
    """
    if tiles < 1:
        raise ValueError(f"tiles must be at least 1, got {tiles}")
    sram = tiles * hw.tile.sram_bytes
    via_dram = hw.dataflow.lts_activations_via_dram
    by_id = {lay.id: lay for lay in layers}
    consumers: dict[str, list[str]] = {lay.id: [] for lay in layers}
    for lay in layers:
        for src in dict.fromkeys(lay.inputs):
            if src in consumers:
                consumers[src].append(lay.id)
    remaining = {lid: len(c) for lid, c in consumers.items()}
    on_chip: dict[str, int] = {}  # live tensors held in SRAM, bytes
    e = hw.energy
    port_hops = mean_port_hops(hw)
    steps: list[list[float]] = []  # per compute layer and its epilogue: mac, vector, w, io, live
    energy = 0.0
    total_dram = 0
    kept_bytes = 0
    for lay in layers:
        if lay.op == "input":
            continue  # its tensor is in DRAM: consumers read it from there
        in_dram = 0
        for src in dict.fromkeys(lay.inputs):
            if src not in by_id:
                continue
            if src not in on_chip:
                in_dram += by_id[src].output_bytes
        # Inputs that are not graph layers (constants folded into params) count as weights.
        out = lay.output_bytes
        live = sum(on_chip.values())
        keep = (
            not via_dram
            and bool(consumers[lay.id])
            and live + lay.weight_bytes + out + in_dram <= sram
        )
        out_dram = 0 if keep else out
        # An embedding gathers only the rows its tokens name, not the whole table.
        weights = min(lay.weight_bytes, out) if lay.op == "embedding" else lay.weight_bytes
        dram_bytes = weights + in_dram + out_dram
        comp = compute_cycles(lay, tiles, hw)
        if lay.is_compute or not steps:
            steps.append([0.0, 0.0, float(weights), float(in_dram + out_dram), 0.0, 0.0])
        step = steps[-1]
        if lay.is_compute:
            step[0] += comp
        else:  # an epilogue (activation, norm, add) runs beside the MAC array, as under TSS
            step[1] += comp
            step[2] += weights
            step[3] += in_dram + out_dram
        sram_traffic = lay.input_bytes + out + lay.weight_bytes
        energy += (
            lay.macs * e.mac_pj
            + lay.vector_ops * e.vector_op_pj
            + (sram_traffic + dram_bytes) * 8 * e.sram_pj_per_bit
            + dram_bytes * 8 * (port_hops * e.noc_pj_per_bit_hop + e.dram_pj_per_bit)
        )
        total_dram += dram_bytes
        # Free tensors whose last consumer this was; keep this output if it fits.
        for src in dict.fromkeys(lay.inputs):
            if src in remaining:
                remaining[src] -= 1
                if remaining[src] <= 0:
                    on_chip.pop(src, None)
        if keep:
            on_chip[lay.id] = out
            kept_bytes += out
        steps[-1][4] = max(steps[-1][4], float(sum(on_chip.values())))
        steps[-1][5] = max(steps[-1][5], float(live + (out if keep else 0)))
    # Weights are prefetched ahead of the compute as far as half of the SRAM holds them
    # (double buffering) and as far as the activations held meanwhile leave room: consecutive
    # steps whose weights fit that window overlap their DRAM traffic with their compute, one
    # piece per window.
    window = sram / 2
    windows: list[tuple[float, float]] = []  # (compute, DRAM bytes) per window
    live_per_window: list[int] = []
    c_acc = b_acc = w_acc = l_acc = p_acc = 0.0
    for mac, vec, w, io, lv, peak in steps:
        over = w_acc + w > window and w_acc > 0
        if over or ((c_acc or b_acc) and w_acc + w + max(p_acc, peak) > sram):
            windows.append((c_acc, b_acc))
            live_per_window.append(int(l_acc))
            c_acc = b_acc = w_acc = l_acc = p_acc = 0.0
        c_acc += max(mac, vec)
        b_acc += w + io
        w_acc += w
        l_acc = max(l_acc, lv)
        p_acc = max(p_acc, peak)
    if c_acc or b_acc:
        windows.append((c_acc, b_acc))
        live_per_window.append(int(l_acc))
    return JobCost(tuple(windows), energy, total_dram, kept_bytes, tuple(live_per_window))
