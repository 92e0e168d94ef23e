"""Plan a model on a chip: units, segments, ILP allocation, LCS, placement, timing, energy."""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from isosched.cost import weight_load_cost
from isosched.errors import IsoschedError
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.plan.ilp import AllocationResult, min_stage_by_threshold, solve_allocation
from isosched.plan.lcs import build_tile_graph
from isosched.plan.options import Option, single_tile_options, unit_io, unit_options
from isosched.plan.placement import SegmentPlacement, place_tile_graph
from isosched.plan.units import (
    Segment,
    Unit,
    build_units,
    cut_segments,
    cut_work,
    segment_units,
)
from isosched.tilegraph import TileGraph

__all__ = [
    "MAX_CUT_WORK",
    "MAX_OPTION_CYCLES",
    "MAX_PLAN_UNITS",
    "PLAN_SCHEMA",
    "Plan",
    "PlanError",
    "SegmentPlan",
    "plan_model",
    "plan_to_doc",
]

PLAN_SCHEMA = "isosched.plan/v1"

#: Most planning units (compute layers) a model may have.
MAX_PLAN_UNITS = 20_000

#: Largest work of the latency-minimising segment cut (:func:`~isosched.plan.units.cut_work`);
#: beyond it segments are cut greedily. Every zoo model on every preset is within it (the most:
#: ``llama2_7b`` on ``wafer-64x64``, 2.9 M), so their plans do not depend on it.
MAX_CUT_WORK = 4_000_000

#: Largest stage time any allocation option may have, cycles (CP-SAT works on 64-bit integers).
MAX_OPTION_CYCLES = 2**53


class PlanError(IsoschedError):
    """A model cannot be planned on a chip (too large, or a stage longer than any solver takes)."""


Progress = Callable[[str], None]


@dataclass(frozen=True)
class SegmentPlan:
    """One planned segment.

    Attributes
    ----------
    segment : Segment
        Its units and layers.
    options, allocation : list, AllocationResult
        The options offered per unit and the ILP's choice.
    tile_graph : TileGraph
        LCS output.
    placement : SegmentPlacement
        Where the tile graph sits, with the alternative-placement library.
    ii_cycles, fill_cycles, weight_load_cycles, latency_cycles : float
        Pipeline interval per data tile, fill of the critical path, weight loading, latency.
    data_tiles : int
        Data tiles B of the pipeline (1 for segments whose weights stream).
    energy_pj : float
        Energy of one inference of the segment, picojoules.
    """

    segment: Segment
    options: list[list[Option]]
    allocation: AllocationResult
    tile_graph: TileGraph
    placement: SegmentPlacement
    ii_cycles: float
    fill_cycles: float
    weight_load_cycles: float
    latency_cycles: float
    data_tiles: int
    energy_pj: float

    @property
    def tiles_used(self) -> int:
        """Tiles holding a tile task."""
        return len(self.tile_graph)


@dataclass(frozen=True)
class Plan:
    """A model planned on a chip: segments run one after another."""

    model: str
    hw: Hardware
    segments: tuple[SegmentPlan, ...]
    elapsed_ms: float

    @property
    def latency_ms(self) -> float:
        """End-to-end latency of one inference, milliseconds."""
        return self.hw.cycles_to_ms(sum(s.latency_cycles for s in self.segments))

    @property
    def energy_mj(self) -> float:
        """Energy of one inference, millijoules."""
        return sum(s.energy_pj for s in self.segments) * 1e-9

    @property
    def ii_cycles(self) -> float:
        """Largest pipeline interval over the segments, cycles per data tile."""
        return max(s.ii_cycles for s in self.segments)

    @property
    def tiles_used(self) -> int:
        """Most tiles any segment holds."""
        return max(s.tiles_used for s in self.segments)

    @property
    def hops(self) -> int:
        """Largest hop bound any segment's placement needed."""
        return max(s.placement.hops for s in self.segments)

    @property
    def wall_limited(self) -> bool:
        """Whether a wall-clock safety net (CP-SAT or matcher) ended a search.

        The plan may then differ between machines: it is not a complete, reproducible result.
        """
        return any(s.allocation.wall_limited or s.placement.wall_limited for s in self.segments)

    @property
    def deterministic_time(self) -> float:
        """CP-SAT deterministic time over every segment, deterministic seconds."""
        return sum(s.allocation.deterministic_time for s in self.segments)


