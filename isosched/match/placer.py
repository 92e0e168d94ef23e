"""The run-time placer: embed a tile pattern into the live chip (DESIGN §5, "Run-time placement").

One question, asked by the simulator for every start and every resume, and by ``isosched
match``: *embed this pattern into these tiles (free ones, and preemptible ones at a cost)*.

1. **Library lookup.** The pattern's stored placement (a plan's own) under every translation and
   the 8 symmetries of the square is a candidate; each is a bit set tested against the free tiles
   with one ``&``. Rotations and reflections keep every hop distance, so every image spans the
   hops the stored placement spans: checked once against the asked bound (a library stored for a
   looser bound gives the online match its start only).
   Free images come first; with victims allowed, the cheapest image over free plus preemptible
   tiles wins (a victim's cost counts once, however many of its tiles are taken).
2. **Online match.** Only when the library has nothing: the matcher on the labelled tiles —
   free, preemptible at their cost, blocked — with :data:`ONLINE_ENGINE` (``cp`` and local repair
   in turns; the first repair turn starts from the library image on the most usable tiles, the
   geometric first try's near miss) and a budget counted in search nodes, so the answer is the
   same on every machine.
   A wall-time cap is only a safety net; if it ever fires, the answer says so
   (``wall_limited``).

The answer is an arbitrary tile set (one tile per pattern vertex), not a rectangle, with where it
came from and the work it took (images tested, matcher nodes), which the simulator charges as
decision time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from isosched.match.cp import warm as warm_cp
from isosched.match.matcher import (
    ENGINES,
    MatchResult,
    TileMatcher,
    placement_cost,
    warm_answer_cost,
)
from isosched.match.repair import warm as warm_repair
from isosched.match.target import (
    MAX_HELD_COST,
    ChipTarget,
    MatchInputError,
    _check_coord,
    check_budgets,
    check_mesh,
    masked_target,
)
from isosched.tilegraph import TileGraph

__all__ = [
    "ONLINE_ENGINE",
    "HYBRID",
    "MAX_HELD_COST",
    "PLACER_ENGINES",
    "PORTFOLIO",
    "TOO_FEW_TILES",
    "Library",
    "PlacerAnswer",
    "Victim",
    "labelled_target",
    "labelled_tiles",
    "library_images",
    "library_of",
    "place",
    "warm",
]

Coord = tuple[int, int]

#: Wall-time safety net of one online match, ms (node budgets decide; this only stops a hang).
WALL_SAFETY_MS = 30_000.0
#: ``PlacerAnswer.detail`` when the pattern has more vertices than there are usable tiles.
TOO_FEW_TILES = "too few tiles"
#: The portfolio engine of the online match: ``cp`` on the first quarter of the budget (it proves
#: when there is no room, and finds many placements), then ``mcts`` on the rest (its rollouts
#: find placements that the complete search misses within the budget).
PORTFOLIO = "portfolio"
#: ``cp`` gets 1 / CP_SHARE of the portfolio's node and wall budgets.
CP_SHARE = 4
#: The hybrid engine: ``cp`` and ``repair`` (local search) in turns, ``cp`` first. Turn k of each
#: gets ``HYBRID_FIRST × 2^k`` nodes (a repair step counts as a node) and seed ``seed + k``; a
#: repair turn starts from the deepest partial placement of the ``cp`` turn before it. ``cp``
#: proves "no room" and finds most placements within its first turn; repair finds the ones on
#: fragmented free areas that send ``cp`` into long subtrees (docs/performance.md). With a
#: library that missed (the geometric first try), turn 0 is a glance (:data:`HYBRID_GLANCE` repair
#: steps from the library image on the most usable tiles: most easy instances end there, before
#: ``cp`` builds its model), ``cp``'s root alone (no node: the proofs that need no search), repair
#: from the image again, then ``cp`` and repair as above. With victims (a cost-aware search),
#: and above :data:`HYBRID_MAX_VERTICES`, it is ``cp`` alone: repair ignores costs.
HYBRID = "cp+repair"
#: Nodes of the hybrid's glance from the geometric start: repair steps on chips of up to 256
#: usable tiles (about 0.1-0.2 ms).
HYBRID_GLANCE = 64
#: Nodes of the hybrid's first ``cp`` turn.
HYBRID_FIRST = 1_000
#: Nodes of the hybrid's first repair turn.
HYBRID_REPAIR_FIRST = 1_000
#: Patterns with more vertices get ``cp`` alone from the hybrid. The online question is about 16-256
#: vertices; on larger planted patterns (500 and 1,000 vertices, h = 2) repair placed nothing that
#: ``cp`` had not, and the turns' fresh starts cost ``cp`` its progress (docs/performance.md).
HYBRID_MAX_VERTICES = 256
#: The online engine: the hybrid. Without a library its first turn is ``cp``'s, so within
#: ``HYBRID_FIRST`` nodes it is ``cp``, answer for answer (the simulator's online matches).
ONLINE_ENGINE = HYBRID
#: Every engine :func:`place` runs: its own two and the matcher's.
PLACER_ENGINES: tuple[str, ...] = (HYBRID, PORTFOLIO, *ENGINES)


@dataclass(frozen=True, slots=True)
class Library:
    """Images of a stored placement on a ``width × height`` chip.

    The images are translations and symmetries of one placement (:func:`library_images`), so
    they all span the same hops: :func:`place` checks the first one against its bound.

    Attributes
    ----------
    width, height : int
        The chip.
    images : tuple of (int, tuple of int)
        ``(bit set of tiles, tile index per pattern vertex)``, in a fixed order: row-major by
        the image's lowest corner, then by symmetry.
    """

    width: int
    height: int
    images: tuple[tuple[int, tuple[int, ...]], ...]
    #: Hops the images span, per pattern (keyed by the id of its edges, which it holds).
    spans: dict[int, tuple[object, int]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def span(self, pattern: TileGraph) -> int:
        """Most hops an edge of ``pattern`` spans in every image (0 without images)."""
        edges = pattern.edges
        got = self.spans.get(id(edges))
        if got is None or got[0] is not edges:
            most = _span(pattern, self.images[0][1], self.width) if self.images else 0
            got = self.spans[id(edges)] = (edges, most)
        return got[1]


@dataclass(frozen=True, slots=True)
class Victim:
    """A running job whose tiles may be taken.

    Attributes
    ----------
    mask : int
        Its tiles, as a bit set (bit ``y * W + x``).
    cost : float
        Cost of stopping it (any unit the caller chooses, e.g. µs of lost time).
    """

    mask: int
    cost: float


@dataclass(frozen=True, slots=True)
class PlacerAnswer:
    """Where a pattern goes, and what finding it cost.

    Attributes
    ----------
    found : bool
        Whether a placement was found.
    tiles : tuple of int
        Tile index per pattern vertex (empty when not found).
    source : str
        ``library``, ``online`` or ``none``.
    victims : tuple of str
        Jobs whose tiles the placement takes (sorted).
    cost : float
        Sum of the victims' costs.
    lookups : int
        Library images tested.
    nodes : int
        Matcher search nodes.
    reason : str
        Why the answer stopped where it did: ``found`` (a library hit or an online match),
        ``impossible`` (proved: no placement on these tiles), ``budget`` (the library missed and
        the online match ran out of nodes, or was not asked for), ``cancelled``.
    wall_ms : float
        Host time spent, milliseconds (reported, never used in a decision).
    wall_limited : bool
        The wall clock stopped the online match: its safety net, or its budget when no node
        budget was given (the answer may then differ between machines; callers report it).
    match : MatchResult or None
        The online matcher's full result, when it ran (or proved there is no room).
    detail : str
        The reason in words (:data:`TOO_FEW_TILES` when counting the tiles was proof enough).
    """

    found: bool
    tiles: tuple[int, ...]
    source: str
    victims: tuple[str, ...]
    cost: float
    lookups: int
    nodes: int
    reason: str
    wall_ms: float
    wall_limited: bool = False
    match: MatchResult | None = None
    detail: str = ""

    def to_doc(self, pattern: TileGraph, target: ChipTarget) -> dict[str, Any]:
        """The ``isosched match --json`` document of this answer (``POST /v1/match``'s).

        An online answer's is the matcher's document, with ``nodes`` counting every turn of the
        online engine; a library hit's has engine ``library``, no node, and the cost the matcher
        would report (:func:`placement_cost` on ``target``: the :func:`labelled_target` the
        answer was asked on). Both add ``victims`` (held jobs whose tiles the placement takes,
        sorted) and ``preemption_cost`` (the sum of their costs, each counted once).
        """
        if self.match is not None:
            doc = self.match.to_doc()
            doc["nodes"] = self.nodes
        elif self.source == "library":
            coords = {v: target.coord(t) for v, t in zip(pattern.ids, self.tiles, strict=True)}
            doc = {
                "found": True,
                "engine": "library",
                "elapsed_ms": round(self.wall_ms, 3),
                "reason": "found",
                "nodes": 0,
                "placement": {v: list(xy) for v, xy in coords.items()},
                "cost": placement_cost(pattern, target, coords),
                "proved": False,
                "detail": f"an image of the given placement ({self.lookups} tested)",
                "wall_limited": False,
                "partial": {},
                "stats": {"nodes": 0, "lookups": self.lookups},
            }
        else:
            raise ValueError("an answer without an online match or a library hit has no document")
        doc["victims"] = list(self.victims)
        doc["preemption_cost"] = float(self.cost)
        return doc


def library_of(
    pattern: TileGraph, placement: Mapping[str, Sequence[int]], hops: int, width: int, height: int
) -> Library:
    """The library of a pattern's own placement (a plan segment's ``placement``), checked.

    The coordinates only matter relative to each other: every translation and symmetry of them
    on the ``width × height`` chip is an image.

    Raises
    ------
    MatchInputError
        Unless every vertex has a distinct ``[x, y]`` of integers and every edge spans at most
        ``hops`` hops.
    """
    if set(placement) != set(pattern.ids):
        missing = sorted(set(pattern.ids) - set(placement))
        extra = sorted(set(placement) - set(pattern.ids))
        raise MatchInputError(
            f"the placement must give every vertex a tile (missing {missing[:3]}, "
            f"unknown {extra[:3]})"
        )
    base: list[Coord] = []
    for v in pattern.ids:
        xy = placement[v]
        if len(xy) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in xy):
            raise MatchInputError(f"placement of {v!r} must be a pair of integers [x, y]")
        base.append((xy[0], xy[1]))
    if len(set(base)) != len(base):
        raise MatchInputError("the placement puts two vertices on one tile")
    ids = pattern.ids
    for s, d, _ in pattern.edges:
        (ax, ay), (bx, by) = base[s], base[d]
        if abs(ax - bx) + abs(ay - by) > hops:
            raise MatchInputError(
                f"the placement's edge {ids[s]}->{ids[d]} spans "
                f"{abs(ax - bx) + abs(ay - by)} hops > {hops}"
            )
    return library_images(base, width, height)


def labelled_tiles(
    width: int,
    height: int,
    blocked: Iterable[Sequence[int]] = (),
    held: Mapping[str, tuple[Iterable[Sequence[int]], float]] | None = None,
) -> tuple[int, dict[str, Victim]]:
    """The placer's inputs from tile lists: the free tiles, and the held jobs as victims.

    Parameters
    ----------
    width, height : int
        The mesh.
    blocked : iterable of (x, y)
        Tiles that may not be used.
    held : mapping job -> (tiles, cost), optional
        Tiles of running jobs that may be taken, at the job's cost (any unit): a cost-aware
        search adds it for every tile of the job it takes (the placement cost of DESIGN §5);
        :attr:`PlacerAnswer.cost` counts it once per job taken.

    Returns
    -------
    free_mask : int
        Tiles neither blocked nor held, as a bit set (bit ``y * width + x``).
    victims : dict
        Job -> :class:`Victim`.

    Raises
    ------
    MatchInputError
        On a tile outside the mesh, a tile both blocked and held or held by two jobs, an empty
        job name, a job holding no tile, or a cost outside 0..:data:`MAX_HELD_COST`.
    """
    if not (width >= 1 and height >= 1):
        raise MatchInputError(f"mesh sides must be positive, got {width}x{height}")

    def bit(xy: Sequence[int], what: str) -> int:
        x, y = _check_coord(xy, width, height, what)
        return 1 << (y * width + x)

    taken = 0
    for xy in blocked:
        taken |= bit(xy, "blocked")
    victims: dict[str, Victim] = {}
    for job, (tiles, cost) in (held or {}).items():
        if not job:
            raise MatchInputError("a held job needs a name")
        if not (0 <= cost <= MAX_HELD_COST):  # NaN fails too
            raise MatchInputError(
                f"held job {job!r}: cost must be in 0..{MAX_HELD_COST:g}, got {cost}"
            )
        if not tiles:
            raise MatchInputError(f"held job {job!r} holds no tile")
        mask = 0
        for xy in tiles:
            b = bit(xy, f"held job {job!r}:")
            if b & taken:
                t = b.bit_length() - 1
                raise MatchInputError(
                    f"held job {job!r}: tile {[t % width, t // width]} is already blocked or held"
                )
            mask |= b
        taken |= mask
        victims[job] = Victim(mask, float(cost))
    return ((1 << (width * height)) - 1) & ~taken, victims


def _symmetries(coords: Sequence[Coord]) -> list[list[Coord]]:
    """The 8 images of ``coords`` under the symmetries of the square, normalised to (0, 0)."""
    out: list[list[Coord]] = []
    seen: set[tuple[Coord, ...]] = set()
    for swap in (False, True):
        for fx in (False, True):
            for fy in (False, True):
                img = []
                for x, y in coords:
                    a, b = (y, x) if swap else (x, y)
                    img.append((-a if fx else a, -b if fy else b))
                mx = min(a for a, _ in img)
                my = min(b for _, b in img)
                norm = [(a - mx, b - my) for a, b in img]
                key = tuple(norm)
                if key not in seen:
                    seen.add(key)
                    out.append(norm)
    return out


def library_images(base: Sequence[Coord], width: int, height: int) -> Library:
    """Every image of ``base`` on a ``width × height`` chip (translations × 8 symmetries).

    Raises
    ------
    MatchInputError
        When ``base`` puts two vertices on one tile.
    """
    if len(set(base)) != len(base):
        raise MatchInputError("the placement puts two vertices on one tile")
    if not base:
        return Library(width, height, ((0, ()),))
    syms = _symmetries(base)
    images: list[tuple[int, int, int, int, tuple[int, ...]]] = []
    for s, img in enumerate(syms):
        w = max(a for a, _ in img) + 1
        h = max(b for _, b in img) + 1
        for oy in range(height - h + 1):
            for ox in range(width - w + 1):
                tiles = tuple((b + oy) * width + (a + ox) for a, b in img)
                m = 0
                for t in tiles:
                    m |= 1 << t
                images.append((oy, ox, s, m, tiles))
    images.sort(key=lambda r: (r[0], r[1], r[2]))
    return Library(width, height, tuple((m, tiles) for _, _, _, m, tiles in images))


def _victims_of(mask: int, victims: Mapping[str, Victim]) -> tuple[tuple[str, ...], float]:
    hit = tuple(sorted(v for v, vic in victims.items() if vic.mask & mask))
    return hit, sum(victims[v].cost for v in hit)


def warm(engine: str = ONLINE_ENGINE) -> None:
    """Load the compiled kernels ``engine`` runs, once per process (no clock runs meanwhile).

    numba reads them from its disk cache (about 1.5 s on this machine), or compiles them on
    the first run in a new checkout (about 30 s). :func:`place` calls this before its clock
    starts; a front end may call it first to tell its user what the wait is.
    """
    if engine in ("cp", PORTFOLIO, HYBRID):
        warm_cp()
    if engine in ("repair", HYBRID):
        warm_repair()
        warm_answer_cost()


def place(
    pattern: TileGraph,
    hops: int,
    free_mask: int,
    width: int,
    height: int,
    *,
    library: Library | None = None,
    victims: Mapping[str, Victim] | None = None,
    node_budget: int | None = 2_000,
    seed: int = 0,
    online: bool = True,
    engine: str = ONLINE_ENGINE,
    budget_ms: float = WALL_SAFETY_MS,
    cost_aware: bool | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PlacerAnswer:
    """Embed ``pattern`` into the free tiles (and, with ``victims``, into theirs at a cost).

    Parameters
    ----------
    pattern : TileGraph
        What to place.
    hops : int
        Largest XY distance an edge may span.
    free_mask : int
        Free tiles, as a bit set.
    width, height : int
        The chip.
    library : Library, optional
        Stored placements to try first, for this chip and this pattern. An image is a hit only
        if its edges stay within ``hops`` (checked once: every image spans the same hops);
        otherwise the images only give the hybrid its geometric start.
    victims : mapping job -> Victim, optional
        Running jobs whose tiles may be taken; ``None`` places on free tiles only.
    node_budget : int or None
        Matcher search nodes for the online match (``None``: only ``budget_ms`` bounds it, and
        the answer may then depend on the machine).
    seed : int
        Matcher seed.
    online : bool
        Run the online match when the library has nothing.
    engine : {"cp+repair", "cp", "repair", "portfolio", "mcts", "ullmann"}
        Online engine (``cp+repair``: ``cp`` and local repair in turns, see :data:`HYBRID`;
        ``cp``: propagation with proofs of infeasibility; ``portfolio``: ``cp`` on a quarter of
        the budget, then ``mcts``).
    budget_ms : float
        Wall-time budget of the online match, ms (a safety net when ``node_budget`` is set).
    cost_aware : bool, optional
        Search the whole budget for the cheapest placement (default: only with victims).
    cancel : callable, optional
        Polled by the online match; true stops it with reason ``cancelled``.

    Raises
    ------
    MatchInputError
        On a mesh :func:`~isosched.match.target.check_mesh` refuses, a negative or non-finite
        budget, or a library for another chip size or another number of vertices.
    """
    if online:
        warm(engine)  # load the compiled kernels before the clock starts (once per process)
    check_mesh(width, height, hops)
    check_budgets(budget_ms, node_budget, ("budget_ms", "node_budget"))
    t0 = time.perf_counter()
    n = len(pattern)
    if library is not None:
        if (library.width, library.height) != (width, height):
            raise MatchInputError(
                f"the library is for a {library.width}x{library.height} chip, not {width}x{height}"
            )
        if library.images and len(library.images[0][1]) != n:
            raise MatchInputError(
                f"the library places {len(library.images[0][1])} vertices, the pattern has {n}"
            )
    vic = dict(victims or {})
    usable = free_mask
    for v in vic.values():
        usable |= v.mask
    lookups = 0
    geo: tuple[int, tuple[int, ...]] | None = None  # (usable tiles, tiles): the nearest miss
    if n == 0 and not online:  # nothing to place: found, with no library look-up to make
        return PlacerAnswer(True, (), "none", (), 0.0, 0, 0, "found", _ms(t0))
    if n > usable.bit_count():
        why = f"proved: pattern has {n} vertices but only {usable.bit_count()} tiles are usable"
        proof = MatchResult(False, engine, _ms(t0), {}, None, True, "impossible", {"nodes": 0}, why)
        return PlacerAnswer(
            False, (), "none", (), 0.0, 0, 0, "impossible", _ms(t0), False, proof, TOO_FEW_TILES
        )
    if library is not None:
        best: tuple[float, int, tuple[int, ...]] | None = None
        not_free = ~free_mask
        not_usable = ~usable
        nearest = online and engine == HYBRID  # keep the nearest miss for the hybrid's start
        # Every image spans the same hops (the symmetries of the square keep XY distances), so
        # one check says whether the library answers at this bound at all: a library built for a
        # looser bound (library_images does not check) gives starts only.
        hits = bool(library.images) and library.span(pattern) <= hops
        for mask, tiles in library.images:
            lookups += 1
            if hits and not mask & not_free:
                return PlacerAnswer(True, tiles, "library", (), 0.0, lookups, 0, "found", _ms(t0))
            if nearest:
                on = (mask & usable).bit_count()
                if geo is None or on > geo[0]:
                    geo = (on, tiles)
            if hits and vic and not mask & not_usable:
                _, cost = _victims_of(mask & not_free, vic)
                if best is None or cost < best[0]:
                    best = (cost, mask, tiles)
        if best is not None:
            names, cost = _victims_of(best[1] & not_free, vic)
            return PlacerAnswer(True, best[2], "library", names, cost, lookups, 0, "found", _ms(t0))
    if not online:
        return PlacerAnswer(
            False, (), "none", (), 0.0, lookups, 0, "budget", _ms(t0), detail="library miss"
        )
    target, held = labelled_target(width, height, hops, free_mask, vic)
    matcher = TileMatcher(target, pattern)
    aware = held if cost_aware is None else cost_aware
    if engine == PORTFOLIO:
        result, nodes = _portfolio(matcher, budget_ms, seed, aware, node_budget, cancel)
    elif engine == HYBRID:
        start = None
        if geo is not None:
            start = {
                v: (t % width, t // width)
                for v, t in zip(pattern.ids, geo[1], strict=True)
                if usable >> t & 1
            }
        result, nodes = _hybrid(matcher, budget_ms, seed, aware, node_budget, cancel, start)
    else:
        result = matcher.match(
            engine=engine,
            budget_ms=budget_ms,
            seed=seed,
            cost_aware=aware,
            max_nodes=node_budget,
            cancel=cancel,
        )
        nodes = result.nodes
    wall_limited = result.wall_limited
    if not result.found:
        return PlacerAnswer(
            False,
            (),
            "none",
            (),
            0.0,
            lookups,
            nodes,
            result.reason,
            _ms(t0),
            wall_limited,
            result,
            result.detail,
        )
    tiles = tuple(y * width + x for x, y in (result.placement[v] for v in pattern.ids))
    m = 0
    for t in tiles:
        m |= 1 << t
    names, cost = _victims_of(m & ~free_mask, vic)
    return PlacerAnswer(
        True,
        tiles,
        "online",
        names,
        cost,
        lookups,
        nodes,
        result.reason,
        _ms(t0),
        wall_limited,
        result,
        result.detail,
    )


def labelled_target(
    width: int, height: int, hops: int, free_mask: int, victims: Mapping[str, Victim]
) -> tuple[ChipTarget, bool]:
    """The online match's target: free tiles, victims' tiles at their cost, the rest blocked.

    Returns the target and whether it holds a victim's tile. A tile of two victims costs what
    the later one says; a free tile costs nothing, whoever else claims it.
    """
    size = width * height
    free = _tiles(free_mask, size)
    held = np.zeros(size, dtype=bool)
    tile_cost = np.zeros(size, dtype=np.float64)
    for v in victims.values():
        mine = _tiles(v.mask, size)
        tile_cost[mine] = v.cost
        held |= mine
    held &= ~free
    tile_cost[~held] = 0.0
    return masked_target(width, height, hops, free | held, tile_cost), bool(held.any())


def _portfolio(
    matcher: TileMatcher,
    budget_ms: float,
    seed: int,
    cost_aware: bool,
    node_budget: int | None,
    cancel: Callable[[], bool] | None,
) -> tuple[MatchResult, int]:
    """``cp`` on a quarter of the node (and wall) budget, then ``mcts`` on the rest.

    Returns the answer and the nodes of both. ``cp`` proves "no room" at its root for most
    instances (before its first node) and finds many placements quickly; MCTS's rollouts find
    the placements ``cp`` misses within small budgets (docs/performance.md).
    """
    t0 = time.perf_counter()
    # at least one node for cp, but never more than the whole budget (0 stays 0)
    share = None if node_budget is None else min(node_budget, max(1, node_budget // CP_SHARE))
    first = matcher.match(
        engine="cp",
        budget_ms=budget_ms / CP_SHARE,
        seed=seed,
        cost_aware=cost_aware,
        max_nodes=share,
        cancel=cancel,
    )
    if first.reason != "budget" or (node_budget is not None and node_budget - first.nodes <= 0):
        return first, first.nodes
    second = matcher.match(
        engine="mcts",
        budget_ms=max(0.0, budget_ms - _ms(t0)),
        seed=seed,
        cost_aware=cost_aware,
        max_nodes=None if node_budget is None else node_budget - first.nodes,
        cancel=cancel,
    )
    if not second.found and not second.partial and first.partial:
        second = replace(second, partial=first.partial)
    total = first.nodes + second.nodes
    second = replace(
        second, stats={**second.stats, "nodes": total, "cp_nodes": first.nodes}
    )  # the document's nodes and its stats agree
    if first.wall_limited and not second.wall_limited:
        # the wall clock cut cp's quarter short, so it decided what MCTS was left to do
        second = replace(second, wall_limited=True)
    return second, total


def _hybrid(
    matcher: TileMatcher,
    budget_ms: float,
    seed: int,
    cost_aware: bool,
    node_budget: int | None,
    cancel: Callable[[], bool] | None,
    geometric: Mapping[str, Coord] | None = None,
) -> tuple[MatchResult, int]:
    """``cp`` and ``repair`` in turns (see :data:`HYBRID`).

    Turn k gets ``HYBRID_FIRST × 2^k`` nodes for ``cp``, ``HYBRID_REPAIR_FIRST × 2^k`` for repair;
    with victims or above ``HYBRID_MAX_VERTICES`` vertices, ``cp`` runs alone. Given a
    ``geometric`` start (tiles of some vertices, e.g. the plan's image), turn 0 first runs
    ``HYBRID_GLANCE`` nodes of repair from it, ``cp``'s root (no node) and a repair turn from it.
    Returns the answer and the nodes of every turn. A turn that finds, proves, is cancelled or
    meets the wall clock ends the search; so does the node budget.
    """
    t0 = time.perf_counter()
    if cost_aware or len(matcher.pattern) > HYBRID_MAX_VERTICES:
        only = matcher.match(
            engine="cp",
            budget_ms=budget_ms,
            seed=seed,
            cost_aware=cost_aware,
            max_nodes=node_budget,
            cancel=cancel,
        )
        return only, only.nodes
    used = {"cp": 0, "repair": 0}
    steps = 0  # repair's steps (a step counts as several nodes above 256 usable tiles)
    turns = 0
    partial: dict[str, Coord] = {}
    last_cp: dict[str, Coord] = {}  # the latest cp turn's deepest partial: repair's start
    out: MatchResult | None = None
    k = 0
    while True:
        # turn 0 with a geometric start: cp's root (proofs), repair from the image, then as usual
        seq: tuple[str, ...] = ("cp", "repair")
        if k == 0 and geometric:
            seq = ("root", "geometric", "cp", "repair")
            if HYBRID_GLANCE:
                seq = ("glance", *seq)
        for step in seq:
            engine = "cp" if step in ("root", "cp") else "repair"
            total = used["cp"] + used["repair"]
            left = None if node_budget is None else node_budget - total
            if out is not None and ((left is not None and left <= 0) or _ms(t0) >= budget_ms):
                merged = _merged(out, used, steps, turns, partial, left is None or left > 0)
                return merged, total
            full = (HYBRID_FIRST if engine == "cp" else HYBRID_REPAIR_FIRST) << k
            turn = {"root": 0, "glance": HYBRID_GLANCE}.get(step, full)
            start = {"glance": geometric, "geometric": geometric, "repair": last_cp}.get(step)
            out = matcher.match(
                engine=engine,
                budget_ms=max(0.0, budget_ms - _ms(t0)),
                seed=seed + k,
                cost_aware=False,
                max_nodes=turn if left is None else min(turn, left),
                cancel=cancel,
                start=start,
            )
            used[engine] += out.nodes
            steps += int(out.stats.get("steps", 0)) if engine == "repair" else 0
            turns += 1
            if engine == "cp":
                last_cp = out.partial
            if len(out.partial) > len(partial):
                partial = out.partial
            if out.reason != "budget" or out.wall_limited:
                merged = _merged(out, used, steps, turns, partial, out.wall_limited)
                return merged, sum(used.values())
        k += 1


def _merged(
    out: MatchResult,
    used: dict[str, int],
    steps: int,
    turns: int,
    partial: dict[str, Coord],
    wall_limited: bool,
) -> MatchResult:
    """The hybrid's answer: the last turn's, with every turn's work and the deepest partial.

    ``stats`` splits ``nodes`` into ``cp_nodes`` and ``repair_nodes``; ``repair_steps`` counts
    repair's steps (one node each on chips of up to 256 usable tiles, more above).
    """
    stats = {
        **out.stats,
        "nodes": used["cp"] + used["repair"],
        "cp_nodes": used["cp"],
        "repair_nodes": used["repair"],
        "repair_steps": steps,
        "turns": turns,
    }
    keep = {} if out.found else partial
    return replace(out, stats=stats, partial=keep, wall_limited=wall_limited and not out.found)


def _span(pattern: TileGraph, tiles: Sequence[int], width: int) -> int:
    """Most hops a pattern edge spans with vertex ``i`` on tile ``tiles[i]`` (0 without edges)."""
    most = 0
    for s, d, _ in pattern.edges:
        a, b = tiles[s], tiles[d]
        most = max(most, abs(a % width - b % width) + abs(a // width - b // width))
    return most


def _tiles(mask: int, size: int) -> npt.NDArray[np.bool_]:
    """Bit set ``mask`` as one bool per tile (bits at and above ``size`` ignored)."""
    raw = (mask & ((1 << size) - 1)).to_bytes((size + 7) // 8, "little")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")
    return bits[:size].astype(bool)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3
