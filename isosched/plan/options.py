"""Allocation options of a unit: how many tiles, how split, and the stage time each gives.

Options (one is chosen per unit by the ILP):

* ``share`` — a quarter or half of one tile: the unit is concatenated with other light units on
  a tile (LCS concatenation). It must run in that fraction of the interval: its time on one
  tile times 4 (or 2) is its stage time.
* ``rows`` on k tiles — split by output rows or tokens: each tile holds all the unit's weights
  and a k-th of its data; inputs arrive over k ingress links.
* ``channels`` on k tiles — split by output channels (matmul N, heads): each tile holds a k-th of
  the weights; the input is forwarded along the k tiles (one link), outputs gathered along them.
* ``stream`` on k tiles — the weights do not fit the segment's SRAM and stream from DRAM as the
  unit runs (only offered when nothing else fits).

SRAM per tile is checked for every option (weights plus double-buffered data tiles).
"""

from __future__ import annotations

from dataclasses import dataclass

from isosched.cost import EnergyPj, tss_layer_cost
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.plan.units import Unit

__all__ = [
    "Option",
    "UnitIO",
    "single_tile_options",
    "tile_counts",
    "unit_io",
    "unit_options",
]


@dataclass(frozen=True, slots=True)
class Option:
    """One allocation of a unit.

    Attributes
    ----------
    mode : str
        ``share``, ``rows``, ``channels`` or ``stream``.
    quarters : int
        Tile quarters used (1 or 2 for shares, 4·k otherwise).
    cycles : int
        Stage time of the unit for the whole tensor on this allocation, cycles.
    sram_bytes : int
        SRAM needed per tile (for shares: per quarter-tile share scaled), bytes.
    energy : EnergyPj
        Energy without the NoC hops between stages (added after placement).
    """

    mode: str
    quarters: int
    cycles: int
    sram_bytes: int
    energy: EnergyPj

    @property
    def tiles(self) -> int:
        """Whole tiles of a split (1 for shares)."""
        return max(1, self.quarters // 4)


@dataclass(frozen=True, slots=True)
class UnitIO:
    """Bytes entering and leaving a unit, and where from/to."""

    input_bytes: int
    output_bytes: int
    input_from_dram: bool
    output_to_dram: bool


def tile_counts(max_tiles: int) -> list[int]:
    """Candidate tile counts: 1..8, then 2^i and 3·2^i up to ``max_tiles``."""
    ks = set(range(1, 9))
    p = 8
    while p <= max_tiles:
        ks.update((p, 3 * p // 2))
        p *= 2
    return sorted(k for k in ks if k <= max_tiles)


def unit_io(graph: Graph, unit: Unit, inside: set[str]) -> UnitIO:
    """Bytes a unit reads from outside itself and writes for consumers outside itself.

    ``inside`` holds the layer ids of the unit's segment: data crossing the segment boundary
    goes through DRAM.
    """
    mine = set(unit.layers)
    consumers = graph.consumers()
    in_bytes, out_bytes = 0, 0
    from_dram, to_dram = False, False
    for lid in unit.layers:
        lay = graph[lid]
        for src in dict.fromkeys(lay.inputs):
            if src not in mine:
                in_bytes += graph[src].output_bytes
                from_dram |= src not in inside
        if not lay.inputs and lay.op == "input":
            from_dram = True
        outside = [c for c in consumers[lid] if c not in mine]
        if outside or not consumers[lid]:
            out_bytes += lay.output_bytes
            to_dram |= not consumers[lid] or any(c not in inside for c in outside)
    return UnitIO(in_bytes, out_bytes, from_dram, to_dram)


def _unit_time(
    graph: Graph, unit: Unit, hw: Hardware, k: int, io: UnitIO, channels: bool
) -> tuple[float, EnergyPj]:
    """Stage time and energy of a unit on ``k`` tiles.

    The MAC array, the vector unit, NoC ingress and DRAM work as four pipelined resources (the
    fused epilogue runs beside the MAC array), so the stage takes as long as the busiest.
    """
    mine = set(unit.layers)
    mac = vec = noc = dram = 0.0
    energy = EnergyPj()
    for lid in unit.layers:
        lay = graph[lid]
        # The model's input is in DRAM: the layers reading it load it from there (DESIGN §3).
        model_input = any(graph[i].op == "input" for i in lay.inputs)
        local = bool(lay.inputs) and all(i in mine for i in lay.inputs) and not model_input
        external_from_dram = (io.input_from_dram and not local) or model_input
        c = tss_layer_cost(
            lay,
            k,
            hw,
            input_from_dram=external_from_dram and lay.op != "input",
            output_to_dram=io.output_to_dram and lid == unit.layers[-1],
            hops=0.0,
            input_local=local,
        )
        if lay.is_compute:
            mac += c.compute_cycles
        else:
            vec += c.compute_cycles
        if channels:
            # Every tile of a channel split sees the whole input, forwarded over one link.
            noc += c.noc_bytes / hw.noc.link_bytes_per_cycle
        else:
            noc += c.noc_cycles
        dram += c.dram_cycles
        energy = energy + c.energy
    return max(mac, vec, noc, dram), energy


def unit_options(
    graph: Graph, unit: Unit, hw: Hardware, io: UnitIO, max_tiles: int | None = None
) -> list[Option]:
    """Every non-dominated allocation option of ``unit`` (fewer quarters first)."""
    b = hw.dataflow.data_tiles
    sram = hw.tile.sram_bytes
    data = 2 * (io.input_bytes + io.output_bytes) / b
    w = unit.weight_bytes
    opts: list[Option] = []
    one, e_one = _unit_time(graph, unit, hw, 1, io, channels=False)
    for m, q in ((4, 1), (2, 2)):
        need = w + data
        if need * m <= sram:
            opts.append(Option("share", q, int(one * m) + 1, int(need), e_one))
    limit = max_tiles if max_tiles is not None else hw.tiles
    for k in tile_counts(limit):
        rows_need = w + data / k
        if rows_need <= sram:
            t, e = _unit_time(graph, unit, hw, k, io, channels=False)
            opts.append(Option("rows", 4 * k, int(t) + 1, int(rows_need), e))
            continue
        ch_need = w / k + 2 * io.input_bytes / b + 2 * io.output_bytes / (b * k)
        if ch_need <= sram:
            t, e = _unit_time(graph, unit, hw, k, io, channels=True)
            opts.append(Option("channels", 4 * k, int(t) + 1, int(ch_need), e))
    if not opts:
        # Weights larger than the tiles can hold: stream them from DRAM as the unit runs.
        for k in tile_counts(limit):
            t, e = _unit_time(graph, unit, hw, k, io, channels=True)
            stream = w / hw.dram_bytes_per_cycle
            e = e + EnergyPj(dram=w * 8 * hw.energy.dram_pj_per_bit)
            opts.append(Option("stream", 4 * k, int(max(t, stream)) + 1, int(data / k), e))
    # Drop dominated options: more quarters and not faster.
    opts.sort(key=lambda o: (o.quarters, o.cycles))
    kept: list[Option] = []
    for o in opts:
        if not kept or o.cycles < kept[-1].cycles:
            kept.append(o)
    return kept


def single_tile_options(graph: Graph, unit: Unit, hw: Hardware, io: UnitIO) -> list[Option]:
    """The one option of ``unit`` without Layer Concatenate and Split: one whole tile.

    No split over several tiles and no share of a tile: the unit's ``rows`` option on one tile,
    or, when its weights and data do not fit one tile's SRAM, its weights streamed from DRAM
    on one tile (the "no LCS" ablation).
    """
    # On one tile, ``rows`` and ``channels`` need the same SRAM; when neither fits (nor then a
    # share), unit_options streams the weights.
    one = [o for o in unit_options(graph, unit, hw, io, max_tiles=1) if o.mode != "share"]
    assert len(one) == 1 and one[0].quarters == 4, one
    return one