def _critical_path(graph: Graph, seg: Segment, stage: list[float]) -> float:
    """Longest chain of unit stage times through the segment's unit DAG."""
    unit_of = {lid: u for u, unit in enumerate(seg.units) for lid in unit.layers}
    preds: list[set[int]] = [set() for _ in seg.units]
    for src, dst in graph.edges:
        a, b = unit_of.get(src), unit_of.get(dst)
        if a is not None and b is not None and a != b:
            preds[b].add(a)
    best = [0.0] * len(seg.units)
    for u in range(len(seg.units)):  # units are in topological order
        best[u] = stage[u] + max((best[p] for p in preds[u] if p < u), default=0.0)
    return max(best, default=0.0)


def _segment_estimator(
    resident: list[list[Option]], budget_quarters: int
) -> Callable[[int, int], tuple[float, float] | None]:
    """(slowest stage, sum of stages) of units i..j-1 by the exact threshold search."""

    def estimate(i: int, j: int) -> tuple[float, float] | None:
        found = min_stage_by_threshold(resident[i:j], budget_quarters)
        if found is None:
            return None
        stage, choice = found
        total = sum(resident[i + k][c].cycles for k, c in enumerate(choice))
        return float(stage), float(total)

    return estimate


def _consumers_once(graph: Graph) -> Graph:
    """``graph`` whose ``consumers()`` map is computed once, not per call.

    Option building asks for it once per unit, which made the first phase quadratic in the
    layers; the map is a pure function of the (immutable) graph, so a shallow copy answering
    from one table plans identically.
    """
    table = graph.consumers()
    fast = copy.copy(graph)
    object.__setattr__(fast, "consumers", lambda: table)
    return fast


def _check_cycles(graph: Graph, hw: Hardware, units: list[Unit], opts: list[list[Option]]) -> None:
    """Refuse stage times no solver can take (a chip with absurdly little bandwidth or speed).

    Raises
    ------
    PlanError
        Naming the unit and the hardware fields that set its time.
    """
    for unit, options in zip(units, opts, strict=True):
        fastest = min((o.cycles for o in options), default=0)
        if fastest > MAX_OPTION_CYCLES:
            raise PlanError(
                f"{graph.name}: unit {unit.id!r} needs at least {fastest:.3g} cycles on "
                f"{hw.name} (more than {MAX_OPTION_CYCLES:.3g}); its bandwidths, clock or "
                "utilisation are too low for this model"
            )


def _cut_bytes(graph: Graph, units: list[Unit]) -> Callable[[int], int]:
    """Bytes produced before unit i and consumed from unit i on (what a cut there spills)."""
    unit_of = {lid: u for u, unit in enumerate(units) for lid in unit.layers}
    crossing = [0] * (len(units) + 1)
    for src, dst in graph.edges:
        a, b = unit_of[src], unit_of[dst]
        if a != b:
            lo, hi = min(a, b), max(a, b)
            crossing[lo + 1] += graph[src].output_bytes
            crossing[hi + 1] -= graph[src].output_bytes
    out, total = [], 0
    for c in crossing:
        total += c
        out.append(total)
    return lambda i: out[i]


#: Each planner argument's range, checked before any work: (least, whether the least is allowed).
_RANGES = {
    "hops": (1, True),
    "ilp_dtime_limit": (0, True),
    "ilp_time_limit_s": (0, False),
    "match_budget_ms": (0, True),
    "match_nodes": (0, True),
}


def _check_arguments(**values: float) -> None:
    """Refuse a planner argument out of range at once, by its own name (not a later stage's)."""
    for name, v in values.items():
        least, inclusive = _RANGES[name]
        number = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        if not number or v < least or (v == least and not inclusive):
            bound = f"{'≥' if inclusive else '>'} {least}"
            raise PlanError(f"{name} must be a finite number {bound}, got {v!r}")


def _prefixed(say: Progress, head: str) -> Callable[[str], None]:
    """``say`` with ``head`` in front of every line."""

    def line(text: str) -> None:
        say(head + text)

    return line


