"""Place a segment's tile graph on the chip and build its preemption-ready library.

The matcher (MCTS) runs at h = 2 hops; only when it finds nothing is h raised (and recorded);
if it finds nothing at any bound, the constraint engine ``cp`` tries the bounds again. The
library holds the placement's images under the mesh's symmetries (rotations and reflections)
and translations that keep it on the chip: every image is again valid, so a preempting job can
look one up whose tiles are free instead of matching online.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from isosched.errors import IsoschedError
from isosched.match import MatchResult, TileMatcher, mesh_target, placement_errors
from isosched.match.target import max_hops
from isosched.tilegraph import TileGraph

__all__ = ["PlacementError", "SegmentPlacement", "place_tile_graph", "placement_library"]

Coord = tuple[int, int]


class PlacementError(IsoschedError):
    """A tile graph could not be placed on the chip."""


@dataclass(frozen=True)
class SegmentPlacement:
    """A segment's placement.

    Attributes
    ----------
    placement : dict
        Vertex id -> ``(x, y)``.
    hops : int
        Hop bound the placement satisfies (2 unless it had to be raised).
    elapsed_ms : float
        Matcher wall time, milliseconds (measured, not part of the result's identity).
    library : list of dict
        Alternative placements (the first is ``placement``).
    nodes : int
        Search placements the matcher spent over every hop bound tried (machine-independent).
    wall_limited : bool
        Whether the wall-clock safety net, not the node budget, ended a search at some hop
        bound: the hop bound and placement may then differ between machines.
    """

    placement: dict[str, Coord]
    hops: int
    elapsed_ms: float
    library: list[dict[str, Coord]]
    nodes: int = 0
    wall_limited: bool = False


def _transforms(w: int, h: int) -> list[tuple[bool, bool, bool]]:
    # (swap x/y, flip x, flip y); swapping needs a square mesh.
    out = [(False, fx, fy) for fx in (False, True) for fy in (False, True)]
    if w == h:
        out += [(True, fx, fy) for fx in (False, True) for fy in (False, True)]
    return out


def placement_library(
    placement: dict[str, Coord], width: int, height: int, limit: int = 16
) -> list[dict[str, Coord]]:
    """Images of ``placement`` under mesh symmetries and translations, at most ``limit``."""
    seen: set[frozenset[tuple[str, Coord]]] = set()
    out: list[dict[str, Coord]] = []

    def add(p: dict[str, Coord]) -> None:
        key = frozenset(p.items())
        if key not in seen and len(out) < limit:
            seen.add(key)
            out.append(p)

    add(dict(placement))
    for swap, fx, fy in _transforms(width, height):
        img = {}
        for v, (x, y) in placement.items():
            a, b = (y, x) if swap else (x, y)
            img[v] = (width - 1 - a if fx else a, height - 1 - b if fy else b)
        xs = [x for x, _ in img.values()]
        ys = [y for _, y in img.values()]
        for dx in range(-min(xs), width - max(xs)):
            for dy in range(-min(ys), height - max(ys)):
                add({v: (x + dx, y + dy) for v, (x, y) in img.items()})
                if len(out) >= limit:
                    return out
    return out


def _stopped_by_wall(r: MatchResult, max_nodes: int | None) -> bool:
    """Whether a failed search ended by the wall clock (not the node budget, not a proof)."""
    if r.found or r.proved or r.reason == "search tree exhausted":
        return False
    return max_nodes is None or int(r.stats.get("nodes", 0)) < max_nodes


def _most_neighbours(tg: TileGraph) -> int:
    """The largest number of distinct neighbours of a tile task (self-loops aside)."""
    indptr, _ = tg.undirected_csr()
    return int(np.diff(indptr).max(initial=0))


def place_tile_graph(
    tg: TileGraph,
    width: int,
    height: int,
    hops: int = 2,
    budget_ms: float = 60_000.0,
    seed: int = 0,
    max_nodes: int | None = 20_000,
    progress: Callable[[str], None] | None = None,
) -> SegmentPlacement:
    """Place ``tg`` on an empty W×H mesh, raising the hop bound only when needed.

    MCTS, the paper's engine, searches at ``hops``, then at each larger bound. Each hop bound
    gets ``max_nodes`` search placements: that budget decides, so a plan is the same on every
    machine. ``budget_ms`` of wall time per hop bound is only a safety net; when it ends a search
    the result has ``wall_limited=True``. (``max_nodes=None`` leaves the wall time as the only
    budget: not reproducible.) If MCTS finds no placement at any bound, the constraint engine
    ``cp`` tries the bounds again, with the same budgets, before the planner gives up: a budget
    of 20,000 placements is a few MCTS rollouts of a tile graph of thousands of tasks
    (``wafer-64x64``), where ``cp`` propagates. A tile graph that MCTS places is placed as
    before. ``progress``, if given, is called with a line before each bound's search (a large
    tile graph can take minutes per bound).

    Raises
    ------
    PlacementError
        If the tile graph has more vertices than the mesh has tiles, or neither engine found a
        placement at any hop bound up to the matcher's limit on this mesh
        (:func:`~isosched.match.target.max_hops`: 16, fewer on meshes wider than 64×64).
    """
    if len(tg) > width * height:
        raise PlacementError(f"{len(tg)} tile tasks do not fit {width}x{height} tiles")
    top = max_hops(width, height)
    if not 1 <= hops <= top:
        raise PlacementError(f"hops must be in 1..{top} on {width}x{height}, got {hops}")
    # every pair of tiles is linked at h = W + H - 2: no larger bound can help
    last = min(top, max(1, width + height - 2))
    elapsed = 0.0
    nodes = 0
    cut = False
    h = hops
    engine = "mcts"
    proved = first_cp = 0  # the largest bound proved impossible; cp's first bound
    while True:
        if progress is not None:
            if engine == "mcts":
                tried = "" if h == hops else f" (none within {h - 1}: {nodes} search nodes so far)"
            else:
                cp_to = f", cp: none within {h - 1}" if h > first_cp else ""
                mcts_to = max(hops, last)  # the last bound MCTS tried
                tried = f" by cp (MCTS: none within {mcts_to}{cp_to}; {nodes} search nodes so far)"
            progress(f"placing {len(tg)} tile tasks within {h} hops{tried}")
        target = mesh_target(width, height, h)
        r = TileMatcher(target, tg).match(
            engine=engine, budget_ms=budget_ms, seed=seed, max_nodes=max_nodes
        )
        elapsed += r.elapsed_ms
        nodes += int(r.stats.get("nodes", 0))
        cut = cut or _stopped_by_wall(r, max_nodes)
        if r.found:
            assert not placement_errors(tg, target, r.placement)
            lib = placement_library(r.placement, width, height)
            return SegmentPlacement(dict(r.placement), h, elapsed, lib, nodes, cut)
        if r.proved:  # none within h hops, so none within fewer either
            proved = max(proved, h)
        if h >= last and engine == "mcts" and proved < h:
            # cp from just above the bounds proved impossible
            engine = "cp"
            h = first_cp = max(hops, proved + 1)
            continue
        if h >= last:
            net = (
                f"; the wall-clock safety net ({budget_ms:g} ms a search) stopped some of these "
                "searches, so a larger budget or another machine may find a placement"
                if cut
                else ""
            )
            raise PlacementError(
                f"no placement of {len(tg)} tile tasks on {width}x{height} within h <= {h} hops "
                f"by {'MCTS or cp' if engine == 'cp' else 'MCTS'} ({nodes} search nodes; last "
                f"reason: {r.reason}; the busiest tile task talks to {_most_neighbours(tg)} "
                f"others{net})"
            )
        h += 1
