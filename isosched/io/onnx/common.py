"""Shared types and helpers of the ONNX reader.

Activations and shapes (the leading batch dimension of 1 is dropped in the IR), node
attributes and labels, model copies and topological order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import onnx

from isosched.errors import GraphError

__all__ = [
    "Act",
    "Array",
    "Shape",
    "attrs",
    "copy_model",
    "drop_batch",
    "implicit_inputs",
    "ints",
    "neg_axis",
    "node_base",
    "node_inputs",
    "node_label",
    "numel",
    "str_attr",
    "toposort",
]


Shape = tuple[int, ...]


Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Act:
    """An activation: the output of a layer.

    ``full`` is the ONNX shape (batch included); ``ir`` the shape of the producing layer.
    """

    layer: str
    full: Shape
    ir: Shape


def numel(shape: Iterable[int]) -> int:
    """Number of elements of a tensor of this shape."""
    return math.prod(shape)


def drop_batch(full: Sequence[int]) -> Shape:
    """IR shape of an ONNX tensor: the leading batch dimension of 1 removed."""
    if len(full) >= 2 and full[0] == 1:
        return tuple(int(d) for d in full[1:])
    if not full:
        return (1,)
    return tuple(int(d) for d in full)


def neg_axis(axis: int, rank: int) -> int:
    """The same axis counted from the end (valid both with and without the batch dim)."""
    return axis - rank if axis >= 0 else axis


def attrs(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (unreadable ones are skipped)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        try:
            out[a.name] = onnx.helper.get_attribute_value(a)
        except Exception:
            continue
    return out


def ints(value: Any, default: Sequence[int]) -> list[int]:
    """An attribute as a list of ints, or ``default`` when absent."""
    if value is None:
        return list(default)
    return [int(v) for v in value]


def str_attr(value: Any, default: str) -> str:
    """An attribute as a string, or ``default`` when absent."""
    if value is None:
        return default
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def node_label(node: Any) -> str:
    """How a node is named in messages."""
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def node_base(node: Any) -> str:
    """Base of the layer ids made for a node: its name, else its first output."""
    return str(node.name or (node.output[0] if node.output else node.op_type))


def copy_model(model: Any) -> Any:
    """A deep copy of an ONNX model."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _subgraphs(node: Any) -> list[Any]:
    out = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def implicit_inputs(node: Any) -> list[str]:
    """Tensors of the enclosing graph that a node's subgraphs (``If``, ``Loop``, ``Scan``) read."""
    found: dict[str, None] = {}

    def walk(graph: Any, outer_defined: set[str]) -> None:
        defined = set(outer_defined)
        defined.update(i.name for i in graph.input)
        defined.update(t.name for t in graph.initializer)
        defined.update(t.name for t in graph.sparse_initializer)
        for n in graph.node:
            for i in n.input:
                if i and i not in defined:
                    found[i] = None
            for sub in _subgraphs(n):
                walk(sub, defined)
            defined.update(o for o in n.output if o)

    for g in _subgraphs(node):
        walk(g, set())
    return list(found)


def node_inputs(node: Any) -> list[str]:
    """Every tensor a node reads: its inputs, then what its subgraphs read from outside."""
    explicit = [i for i in node.input if i]
    if not _subgraphs(node):
        return explicit
    return explicit + [i for i in implicit_inputs(node) if i not in explicit]


def toposort(graph: Any, known: set[str]) -> list[Any]:
    """The graph's nodes in topological order, given the tensors ``known`` at the start.

    A node that holds subgraphs waits for the outer tensors they read, too.
    """
    nodes = list(graph.node)
    avail = set(known)
    producers = {o for n in nodes for o in n.output if o}
    reads = {id(n): node_inputs(n) for n in nodes}
    for n in nodes:
        for i in reads[id(n)]:
            if i and i not in avail and i not in producers:
                raise GraphError(f"{node_label(n)} reads undefined tensor {i!r}")
    order: list[Any] = []
    pending = nodes
    while pending:
        rest = []
        for n in pending:
            if all(not i or i in avail for i in reads[id(n)]):
                order.append(n)
                avail.update(o for o in n.output if o)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise GraphError(f"ONNX graph has a cycle through {node_label(rest[0])}")
        pending = rest
    return order
