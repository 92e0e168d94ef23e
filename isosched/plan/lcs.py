"""Layer Concatenate and Split: from the ILP's allocation to the segment's tile graph.

* **Split.** A unit on k tiles becomes k tile tasks. A ``rows`` split gives each task a k-th of the
  output rows (or tokens); consumer slice j talks only to the producer slices whose rows overlap
  its own, so edges stay local. A ``channels`` split chains its k tasks: the input is forwarded
  along the chain and each task adds its output channels to what it passes on, so the unit is
  entered at its first task and left at its last.
* **Concatenate.** Units with a quarter or half tile share tiles with other light units, first
  fit in topological order (chains of light layers end up on one tile).

Edges carry bytes per inference: a producer's output split in proportion to the overlap of the
row ranges of the slices it connects. A single tile feeding k slices (or k slices feeding one)
scatters (gathers) along the slices instead of fanning out, so no tile task needs more than a few
neighbours. Every layer of the segment appears in at least one vertex; a split layer appears in
all of its unit's vertices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise

from isosched.graph.model import Graph
from isosched.plan.options import Option
from isosched.plan.units import Segment
from isosched.tilegraph import TileGraph, TileVertex

__all__ = ["build_tile_graph"]


def _pack_shares(quarters: Sequence[int]) -> list[int]:
    """Bin of every share (capacity 4 quarters), first fit in the given order."""
    bins: list[int] = []
    where = []
    for q in quarters:
        for b, load in enumerate(bins):
            if load + q <= 4:
                bins[b] += q
                where.append(b)
                break
        else:
            bins.append(q)
            where.append(len(bins) - 1)
    return where


def build_tile_graph(
    graph: Graph, segment: Segment, options: Sequence[Sequence[Option]], choice: Sequence[int]
) -> TileGraph:
    """The tile graph of a segment under the chosen options.

    Vertex ids are ``s<segment>v<n>``; a vertex's ``cycles`` is its stage time for the whole
    tensor (shares: the sum of its units' one-tile times).
    """
    units = segment.units
    prefix = f"s{segment.index}v"
    v_layers: list[list[str]] = []
    v_cycles: list[float] = []
    entry: list[list[int]] = []
    exit_: list[list[int]] = []
    internal: list[tuple[int, int, int]] = []
    shares = [u for u, i in enumerate(choice) if options[u][i].mode == "share"]
    bins = _pack_shares([options[u][choice[u]].quarters for u in shares])
    bin_vertex: dict[int, int] = {}
    share_bin = dict(zip(shares, bins, strict=True))
    for u, unit in enumerate(units):
        opt = options[u][choice[u]]
        if opt.mode == "share":
            b = share_bin[u]
            if b not in bin_vertex:
                bin_vertex[b] = len(v_layers)
                v_layers.append([])
                v_cycles.append(0.0)
            v = bin_vertex[b]
            v_layers[v].extend(unit.layers)
            v_cycles[v] += opt.cycles * opt.quarters / 4
            entry.append([v])
            exit_.append([v])
            continue
        ids = []
        for _ in range(opt.tiles):
            ids.append(len(v_layers))
            v_layers.append(list(unit.layers))
            v_cycles.append(float(opt.cycles))
        if opt.mode in ("channels", "stream") and len(ids) > 1:
            io = sum(graph[x].output_bytes for x in unit.layers[-1:])
            internal.extend((a, b, io) for a, b in pairwise(ids))
            entry.append(ids[:1])
            exit_.append(ids[-1:])
        else:
            entry.append(ids)
            exit_.append(ids)
    unit_of = {lid: u for u, unit in enumerate(units) for lid in unit.layers}
    flows: dict[tuple[int, int], float] = defaultdict(float)
    for src, dst in graph.edges:
        us, ud = unit_of.get(src), unit_of.get(dst)
        if us is None or ud is None or us == ud:
            continue
        nbytes = graph[src].output_bytes
        out, inn = exit_[us], entry[ud]
        if len(out) == 1 and len(inn) > 1:
            # Scatter along the consumer's slices: each keeps its rows, forwards the rest.
            flows[(out[0], inn[0])] += nbytes
            for j in range(len(inn) - 1):
                flows[(inn[j], inn[j + 1])] += nbytes * (len(inn) - 1 - j) / len(inn)
            continue
        if len(inn) == 1 and len(out) > 1:
            # Gather along the producer's slices, each adding its rows, into the consumer.
            for i in range(len(out) - 1):
                flows[(out[i], out[i + 1])] += nbytes * (i + 1) / len(out)
            flows[(out[-1], inn[0])] += nbytes
            continue
        for i, a in enumerate(out):
            for j, b in enumerate(inn):
                lo = max(i / len(out), j / len(inn))
                hi = min((i + 1) / len(out), (j + 1) / len(inn))
                if hi > lo and a != b:
                    flows[(a, b)] += nbytes * (hi - lo)
    for a, b, nbytes in internal:
        flows[(a, b)] += nbytes
    verts = tuple(
        TileVertex(f"{prefix}{n}", tuple(dict.fromkeys(lays)), cyc)
        for n, (lays, cyc) in enumerate(zip(v_layers, v_cycles, strict=True))
    )
    edges = tuple((a, b, round(nb)) for (a, b), nb in sorted(flows.items()))
    return TileGraph(verts, edges)
