"""Tile regions: aligned power-of-two rectangles of the mesh (a buddy-style allocator).

A budget of k tiles is a rectangle obtained by halving the mesh's longer side repeatedly (8×8 →
8×4 → 4×4 → 4×2 → 2×2 → ...). A region of a given shape may sit at any position aligned to its
size, so a job whose plan was made for that shape can run, or resume after preemption, in any free
region of the same shape: the plan's placement is translated.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Region", "RegionMap", "region_shapes"]

Coord = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of tiles: corner ``(x, y)`` and size ``w × h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def tiles(self) -> list[Coord]:
        """The tiles, row by row."""
        return [(self.x + i, self.y + j) for j in range(self.h) for i in range(self.w)]

    @property
    def size(self) -> int:
        """Number of tiles."""
        return self.w * self.h


def region_shapes(width: int, height: int, smallest: int = 1) -> list[tuple[int, int]]:
    """Shapes from the whole mesh down, halving the longer side, largest first."""
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


class RegionMap:
    """Which job owns each tile; finds free aligned regions."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.owner: dict[Coord, str] = {}

    def occupants(self, region: Region) -> set[str]:
        """Jobs owning a tile of ``region``."""
        return {self.owner[t] for t in region.tiles if t in self.owner}

    def positions(self, shape: tuple[int, int]) -> list[Region]:
        """Every aligned position of a shape."""
        w, h = shape
        return [
            Region(x, y, w, h)
            for y in range(0, self.height - h + 1, h)
            for x in range(0, self.width - w + 1, w)
        ]

    def free_region(self, shape: tuple[int, int]) -> Region | None:
        """A free aligned region of ``shape`` (the first in row order), or ``None``."""
        for r in self.positions(shape):
            if not self.occupants(r):
                return r
        return None

    def take(self, region: Region, job: str) -> None:
        """Give every tile of ``region`` to ``job``.

        Raises
        ------
        RuntimeError
            If a tile is already owned (a scheduling bug, never a user error).
        """
        for t in region.tiles:
            if t in self.owner:
                raise RuntimeError(f"tile {t} is held by {self.owner[t]}, cannot give it to {job}")
        for t in region.tiles:
            self.owner[t] = job

    def release(self, region: Region, job: str) -> None:
        """Return the tiles of ``region`` held by ``job``."""
        for t in region.tiles:
            if self.owner.get(t) == job:
                del self.owner[t]

    @property
    def free_tiles(self) -> int:
        """Tiles nobody owns."""
        return self.width * self.height - len(self.owner)
