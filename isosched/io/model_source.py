"""Resolve model arguments: zoo names, given graphs, and (command line only) graph files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from isosched.errors import UnknownModelError
from isosched.graph.model import Graph
from isosched.io.graph_json import read_graph

__all__ = ["MAX_MODELS", "load_model", "load_models", "named_models"]

#: Most distinct models one trace or scenario may name in :func:`named_models`.
MAX_MODELS = 64


def load_model(name_or_path: str | Path) -> Graph:
    """Load a zoo model by name, or a graph file (``.json``) or ONNX file (``.onnx``) by path.

    Reads the file system: for the command line only. Code serving clients uses
    :func:`named_models`, which never touches a file.

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


def named_models(
    names: Iterable[str], given: Mapping[str, Graph] | None = None
) -> dict[str, Graph]:
    """``{name: graph}`` where every name is a zoo model or a key of ``given``; reads no file.

    Raises
    ------
    UnknownModelError
        For the first name that is neither (a path is just an unknown name here), or when more
        than :data:`MAX_MODELS` distinct names are asked for.
    """
    from isosched.zoo import load_zoo_model, zoo_names

    wanted = sorted(set(names))
    if len(wanted) > MAX_MODELS:
        raise UnknownModelError(f"{len(wanted)} distinct models named; at most {MAX_MODELS}")
    known = set(zoo_names())
    out: dict[str, Graph] = {}
    for name in wanted:
        if given is not None and name in given:
            out[name] = given[name]
        elif name in known:
            out[name] = load_zoo_model(name)
        else:
            raise UnknownModelError(
                f"unknown model {name[:100]!r}: give a zoo model ({', '.join(sorted(known))}) "
                "or the id of an uploaded graph"
            )
    return out
