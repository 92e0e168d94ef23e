"""Graph IR: the ``isosched.graph/v1`` file schema and the validated :class:`Graph`."""

from isosched.graph.model import Graph, Layer, build_graph, parse_graph
from isosched.graph.ops import COMPUTE_OPS, OP_RULES, OpResult, infer_op
from isosched.graph.schema import DTYPE_BYTES, GRAPH_SCHEMA, GraphFile

__all__ = [
    "COMPUTE_OPS",
    "DTYPE_BYTES",
    "GRAPH_SCHEMA",
    "OP_RULES",
    "Graph",
    "GraphFile",
    "Layer",
    "OpResult",
    "build_graph",
    "infer_op",
    "parse_graph",
]
