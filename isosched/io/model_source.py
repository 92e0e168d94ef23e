"""Resolve a model argument: a zoo name or a graph file path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from isosched.errors import UnknownModelError
from isosched.graph.model import Graph
from isosched.io.graph_json import read_graph

__all__ = ["load_model", "load_models"]


def load_model(name_or_path: str | Path) -> Graph:
    """Load a zoo model by name, or a graph file (``.json``) or ONNX file (``.onnx``) by path.

    Raises
    ------
    UnknownModelError
        If the argument is neither a zoo name nor an existing file.
    GraphError
        If the file is not a valid graph.
    """
    from isosched.zoo import load_zoo_model, zoo_names

    name = str(name_or_path)
    if name in zoo_names():
        return load_zoo_model(name)
    path = Path(name)
    if path.is_file():
        if path.suffix.lower() == ".onnx":
            from isosched.graph.model import parse_graph
            from isosched.io.onnx import read_onnx

            return parse_graph(read_onnx(path))
        return read_graph(path)
    raise UnknownModelError(
        f"unknown model {name!r}: not a zoo model ({', '.join(zoo_names())}) and not a file"
    )


def load_models(names: Iterable[str]) -> dict[str, Graph]:
    """``{name: graph}`` for every model argument in ``names`` (see :func:`load_model`)."""
    return {n: load_model(n) for n in sorted(set(names))}
