"""Read matcher inputs: tile-graph files and blocked-tile files."""

from __future__ import annotations

from pathlib import Path

from isosched.errors import GraphError
from isosched.io.graph_json import read_json
from isosched.match.target import MatchInputError
from isosched.tilegraph import TileGraph, TileGraphError

__all__ = ["parse_mesh", "read_blocked", "read_tilegraph"]


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


def read_blocked(path: str | Path) -> list[tuple[int, int]]:
    """Read ``{"tiles": [[x, y], ...]}``.

    Raises
    ------
    MatchInputError
        If the file is unreadable or malformed.
    """
    try:
        doc = read_json(path, "blocked-tiles file")
    except GraphError as exc:
        raise MatchInputError(str(exc)) from None
    tiles = doc.get("tiles") if isinstance(doc, dict) else None
    if not isinstance(tiles, list):
        raise MatchInputError('a blocked-tiles file is {"tiles": [[x, y], ...]}')
    out = []
    for i, t in enumerate(tiles):
        if (
            not isinstance(t, list)
            or len(t) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in t)
        ):
            raise MatchInputError(f"blocked tiles[{i}] must be a pair of integers [x, y]")
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
