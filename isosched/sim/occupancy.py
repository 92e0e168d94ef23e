"""Per-tile occupancy of the chip: every tile is free or owned by exactly one job (DESIGN §6).

A job holds an arbitrary set of tiles, not a rectangle. Tile ``(x, y)`` has index ``y * W + x``;
sets of tiles are also kept as Python integers used as bit sets (bit ``i`` = tile ``i``), so that
the placer can test a candidate placement against the free tiles with one ``&``.

Tiles can be *reserved* for a job while their owner still checkpoints: they are neither free nor
given to anyone else, and pass to the job when the owner lets them go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["Coord", "Occupancy", "mask_of", "region_shapes", "tiles_of_mask"]

Coord = tuple[int, int]


def mask_of(tiles: Iterable[int]) -> int:
    """The bit set of tile indices."""
    m = 0
    for t in tiles:
        m |= 1 << t
    return m


def tiles_of_mask(mask: int) -> list[int]:
    """Tile indices of a bit set, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def region_shapes(width: int, height: int, smallest: int = 1) -> list[tuple[int, int]]:
    """Box shapes from the whole mesh down, halving the longer side, largest first.

    These are the tile budgets plans are made for (8×8 → 8×4 → 4×4 → 4×2 → 2×2 ...) and the
    partitions of the policies that partition the chip by rule.
    """
    shapes = [(width, height)]
    w, h = width, height
    while w * h > smallest and (w > 1 or h > 1):
        if w >= h and w % 2 == 0:
            w //= 2
        elif h % 2 == 0:
            h //= 2
        elif w % 2 == 0:
            w //= 2
        else:
            break
        shapes.append((w, h))
    return shapes


class Occupancy:
    """Who owns each tile of a ``width × height`` mesh.

    Raises ``RuntimeError`` on any attempt to give a tile to two jobs (a scheduling bug, never a
    user error).
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.owner: list[str | None] = [None] * (width * height)
        self.free_mask: int = (1 << (width * height)) - 1
        self.reserved: dict[int, str] = {}
        self._held: dict[str, int] = {}

    # ---- coordinates -------------------------------------------------------------------
    def index(self, xy: Coord) -> int:
        """Tile index of ``(x, y)``."""
        return xy[1] * self.width + xy[0]

    def coord(self, tile: int) -> Coord:
        """``(x, y)`` of a tile index."""
        return tile % self.width, tile // self.width

    # ---- queries -----------------------------------------------------------------------
    @property
    def tiles(self) -> int:
        """Tiles of the mesh."""
        return self.width * self.height

    @property
    def available_mask(self) -> int:
        """Free tiles that are not reserved for anyone."""
        reserved = mask_of(self.reserved)
        return self.free_mask & ~reserved

    @property
    def free_tiles(self) -> int:
        """Number of free, unreserved tiles."""
        return self.available_mask.bit_count()

    def held_mask(self, job: str) -> int:
        """Tiles ``job`` owns, as a bit set."""
        return self._held.get(job, 0)

    def holders(self, mask: int) -> set[str]:
        """Jobs owning a tile of ``mask``."""
        return {o for t in tiles_of_mask(mask) if (o := self.owner[t]) is not None}

    # ---- changes -----------------------------------------------------------------------
    def take(self, tiles: Sequence[int], job: str) -> None:
        """Give ``tiles`` to ``job`` (free tiles, or tiles reserved for it)."""
        for t in tiles:
            if self.owner[t] is not None:
                raise RuntimeError(
                    f"tile {self.coord(t)} is held by {self.owner[t]}, cannot give it to {job}"
                )
            r = self.reserved.get(t)
            if r is not None and r != job:
                raise RuntimeError(f"tile {self.coord(t)} is reserved for {r}, not {job}")
        m = 0
        for t in tiles:
            self.owner[t] = job
            self.reserved.pop(t, None)
            m |= 1 << t
        self.free_mask &= ~m
        self._held[job] = self._held.get(job, 0) | m

    def release(self, job: str) -> int:
        """Return every tile ``job`` owns; returns them as a bit set."""
        m = self._held.pop(job, 0)
        for t in tiles_of_mask(m):
            self.owner[t] = None
        self.free_mask |= m
        return m

    def reserve(self, tiles: Iterable[int], job: str) -> None:
        """Keep ``tiles`` for ``job`` once their owners let them go."""
        for t in tiles:
            r = self.reserved.get(t)
            if r is not None and r != job:
                raise RuntimeError(f"tile {self.coord(t)} is already reserved for {r}")
            self.reserved[t] = job

    def unreserve(self, job: str) -> None:
        """Drop every reservation of ``job``."""
        for t in [t for t, j in self.reserved.items() if j == job]:
            del self.reserved[t]
