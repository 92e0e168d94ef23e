"""What the simulator needs of a TSS plan: the job's tile pattern and its timing as placed.

A :class:`~isosched.plan.Plan` made for a box of ``w × h`` tiles has one tile graph per segment,
each placed in the box. The segments run one after another on the same tiles, so the job holds
the *footprint*: every box tile some segment uses. The footprint's pattern graph has one vertex
per footprint tile and an edge wherever some segment's edge runs between two of them (bytes
summed). Any embedding of that pattern into the chip within the plan's hop bound embeds every
segment (compose the segment's placement with it): this is what the placer matches at run time,
and what a preempted job matches again to resume on other tiles with the same plan.

Timing depends on the placement (DESIGN §3): each segment's fill grows by the hop latency
(``hop_cycles`` per hop) along its longest chain of tile-graph edges, and its interval is at least
the busiest mesh link's time per data tile, with every edge routed XY. Library placements are
images of the plan's own placement under translations and symmetries of the square, which keep
hop counts and link loads, so they all have the plan's own placed timing.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from isosched.cost import roofline_cycles
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.plan.planner import Plan
from isosched.tilegraph import TileGraph, TileVertex

__all__ = ["JobPlan", "PlacedTiming", "SegmentTiming", "job_plan"]

Coord = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SegmentTiming:
    """One segment, in terms of the footprint pattern's vertices.

    Attributes
    ----------
    edges : tuple of (int, int, int)
        ``(pattern src, pattern dst, bytes per inference)`` of the segment's tile-graph edges.
    order : tuple of int
        Edge indices in an order where an edge comes after every edge into its source.
    weight_load_cycles, fill_cycles, ii_cycles : float
        The plan's timing with zero hops, cycles.
    data_tiles : int
        Data tiles B of the pipeline.
    energy_pj : float
        Energy of one pass without the on-chip transfers between tiles, pJ.
    weight_bytes : int
        Weights the segment loads into its tiles, bytes.
    state_bytes : int
        Live state in flight in its pipeline (double-buffered data tiles on every edge), bytes.
    layers : int
        Layers of the model finished when the segment ends (a prefix count).
    io_bytes : int
        Bytes the pipeline moves to or from DRAM while it runs: the segment's inputs and
        outputs, and its weights when they stream.
    """

    edges: tuple[tuple[int, int, int], ...]
    order: tuple[int, ...]
    weight_load_cycles: float
    fill_cycles: float
    ii_cycles: float
    data_tiles: int
    energy_pj: float
    weight_bytes: int
    state_bytes: int
    layers: int
    io_bytes: int = 0


@dataclass(frozen=True, slots=True)
class PlacedTiming:
    """Timing of a job on one placement.

    Attributes
    ----------
    latency_us : float
        One inference with all of the DRAM bandwidth, microseconds: the pieces' roofline
        (``Σ max(cycles, bytes / bandwidth)``), the timeline the simulator moves jobs along.
    energy_pj : float
        One inference, picojoules.
    bounds : tuple of float
        Cumulative fraction of the inference at the end of each segment (last is 1.0), on that
        same timeline: ``1 - remaining`` of a job at a segment's last piece end.
    pieces : tuple of (float, float)
        ``(cycles, DRAM bytes)`` steps (per segment: its weight load, then its pipeline) that
        re-time the job for the DRAM share it gets; ``latency_us`` is the time with all of it.
    piece_segments : tuple of int
        The segment each piece belongs to (a weight load belongs to the segment it loads).
    """

    latency_us: float
    energy_pj: float
    bounds: tuple[float, ...]
    pieces: tuple[tuple[float, float], ...] = ()
    piece_segments: tuple[int, ...] = ()

    def segment_at(self, done: float) -> int:
        """Index of the segment running when ``done`` of the inference is complete."""
        i = bisect.bisect_right(self.bounds, done + 1e-12)
        return min(i, len(self.bounds) - 1)

    def segment_of_piece(self, piece: int) -> int:
        """Index of the segment of piece ``piece`` (the last segment past the end)."""
        if len(self.piece_segments) != len(self.pieces) or not self.pieces:
            raise ValueError("this timing does not say which segment each piece belongs to")
        return self.piece_segments[min(max(piece, 0), len(self.piece_segments) - 1)]

    def segment_start(self, index: int) -> float:
        """Fraction of the inference complete when segment ``index`` starts."""
        return 0.0 if index == 0 else self.bounds[index - 1]


@dataclass(frozen=True)
class JobPlan:
    """A model planned for a tile budget, ready to be placed and timed.

    Attributes
    ----------
    model : str
        Model name.
    budget : int
        Tiles of the box the plan was made for.
    box : (int, int)
        Its shape.
    pattern : TileGraph
        The footprint pattern (one vertex per tile the job holds).
    base : tuple of (int, int)
        The plan's own placement of each pattern vertex, box coordinates.
    hops : int
        Hop bound every segment's placement satisfies.
    segments : tuple of SegmentTiming
        Per segment, in execution order.
    base_timing : PlacedTiming
        Timing on ``base`` (and on every library image of it).
    """

    model: str
    budget: int
    box: tuple[int, int]
    pattern: TileGraph
    base: tuple[Coord, ...]
    hops: int
    segments: tuple[SegmentTiming, ...]
    base_timing: PlacedTiming

    @property
    def tiles(self) -> int:
        """Tiles the job holds."""
        return len(self.base)


def _edge_order(n_edges: int, edges: Sequence[tuple[int, int, int]]) -> tuple[int, ...]:
    """Edges sorted so that an edge follows every edge into its source (Kahn on vertices)."""
    into: dict[int, list[int]] = {}
    out: dict[int, list[int]] = {}
    for i, (s, d, _) in enumerate(edges):
        out.setdefault(s, []).append(i)
        into.setdefault(d, []).append(i)
    verts = sorted({v for s, d, _ in edges for v in (s, d)})
    indeg = {v: len(into.get(v, [])) for v in verts}
    ready = [v for v in verts if indeg[v] == 0]
    order: list[int] = []
    seen_v: set[int] = set()
    while ready:
        v = ready.pop(0)
        seen_v.add(v)
        for e in out.get(v, []):
            order.append(e)
            d = edges[e][1]
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    if len(order) < n_edges:  # a cycle (never from LCS): fall back to index order
        return tuple(range(n_edges))
    return tuple(order)


def _placed(
    hw: Hardware, segments: Sequence[SegmentTiming], coords: Sequence[Coord]
) -> PlacedTiming:
    hop_cycles = hw.noc.hop_cycles
    link_bw = hw.noc.link_bytes_per_cycle
    e_hop = hw.energy.noc_pj_per_bit_hop
    bw = hw.dram_bytes_per_cycle
    lat_cycles: list[float] = []  # per segment, the roofline of its pieces
    pieces: list[tuple[float, float]] = []
    piece_segments: list[int] = []
    energy = 0.0
    for seg in segments:
        b = seg.data_tiles
        arrive: dict[int, float] = {}
        load: dict[tuple[int, int, int], float] = {}
        longest = 0.0
        noc_pj = 0.0
        for i in seg.order:
            s, d, nbytes = seg.edges[i]
            (ax, ay), (bx, by) = coords[s], coords[d]
            hops = abs(ax - bx) + abs(ay - by)
            noc_pj += nbytes * 8 * hops * e_hop
            t = arrive.get(s, 0.0) + hops * hop_cycles
            if t > arrive.get(d, 0.0):
                arrive[d] = t
            longest = max(longest, t)
            per_tile = nbytes / b
            step = 1 if bx > ax else -1
            for x in range(ax, bx, step):  # X first, then Y (XY routing)
                key = (x, ay, 0 if step > 0 else 1)
                load[key] = load.get(key, 0.0) + per_tile
            step = 1 if by > ay else -1
            for y in range(ay, by, step):
                key = (bx, y, 2 if step > 0 else 3)
                load[key] = load.get(key, 0.0) + per_tile
        link_ii = max(load.values(), default=0.0) / link_bw
        ii = max(seg.ii_cycles, link_ii)
        pipe = seg.fill_cycles + longest + (b - 1) * ii
        first = len(pieces)
        if seg.weight_load_cycles > 0:
            pieces.append((0.0, float(seg.weight_bytes)))
        pieces.append((pipe, float(seg.io_bytes)))
        piece_segments.extend([len(lat_cycles)] * (len(pieces) - first))
        # Timed as the simulator times them (a pipeline whose DRAM traffic outlasts its
        # compute is DRAM-bound), so that segment bounds and piece positions agree.
        lat_cycles.append(roofline_cycles(pieces[first:], bw))
        energy += seg.energy_pj + noc_pj
    total = sum(lat_cycles) or 1.0
    bounds, acc = [], 0.0
    for c in lat_cycles:
        acc += c
        bounds.append(acc / total)
    bounds[-1] = 1.0
    return PlacedTiming(
        hw.cycles_to_us(sum(lat_cycles)),
        energy,
        tuple(bounds),
        tuple(pieces),
        tuple(piece_segments),
    )


def placed_timing(plan: JobPlan, hw: Hardware, coords: Sequence[Coord]) -> PlacedTiming:
    """Timing of ``plan`` with pattern vertex ``i`` on tile ``coords[i]`` of the chip."""
    return _placed(hw, plan.segments, coords)


def _segment_io_bytes(graph: Graph, layers: Sequence[str]) -> int:
    """Bytes a segment reads from DRAM (inputs from outside, the model input) and writes."""
    inside = set(layers)
    consumers = graph.consumers()
    read: set[str] = set()
    total = 0
    for lid in layers:
        lay = graph[lid]
        if lay.op == "input":
            continue
        for src in lay.inputs:
            if src not in read and (src not in inside or graph[src].op == "input"):
                read.add(src)
                total += graph[src].output_bytes
        outs = consumers[lid]
        if not outs or any(c not in inside for c in outs):
            total += lay.output_bytes
    return total


def job_plan(plan: Plan, chip: Hardware, budget: int, graph: Graph) -> JobPlan:
    """The footprint pattern and timing of ``plan`` (made on a box) for use on ``chip``.

    Parameters
    ----------
    plan : Plan
        A plan made for a box of the chip (its ``hw`` has the box's mesh).
    chip : Hardware
        The whole chip (its NoC and energy numbers time the placement).
    budget : int
        Tiles of the box.
    graph : Graph
        The planned model (for the bytes each segment moves through DRAM).
    """
    box_tiles: set[Coord] = set()
    for s in plan.segments:
        box_tiles.update(s.placement.placement.values())
    base = tuple(sorted(box_tiles, key=lambda c: (c[1], c[0])))
    index = {c: i for i, c in enumerate(base)}
    e_hop = chip.energy.noc_pj_per_bit_hop
    pattern_edges: dict[tuple[int, int], int] = {}
    segs: list[SegmentTiming] = []
    done_layers = 0
    for s in plan.segments:
        tg = s.tile_graph
        ids = tg.ids
        where = s.placement.placement
        edges = []
        base_noc = 0.0
        for src, dst, nbytes in tg.edges:
            a, b = index[where[ids[src]]], index[where[ids[dst]]]
            if a == b:
                continue
            edges.append((a, b, nbytes))
            key = (a, b)
            pattern_edges[key] = pattern_edges.get(key, 0) + nbytes
            (ax, ay), (bx, by) = base[a], base[b]
            base_noc += nbytes * 8 * (abs(ax - bx) + abs(ay - by)) * e_hop
        bt = max(s.data_tiles, 1)
        state = sum(min(nb, 2 * -(-nb // bt)) for _, _, nb in edges)
        done_layers += len(s.segment.layers)
        io = _segment_io_bytes(graph, s.segment.layers)
        if s.weight_load_cycles <= 0:
            io += s.segment.weight_bytes  # streamed weights are read while the pipeline runs
        segs.append(
            SegmentTiming(
                edges=tuple(edges),
                order=_edge_order(len(edges), edges),
                weight_load_cycles=s.weight_load_cycles,
                fill_cycles=s.fill_cycles,
                ii_cycles=s.ii_cycles,
                data_tiles=bt,
                energy_pj=max(0.0, s.energy_pj - base_noc),
                weight_bytes=s.segment.weight_bytes,
                state_bytes=state,
                layers=done_layers,
                io_bytes=io,
            )
        )
    pattern = TileGraph(
        tuple(TileVertex(f"t{x}_{y}") for x, y in base),
        tuple((a, b, nb) for (a, b), nb in sorted(pattern_edges.items())),
    )
    hops = max(s.placement.hops for s in plan.segments)
    timing = _placed(chip, segs, base)
    return JobPlan(plan.model, budget, plan.hw.mesh, pattern, base, hops, tuple(segs), timing)
