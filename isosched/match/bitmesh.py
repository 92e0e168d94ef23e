"""The target mesh as bit sets: tile ``t`` is bit ``t`` of a Python ``int``.

A set of tiles is one integer, so intersecting a candidate domain with a neighbourhood, removing a
used tile from every domain or counting the tiles of a domain are single machine-word loops in
C. Balls of the target graph (tiles reachable in ``d`` links of at most ``h`` hops each, through
usable tiles) are grown by shifting the whole set: one Manhattan step is ``m | m << 1 | m >> 1 |
m << W | m >> W`` with the row wrap-arounds masked off.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from isosched.match.target import ChipTarget

__all__ = ["BitMesh", "bits_of", "mask_of", "tiles_of"]


def mask_of(flags: npt.NDArray[np.bool_]) -> int:
    """Bit set of the ``True`` entries of a boolean array (entry ``i`` = bit ``i``)."""
    if not len(flags):
        return 0
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


def bits_of(tiles: npt.NDArray[np.int64] | list[int], size: int) -> int:
    """Bit set of a list of tile indices below ``size``."""
    flags = np.zeros(size, dtype=bool)
    flags[np.asarray(tiles, dtype=np.int64)] = True
    return mask_of(flags)


def tiles_of(mask: int) -> list[int]:
    """Tile indices of a bit set, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class BitMesh:
    """Bit-set view of a :class:`ChipTarget` (cached per target, see :meth:`of`).

    Attributes
    ----------
    allowed : int
        Usable tiles.
    nbr : list of int
        Per tile, the usable tiles within ``hops`` (itself excluded).
    """

    _cache: ClassVar[weakref.WeakKeyDictionary[ChipTarget, BitMesh]] = weakref.WeakKeyDictionary()

    def __init__(self, target: ChipTarget) -> None:
        self.target = target
        w, h = target.width, target.height
        self.width, self.height, self.hops, self.size = w, h, target.hops, w * h
        self.full = (1 << self.size) - 1
        xs = np.arange(self.size) % w
        self.not_first_col = mask_of(xs != 0)
        self.not_last_col = mask_of(xs != w - 1)
        self.allowed = mask_of(target.allowed)
        self._balls: dict[tuple[int, int], int] = {}
        self.nbr: list[int] = [0] * self.size
        for t in np.flatnonzero(target.allowed).tolist():
            self.nbr[t] = self.ball(t, 1) & ~(1 << t)

    @classmethod
    def of(cls, target: ChipTarget) -> BitMesh:
        """The bit-set view of ``target``, built once per target."""
        hit = cls._cache.get(target)
        if hit is None:
            hit = cls._cache[target] = cls(target)
        return hit

    def manhattan_step(self, m: int) -> int:
        """Tiles at most one hop from a tile of ``m`` (blocked ones included)."""
        w = self.width
        return (
            m
            | ((m << 1) & self.not_first_col)
            | ((m >> 1) & self.not_last_col)
            | ((m << w) & self.full)
            | (m >> w)
        )

    def link_step(self, m: int) -> int:
        """``m`` plus the usable tiles linked (at most ``hops`` away) to a tile of ``m``."""
        out = m
        for _ in range(self.hops):
            out = self.manhattan_step(out)
        return (out & self.allowed) | m

    def ball(self, tile: int, links: int) -> int:
        """Usable tiles reachable from ``tile`` over at most ``links`` target links (cached).

        Two pattern vertices at distance ``d`` in the pattern must sit on tiles at most ``d``
        links apart, whatever the tiles in between hold.
        """
        key = (tile, links)
        hit = self._balls.get(key)
        if hit is None:
            hit = (1 << tile) if links == 0 else self.link_step(self.ball(tile, links - 1))
            self._balls[key] = hit
        return hit