def plan_model(
    graph: Graph,
    hw: Hardware,
    *,
    hops: int = 2,
    ilp_dtime_limit: float = 5.0,
    ilp_time_limit_s: float = 60.0,
    match_budget_ms: float = 60_000.0,
    match_nodes: int = 20_000,
    workers: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    optimal_cuts: bool = True,
    lcs: bool = True,
) -> Plan:
    """Plan ``graph`` on ``hw``.

    Parameters
    ----------
    graph, hw : Graph, Hardware
        The model and the chip.
    hops : int
        Hop bound of the placement (raised per segment only when no placement is found).
    ilp_dtime_limit : float
        CP-SAT deterministic-time limit per segment, deterministic seconds: the limit that
        decides the allocation (machine-independent, so plans are reproducible).
    ilp_time_limit_s : float
        CP-SAT wall-clock safety net per segment, seconds.
    match_budget_ms : float
        Matcher wall-time cap per segment and hop bound, milliseconds (a safety net).
    match_nodes : int
        Matcher budget per segment and hop bound in search placements (machine-independent, so
        plans are reproducible).
    workers, seed : int
        CP-SAT workers (1 keeps the search reproducible) and random seed (also the matcher's).
    progress : callable, optional
        Called with a one-line message per segment.
    optimal_cuts : bool
        Cut segments by dynamic programming over estimated latency (default) instead of
        greedily (longest segments first). The DP's work is counted first; beyond
        :data:`MAX_CUT_WORK` the cut is greedy all the same (and progress says so).
    lcs : bool
        Layer Concatenate and Split (default). ``False`` is the "no LCS" ablation: every unit
        on exactly one tile of its own — no split over several tiles, no sharing of a tile
        with other light units — its weights streamed from DRAM when they do not fit.

    Raises
    ------
    PlanError
        Before any work, on an argument out of range (named); over :data:`MAX_PLAN_UNITS`
        units, or a stage time over :data:`MAX_OPTION_CYCLES`.
    PlacementError
        When no placement is found within the matcher's hop limit.

    Notes
    -----
    The same arguments give the same plan on any machine and under any load, apart from its
    wall times (``elapsed_ms``), unless a wall-clock safety net fired: then
    ``Plan.wall_limited`` is true.
    """
    _check_arguments(
        hops=hops,
        ilp_dtime_limit=ilp_dtime_limit,
        ilp_time_limit_s=ilp_time_limit_s,
        match_budget_ms=match_budget_ms,
        match_nodes=match_nodes,
    )
    t0 = time.perf_counter()
    units = build_units(graph)
    if len(units) > MAX_PLAN_UNITS:
        raise PlanError(
            f"{graph.name} has {len(units):,} planning units (compute layers); "
            f"at most {MAX_PLAN_UNITS:,} are planned"
        )
    graph = _consumers_once(graph)
    everything = {lay.id for lay in graph}
    resident = []
    every = max(1, len(units) // 10)
    options = unit_options if lcs else single_tile_options
    for k, u in enumerate(units, start=1):
        resident.append(options(graph, u, hw, unit_io(graph, u, everything)))
        if progress is not None and len(units) >= 100 and (k % every == 0 or k == len(units)):
            progress(f"allocation options: {k}/{len(units)} units")
    _check_cycles(graph, hw, units, resident)
    least = [min((o.quarters for o in opts), default=4 * hw.tiles) for opts in resident]
    work = cut_work(units, hw, least) if optimal_cuts else 0
    if optimal_cuts and work <= MAX_CUT_WORK:
        segments = cut_segments(
            units,
            hw,
            least,
            _segment_estimator(resident, 4 * hw.tiles),
            _cut_bytes(graph, units),
            progress=progress,
        )
    else:
        if optimal_cuts and progress is not None:  # counted before doing it: machine-independent
            progress(
                f"segment cuts: greedy (the latency DP would take {work:,} work units; "
                f"the budget is {MAX_CUT_WORK:,})"
            )
        segments = segment_units(units, hw, least)
    out = []
    e = hw.energy
    for seg in segments:
        if progress is not None:  # before the ILP, so that a long first solve shows its place
            progress(
                f"segment {seg.index} [{seg.index}/{len(segments)}]: allocating tiles to "
                f"{len(seg.units)} units (ILP)"
            )
        inside = set(seg.layers)
        opts = [options(graph, u, hw, unit_io(graph, u, inside)) for u in seg.units]
        alloc = solve_allocation(
            opts,
            4 * hw.tiles,
            ilp_dtime_limit,
            time_limit_s=ilp_time_limit_s,
            workers=workers,
            seed=seed,
        )
        tg = build_tile_graph(graph, seg, opts, alloc.choice)
        placing = None
        if progress is not None:
            placing = _prefixed(progress, f"segment {seg.index} [{seg.index}/{len(segments)}]: ")
        placed = place_tile_graph(
            tg,
            hw.width,
            hw.height,
            hops,
            match_budget_ms,
            seed,
            max_nodes=match_nodes,
            progress=placing,
        )
        b = 1 if seg.streamed else hw.dataflow.data_tiles
        stage = [float(opts[u][i].cycles) for u, i in enumerate(alloc.choice)]
        ii = max(stage) / b
        fill = _critical_path(graph, seg, stage) / b
        wl = 0.0 if seg.streamed else weight_load_cost(seg.weight_bytes, hw)
        wl_cycles = 0.0 if isinstance(wl, float) else wl.cycles
        latency = wl_cycles + fill + (b - 1) * ii
        energy = sum(opts[u][i].energy.total for u, i in enumerate(alloc.choice))
        if not isinstance(wl, float):
            energy += wl.energy.total
        ids = tg.ids
        for s, d, nbytes in tg.edges:
            (ax, ay), (bx, by) = placed.placement[ids[s]], placed.placement[ids[d]]
            energy += nbytes * 8 * (abs(ax - bx) + abs(ay - by)) * e.noc_pj_per_bit_hop
        out.append(
            SegmentPlan(seg, opts, alloc, tg, placed, ii, fill, wl_cycles, latency, b, energy)
        )
        if progress is not None:
            cut = alloc.wall_limited or placed.wall_limited
            progress(
                f"segment {seg.index} [{seg.index + 1}/{len(segments)}]: {len(seg.units)} units, "
                f"{len(tg)} tiles, II {ii:.0f} cycles ({alloc.status}), "
                f"placed at h={placed.hops} in {placed.elapsed_ms:.0f} ms"
                + (" [stopped by a wall-clock limit]" if cut else "")
            )
    return Plan(graph.name, hw, tuple(out), (time.perf_counter() - t0) * 1e3)


def plan_to_doc(plan: Plan, library: bool = False) -> dict[str, Any]:
    """The ``isosched.plan/v1`` document (CONTRACTS.md)."""
    hw = plan.hw
    segs = []
    statuses = set()
    for s in plan.segments:
        statuses.add(s.allocation.status)
        doc: dict[str, Any] = {
            "index": s.segment.index,
            "layers": s.segment.layers,
            "ii_cycles": round(s.ii_cycles, 1),
            "latency_ms": hw.cycles_to_ms(s.latency_cycles),
            "tiles_used": s.tiles_used,
            "hops": s.placement.hops,
            "data_tiles": s.data_tiles,
            "weight_load_ms": hw.cycles_to_ms(s.weight_load_cycles),
            "streamed_weights": s.segment.streamed,
            "tile_graph": s.tile_graph.to_doc(),
            "placement": {k: list(v) for k, v in s.placement.placement.items()},
            "solver": {
                "status": s.allocation.status,
                "objective": s.allocation.objective,
                "bound": s.allocation.bound,
                "elapsed_ms": round(s.allocation.elapsed_ms, 2),
                "deterministic_time": round(s.allocation.deterministic_time, 6),
                "wall_limited": s.allocation.wall_limited,
            },
            "match_ms": round(s.placement.elapsed_ms, 2),
            "match_nodes": s.placement.nodes,
            "match_wall_limited": s.placement.wall_limited,
            "library_size": len(s.placement.library),
        }
        doc["tile_graph"].pop("schema", None)
        if library:
            doc["library"] = [{k: list(v) for k, v in p.items()} for p in s.placement.library]
        segs.append(doc)
    return {
        "schema": PLAN_SCHEMA,
        "model": plan.model,
        "hw": hw.name,
        "mesh": list(hw.mesh),
        "hops": plan.hops,
        "latency_ms": plan.latency_ms,
        "energy_mj": plan.energy_mj,
        "ii_cycles": round(plan.ii_cycles, 1),
        "tiles_used": plan.tiles_used,
        "segments": segs,
        "solver": {
            "status": "OPTIMAL" if statuses == {"OPTIMAL"} else "FEASIBLE",
            "objective": sum(s.allocation.objective for s in plan.segments),
            "bound": sum(s.allocation.bound for s in plan.segments),
            "elapsed_ms": round(sum(s.allocation.elapsed_ms for s in plan.segments), 2),
            "deterministic_time": round(plan.deterministic_time, 6),
        },
        "wall_limited": plan.wall_limited,
        "elapsed_ms": round(plan.elapsed_ms, 1),
    }
