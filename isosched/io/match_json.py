"""Read matcher inputs: tile-graph files and blocked-tile files (with held tiles)."""

from __future__ import annotations

from pathlib import Path

from isosched.errors import GraphError
from isosched.io.graph_json import read_json
from isosched.match.target import MatchInputError
from isosched.tilegraph import TileGraph, TileGraphError

__all__ = ["parse_mesh", "read_occupancy", "read_placement", "read_tilegraph"]

Coord = tuple[int, int]


def read_tilegraph(path: str | Path) -> TileGraph:
    """Read an ``isosched.tilegraph/v1`` file.

    Raises
    ------
    TileGraphError
        If the file is unreadable, not JSON or not a valid tile graph.
    """
    try:
        doc = read_json(path, "tile graph file")
    except GraphError as exc:
        raise TileGraphError(str(exc)) from None
    return TileGraph.from_doc(doc)


def read_occupancy(path: str | Path) -> tuple[list[Coord], dict[str, tuple[list[Coord], float]]]:
    """Read a blocked-tiles file, with the tiles of running jobs that may be taken.

    ``{"tiles": [[x, y], ...], "held": [{"job": "cam0#3", "tiles": [[x, y], ...], "cost": 2.5},
    ...]}``: ``tiles`` may not be used; each ``held`` job's tiles may be, at its ``cost`` (any
    unit; see :func:`isosched.match.placer.labelled_tiles`). ``held`` is optional.

    Returns
    -------
    blocked : list of (x, y)
    held : dict
        Job -> (tiles, cost), in file order.

    Raises
    ------
    MatchInputError
        If the file is unreadable or malformed (a job named twice included).
    """
    try:
        doc = read_json(path, "blocked-tiles file")
    except GraphError as exc:
        raise MatchInputError(str(exc)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tiles"), list):
        raise MatchInputError('a blocked-tiles file is {"tiles": [[x, y], ...], "held": [...]}')
    blocked = _coords(doc["tiles"], "blocked tiles")
    raw = doc.get("held", [])
    if not isinstance(raw, list):
        raise MatchInputError('"held" must be a list of {"job", "tiles", "cost"}')
    held: dict[str, tuple[list[Coord], float]] = {}
    for i, entry in enumerate(raw):
        where = f"held[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"job", "tiles", "cost"}:
            raise MatchInputError(f'{where} must be {{"job": ..., "tiles": [...], "cost": ...}}')
        job, tiles, cost = entry["job"], entry["tiles"], entry["cost"]
        if not isinstance(job, str) or not job:
            raise MatchInputError(f"{where}.job must be a non-empty string")
        if job in held:
            raise MatchInputError(f"{where}: job {job!r} is named twice")
        if not isinstance(tiles, list):
            raise MatchInputError(f"{where}.tiles must be a list of [x, y]")
        if isinstance(cost, bool) or not isinstance(cost, int | float):
            raise MatchInputError(f"{where}.cost must be a number")
        held[job] = (_coords(tiles, f"{where}.tiles"), float(cost))
    return blocked, held


def read_placement(path: str | Path) -> dict[str, list[int]]:
    """Read ``{"v0": [x, y], ...}``: a pattern's own placement (checked by the placer).

    Raises
    ------
    MatchInputError
        If the file is unreadable or not an object of ``[x, y]`` pairs of integers.
    """
    try:
        doc = read_json(path, "placement file")
    except GraphError as exc:
        raise MatchInputError(str(exc)) from None
    if not isinstance(doc, dict):
        raise MatchInputError('a placement file is {"v0": [x, y], ...}')
    tiles = _coords(list(doc.values()), "placement")
    return {str(v): [x, y] for v, (x, y) in zip(doc, tiles, strict=True)}


def _coords(tiles: list[object], what: str) -> list[Coord]:
    out = []
    for i, t in enumerate(tiles):
        if (
            not isinstance(t, list)
            or len(t) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in t)
        ):
            raise MatchInputError(f"{what}[{i}] must be a pair of integers [x, y]")
        out.append((t[0], t[1]))
    return out


def parse_mesh(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``8x8``).

    Raises
    ------
    MatchInputError
        If the text is not two positive integers joined by ``x``.
    """
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise MatchInputError(f"mesh must look like 8x8, got {text!r}")
    w, h = int(parts[0]), int(parts[1])
    if w < 1 or h < 1:
        raise MatchInputError(f"mesh sides must be positive, got {text!r}")
    return w, h
