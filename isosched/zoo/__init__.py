"""Model zoo: builders and validated graphs of published DNNs (CNNs, detectors, transformers).

Use :func:`load_zoo_model` to get a validated :class:`~isosched.graph.Graph` by name,
:data:`ZOO` for the entries (source paper, input shape) and :func:`write_zoo` to export them.
"""

from isosched.zoo.builder import GraphBuilder
from isosched.zoo.registry import ZOO, ZooEntry, load_zoo_model, write_zoo, zoo_names

__all__ = ["ZOO", "GraphBuilder", "ZooEntry", "load_zoo_model", "write_zoo", "zoo_names"]
