"""The matcher's target: the chip's usable tiles, linked when at most h hops apart.

Tile ``(x, y)`` has index ``y * W + x``. Blocked tiles, and tiles held by jobs the requester may
not preempt, are removed. Tiles held by preemptible jobs stay, with their preemption cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from isosched.errors import IsoschedError
from isosched.match.native import compiled, compiled_default

__all__ = [
    "ChipTarget",
    "HeldTile",
    "MAX_HELD_COST",
    "MAX_HOPS",
    "MAX_LINKS",
    "MAX_SIDE",
    "MatchInputError",
    "check_budgets",
    "check_mesh",
    "masked_target",
    "max_hops",
    "mesh_target",
]

Coord = tuple[int, int]

#: Largest mesh side accepted: the largest chip's (``isosched.hw.model.MAX_SIDE``). The target
#: keeps a bit row per tile, so its memory grows with the square of the tiles (a 512×512 mesh
#: took 8.6 GB before this limit).
MAX_SIDE = 128
#: Largest hop bound accepted.
MAX_HOPS = 16
#: Most directed tile links a target may have, counted as tiles × 2h(h + 1) (the interior's):
#: 64×64 at 16 hops has 2.2 million; 128×128 takes up to 10 hops. Building the target comes
#: before the search's budget, so this bounds that time too (about 0.1 s at 2 million).
MAX_LINKS = 1 << 22
#: Largest cost of a held tile (any unit): a cost-aware search sums it over every tile it takes,
#: and those sums must stay finite (at 1e308 they overflowed, and the search wrongly proved
#: "no placement").
MAX_HELD_COST = 1e18


class MatchInputError(IsoschedError):
    """Bad matcher input: mesh size, hops, blocked tiles outside the mesh, ..."""


@dataclass(frozen=True, slots=True)
class HeldTile:
    """A tile held by a running job.

    Attributes
    ----------
    priority : int
        Priority of the holder; only a strictly higher-priority requester may take the tile.
    cost : float
        Cost of preempting the holder for this tile, in the placement cost's units.
    """

    priority: int
    cost: float


@dataclass(frozen=True, eq=False)
class ChipTarget:
    """Usable tiles of a W×H mesh linked within ``hops`` hops (XY routing distance).

    Attributes
    ----------
    width, height, hops : int
        Mesh size and the largest hop distance an edge of the pattern may span.
    allowed : ndarray of bool, shape (W·H,)
        Whether each tile may be used.
    tile_cost : ndarray of float, shape (W·H,)
        Preemption cost of using each tile (0 for free tiles).
    indptr, indices : ndarray of int
        CSR rows of the h-hop neighbourhood among allowed tiles (sorted, no self loops).
    """

    width: int
    height: int
    hops: int
    allowed: npt.NDArray[np.bool_]
    tile_cost: npt.NDArray[np.float64]
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]

    def __repr__(self) -> str:
        """A summary (the arrays would print hundreds of numbers)."""
        held = int(np.count_nonzero(self.tile_cost[self.allowed]))
        return (
            f"ChipTarget({self.width}x{self.height}, hops={self.hops}, "
            f"{int(np.count_nonzero(self.allowed))} of {self.size} tiles allowed, "
            f"{held} of them at a cost, {len(self.indices)} directed links)"
        )

    @property
    def size(self) -> int:
        """Number of tiles W·H (allowed or not)."""
        return self.width * self.height

    @property
    def degree(self) -> npt.NDArray[np.int64]:
        """Neighbours of every tile within h hops (0 for tiles that are not allowed)."""
        return np.diff(self.indptr)

    def neighbours(self, tile: int) -> npt.NDArray[np.int64]:
        """Allowed tiles within h hops of ``tile`` (CSR row)."""
        return self.indices[self.indptr[tile] : self.indptr[tile + 1]]

    def coord(self, tile: int) -> Coord:
        """``(x, y)`` of a tile index."""
        return tile % self.width, tile // self.width

    def tile(self, xy: Coord) -> int:
        """Tile index of ``(x, y)``."""
        return xy[1] * self.width + xy[0]

    def hop_distance(self, a: int, b: int) -> int:
        """XY-routing hop count between two tiles."""
        return abs(a % self.width - b % self.width) + abs(a // self.width - b // self.width)

    def csr_matrix(self) -> object:
        """The adjacency as a ``scipy.sparse.csr_array`` of 0/1 (``int8``)."""
        from scipy.sparse import csr_array

        data = np.ones(len(self.indices), dtype=np.int8)
        return csr_array((data, self.indices, self.indptr), shape=(self.size, self.size))


def _check_coord(xy: Iterable[int], w: int, h: int, what: str) -> Coord:
    c = tuple(int(v) for v in xy)
    if len(c) != 2 or not (0 <= c[0] < w and 0 <= c[1] < h):
        raise MatchInputError(f"{what} tile {list(c)} is outside the {w}x{h} mesh")
    return c[0], c[1]


def _links_bound(width: int, height: int, hops: int) -> int:
    """Directed tile links of a W×H mesh at ``hops``, counted as tiles × 2h(h + 1)."""
    return width * height * 2 * hops * (hops + 1)


def check_mesh(width: int, height: int, hops: int) -> None:
    """Check a mesh size and hop bound (:data:`MAX_SIDE`, :data:`MAX_HOPS`, :data:`MAX_LINKS`).

    Raises
    ------
    MatchInputError
        Naming the limit exceeded.
    """
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise MatchInputError(f"mesh {width}x{height} is outside 1..{MAX_SIDE} per side")
    if not 1 <= hops <= MAX_HOPS:
        raise MatchInputError(f"hops must be in 1..{MAX_HOPS}, got {hops}")
    links = _links_bound(width, height, hops)
    if links > MAX_LINKS:
        raise MatchInputError(
            f"mesh {width}x{height} at {hops} hops has up to {links:,} tile links; at most "
            f"{MAX_LINKS:,} (fewer hops or a smaller mesh)"
        )


def check_budgets(
    budget_ms: float,
    nodes: int | None,
    names: tuple[str, str] = ("budget_ms", "max_nodes"),
) -> None:
    """Check a wall budget (finite, >= 0, ms) and a node budget (``None`` or >= 0).

    ``names`` are how the caller spells the two in its messages (e.g. the CLI's options).

    Raises
    ------
    MatchInputError
        Naming the budget that is out of range.
    """
    if not (budget_ms >= 0 and math.isfinite(budget_ms)):  # NaN fails the first test
        raise MatchInputError(f"{names[0]} must be a finite number >= 0, got {budget_ms}")
    if nodes is not None and nodes < 0:
        raise MatchInputError(f"{names[1]} must be >= 0, got {nodes}")


def max_hops(width: int, height: int) -> int:
    """Largest hop bound :func:`check_mesh` accepts on a W×H mesh (0 if none)."""
    h = MAX_HOPS
    while h > 0 and _links_bound(width, height, h) > MAX_LINKS:
        h -= 1
    return h


def mesh_target(
    width: int,
    height: int,
    hops: int = 2,
    blocked: Iterable[Iterable[int]] = (),
    held: Mapping[Coord, HeldTile] | None = None,
    priority: int | None = None,
) -> ChipTarget:
    """Build the target of a W×H mesh.

    Parameters
    ----------
    width, height : int
        Mesh size in tiles.
    hops : int
        Largest XY distance an edge may span (1 = strict neighbours).
    blocked : iterable of (x, y)
        Tiles that may not be used at all.
    held : mapping (x, y) -> HeldTile, optional
        Tiles held by running jobs.
    priority : int, optional
        Requester priority. Held tiles of lower priority stay usable at their cost; the others
        are removed. ``None`` removes every held tile (nothing may be preempted).

    Raises
    ------
    MatchInputError
        On a mesh :func:`check_mesh` refuses, a tile outside the mesh, or a held tile's cost
        outside 0..:data:`MAX_HELD_COST` (an infinite or overflowing sum of costs would make
        a cost-aware search prune every placement and wrongly prove that none exists).
    """
    check_mesh(width, height, hops)
    n = width * height
    allowed = np.ones(n, dtype=bool)
    cost = np.zeros(n, dtype=np.float64)
    for xy in blocked:
        x, y = _check_coord(xy, width, height, "blocked")
        allowed[y * width + x] = False
    for xy, ht in (held or {}).items():
        x, y = _check_coord(xy, width, height, "held")
        if not 0 <= ht.cost <= MAX_HELD_COST:  # NaN fails too
            raise MatchInputError(
                f"held tile {(x, y)}: cost must be in 0..{MAX_HELD_COST:g}, got {ht.cost}"
            )
        if priority is not None and ht.priority < priority:
            cost[y * width + x] = ht.cost
        else:
            allowed[y * width + x] = False
    return masked_target(width, height, hops, allowed, cost)


@lru_cache(maxsize=32)
def _mesh_links(
    width: int, height: int, hops: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every link of the full mesh within ``hops``, as ``(source, destination)`` sorted by both.

    Kept per mesh and hop bound (read-only): a target only drops the links of unusable tiles.
    """
    n = width * height
    xs = np.arange(n, dtype=np.int64) % width
    ys = np.arange(n, dtype=np.int64) // width
    rows, cols = [], []
    # one pass per (dx, dy) offset with 1 <= |dx| + |dy| <= hops
    for dx in range(-hops, hops + 1):
        for dy in range(-(hops - abs(dx)), hops - abs(dx) + 1):
            if dx == 0 and dy == 0:
                continue
            nx, ny = xs + dx, ys + dy
            src = np.nonzero((nx >= 0) & (nx < width) & (ny >= 0) & (ny < height))[0]
            rows.append(src)
            cols.append(ny[src] * width + nx[src])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    order = np.lexsort((c, r))
    r, c = r[order], c[order]
    r.flags.writeable = False
    c.flags.writeable = False
    return r, c


def masked_target(
    width: int,
    height: int,
    hops: int,
    allowed: npt.NDArray[np.bool_],
    tile_cost: npt.NDArray[np.float64],
) -> ChipTarget:
    """The target of a W×H mesh from per-tile arrays (the run-time placer's path; unchecked).

    Parameters
    ----------
    width, height, hops : int
        Mesh size and hop bound, already validated (:func:`mesh_target` checks them).
    allowed : ndarray of bool, shape (W·H,)
        Usable tiles.
    tile_cost : ndarray of float, shape (W·H,)
        Preemption cost of each tile (0 for free tiles).
    """
    if compiled_default():
        indptr, c = compiled(_links)(allowed, width, height, hops)
        return ChipTarget(width, height, hops, allowed, tile_cost, indptr, c)
    n = width * height
    r, c = _mesh_links(width, height, hops)
    keep = allowed[r] & allowed[c]
    c = c[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(r[keep], minlength=n))
    return ChipTarget(width, height, hops, allowed, tile_cost, indptr, c)


def _links(
    allowed: npt.NDArray[np.bool_], width: int, height: int, hops: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The CSR rows of the links among ``allowed`` tiles, as :func:`masked_target` has them.

    Written for numba (the compiled path of :func:`masked_target`; the reference filters the
    mesh's links with numpy): two passes over each usable tile's diamond of offsets, rows and
    columns in increasing tile order.
    """
    n = width * height
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.empty(0, dtype=np.int64)
    for fill in range(2):
        k = 0
        for t in range(n):
            if allowed[t]:
                x = t % width
                y = t // width
                for dy in range(-hops, hops + 1):
                    ny = y + dy
                    if ny < 0 or ny >= height:
                        continue
                    rest = hops - abs(dy)
                    for dx in range(-rest, rest + 1):
                        nx = x + dx
                        if nx < 0 or nx >= width or (dx == 0 and dy == 0):
                            continue
                        u = ny * width + nx
                        if allowed[u]:
                            if fill == 1:
                                indices[k] = u
                            k += 1
            indptr[t + 1] = k
        if fill == 0:
            indices = np.empty(k, dtype=np.int64)
    return indptr, indices
