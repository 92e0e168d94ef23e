"""Planted matching instances: DNN-like tile graphs grown on free tiles of a mesh.

A connected region of free tiles is grown by a random walk; vertex ``i`` sits on the ``i``-th
tile of the walk, and edges are drawn only between vertices whose tiles are within ``hops`` of
each other, so the walk itself is a valid placement. Vertex ids are shuffled afterwards so the ids
reveal nothing of the planted placement.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from isosched.tilegraph import TileGraph

__all__ = ["PLANTED_KINDS", "PlantedInstance", "planted_instance"]

Kind = Literal["chain", "multibranch", "transformer"]
PLANTED_KINDS: tuple[str, ...] = ("chain", "multibranch", "transformer")
Coord = tuple[int, int]


@dataclass(frozen=True)
class PlantedInstance:
    """A pattern with a known placement.

    Attributes
    ----------
    pattern : TileGraph
        The tile graph (ids shuffled).
    blocked : list of (x, y)
        Blocked tiles of the mesh.
    planted : dict
        Vertex id -> tile: one valid placement.
    width, height, hops : int
        The mesh and the hop bound.
    """

    pattern: TileGraph
    blocked: list[Coord]
    planted: dict[str, Coord]
    width: int
    height: int
    hops: int


def planted_instance(
    width: int,
    height: int,
    vertices: int,
    hops: int = 2,
    blocked_fraction: float = 0.1,
    kind: str = "chain",
    seed: int = 0,
) -> PlantedInstance:
    """Grow a DNN-like tile graph on the free tiles of a W×H mesh.

    Parameters
    ----------
    width, height : int
        Mesh size.
    vertices : int
        Pattern size (at most the number of free tiles in the grown component).
    hops : int
        Largest hop distance of an edge.
    blocked_fraction : float
        Fraction of tiles blocked at random.
    kind : {"chain", "multibranch", "transformer"}
        The region is grown by a self-avoiding walk (a chain that forks where it gets stuck).
        ``chain`` adds residual skips from the previous four vertices (ResNet-like);
        ``multibranch`` fan-in joins from the previous six (Inception-like); ``transformer``
        denser joins from the previous eight (attention blocks).
    seed : int
        Random seed.

    Raises
    ------
    ValueError
        If the free tiles cannot hold ``vertices`` connected tiles.
    """
    if kind not in PLANTED_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(PLANTED_KINDS)}")
    rng = random.Random(seed)
    tiles = [(x, y) for y in range(height) for x in range(width)]
    blocked = set(rng.sample(tiles, round(blocked_fraction * len(tiles))))
    free = [t for t in tiles if t not in blocked]
    for _attempt in range(50):
        start = rng.choice(free)
        region, parent = _walk(start, blocked, width, height, vertices, rng)
        if len(region) == vertices:
            break
    else:
        raise ValueError(f"no connected region of {vertices} free tiles in a {width}x{height} mesh")
    # Extra edges join a vertex to a few recent ones (DNN edges are local in topological
    # order): residual skips for chains, fan-in joins for branch blocks, denser for attention.
    window, tries, p_edge = {
        "chain": (4, 1, 0.3),
        "multibranch": (6, 2, 0.4),
        "transformer": (8, 3, 0.5),
    }[kind]
    index = {t: i for i, t in enumerate(region)}
    edges: set[tuple[int, int]] = set()
    for i in range(1, vertices):
        edges.add((index[parent[region[i]]], i))
        x, y = region[i]
        recent = [
            j
            for j in range(max(0, i - window), i - 1)
            if abs(region[j][0] - x) + abs(region[j][1] - y) <= hops
        ]
        rng.shuffle(recent)
        for j in recent[:tries]:
            if rng.random() < p_edge:
                edges.add((j, i))
    labels = [f"t{k}" for k in range(vertices)]
    rng.shuffle(labels)
    order = list(range(vertices))
    rng.shuffle(order)  # vertex order in the pattern, unrelated to the growth order
    ids = [labels[i] for i in order]
    pattern = TileGraph.from_edges(
        ids, [(labels[a], labels[b], 1024 * rng.randint(1, 64)) for a, b in sorted(edges)]
    )
    planted = {labels[i]: region[i] for i in range(vertices)}
    return PlantedInstance(pattern, sorted(blocked), planted, width, height, hops)


def _walk(
    start: Coord, blocked: set[Coord], width: int, height: int, size: int, rng: random.Random
) -> tuple[list[Coord], dict[Coord, Coord]]:
    """Self-avoiding random walk over free tiles; when stuck, fork from the latest tile with room.

    Returns the tiles in walk order and, for each tile after the first, the tile it came from.
    """
    region = [start]
    inside = {start}
    parent: dict[Coord, Coord] = {}

    def free_steps(t: Coord) -> list[Coord]:
        x, y = t
        return [
            nb
            for nb in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1))
            if 0 <= nb[0] < width and 0 <= nb[1] < height and nb not in blocked and nb not in inside
        ]

    stack = [start]
    while len(region) < size and stack:
        here = stack[-1]
        steps = free_steps(here)
        if not steps:
            stack.pop()
            continue
        nxt = rng.choice(steps)
        inside.add(nxt)
        region.append(nxt)
        parent[nxt] = here
        stack.append(nxt)
    return region, parent
