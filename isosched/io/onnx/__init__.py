"""Import ONNX models as ``isosched.graph/v1`` graph documents.

The reader maps every ONNX node that computes on activations to one (or a few) layers of the
graph IR and folds away what does not: weights, constants and shape arithmetic. Weights are
optional: a model may carry them as initializers, or as typed graph inputs with no data (the
weight-free exports in ``models/onnx/``); only their shapes are used.

Conventions
-----------
* The leading batch dimension is dropped (batch 1 is assumed): an ONNX tensor ``[1, C, H, W]``
  becomes ``[C, H, W]`` and ``[1, S, D]`` becomes ``[S, D]``. A tensor whose leading dimension is
  not 1 (a reshaped ``[heads, S, d]`` in attention) keeps all its dimensions.
* Each layer's parameters are checked against the IR's own shape rules
  (:func:`isosched.graph.ops.infer_op`) before it is emitted. When the faithful mapping does not
  reproduce ONNX's inferred output shape, the node becomes a ``generic`` layer with that shape
  and an estimate of its MACs, so that totals stay right; the reason is kept in
  ``meta["notes"]``.
* Operators without a converter become ``generic`` layers too, with an
  :class:`UnknownOpWarning`; the import never fails because of an unknown operator, but it
  says what it does not know: ``meta`` counts the layers with guessed shapes and with unknown
  compute (:mod:`isosched.io.onnx.uncertainty`).

Modules
-------
``reader``
    Entry points and the conversion loop.
``shapes``, ``folding``, ``weights``
    Shape inference, constant folding and weight detection on the ONNX model.
``contrib``
    Output shapes of onnxruntime's ``com.microsoft`` ops.
``uncertainty``
    The counts of what an import guessed, and ``NAME=VALUE`` dimension arguments.
``context``, ``common``
    The conversion state and the helpers shared by the converters.
``convert_*``
    The converters, by kind of op; ``registry`` maps op types to them.
"""

from isosched.io.onnx.reader import onnx_to_graph_doc, parse_onnx, read_onnx
from isosched.io.onnx.registry import CONTRIB_CONVERTERS, CONVERTERS, UnknownOpWarning
from isosched.io.onnx.uncertainty import parse_dims, uncertainty_counts, uncertainty_line

__all__ = [
    "CONTRIB_CONVERTERS",
    "CONVERTERS",
    "UnknownOpWarning",
    "onnx_to_graph_doc",
    "parse_dims",
    "parse_onnx",
    "read_onnx",
    "uncertainty_counts",
    "uncertainty_line",
]
