"""Weight detection: which graph inputs without data are parameters rather than data.

Weight-free exports carry their weights as typed graph inputs; they are recognised by the
operand positions that hold parameters, looking through layout and cast ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from isosched.io.onnx.common import Shape

__all__ = ["weight_inputs"]


#: Operand positions that hold parameters, per op type.
_WEIGHT_OPERANDS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "ConvInteger": (1,),
    "QLinearConv": (3, 8),
    "Gemm": (1, 2),
    "BatchNormalization": (1, 2, 3, 4),
    "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2),
    "LayerNormalization": (1, 2),
    "RMSNormalization": (1,),
    "SimplifiedLayerNormalization": (1,),
    "PRelu": (1,),
    "SkipLayerNormalization": (2, 3, 4),
    "SkipSimplifiedLayerNormalization": (2, 3, 4),
    "EmbedLayerNormalization": (2, 3, 4, 5, 6),
    "Attention": (1, 2),
    "BiasGelu": (1,),
    "FastGelu": (1,),
    "QGemm": (3, 6),
    "MatMulNBits": (1, 2, 3),
    "LSTM": (1, 2, 3),
    "GRU": (1, 2, 3),
    "RNN": (1, 2, 3),
}


_PASS_THROUGH = frozenset(
    {
        "Transpose",
        "Cast",
        "CastLike",
        "Identity",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "DequantizeLinear",
        "Flatten",
    }
)


def weight_inputs(graph: Any, shapes: Mapping[str, Shape | None], inits: set[str]) -> set[str]:
    """Graph inputs (without initializer) used as parameters rather than data."""
    producer = {o: n for n in graph.node for o in n.output if o}
    candidates = {i.name for i in graph.input} - inits

    def source(name: str) -> str | None:
        seen = 0
        while name and name not in candidates and seen < 16:
            node = producer.get(name)
            if node is None or node.op_type not in _PASS_THROUGH or not node.input:
                return None
            name = node.input[0]
            seen += 1
        return name if name in candidates else None

    def rank(name: str) -> int | None:
        s = shapes.get(name)
        return None if s is None else len(s)

    found: set[str] = set()
    for node in graph.node:
        op = node.op_type
        positions: list[int] = list(_WEIGHT_OPERANDS.get(op, ()))
        if op in ("MatMul", "MatMulInteger", "FusedMatMul") and len(node.input) > 1:
            if rank(node.input[1]) in (1, 2):
                positions.append(1)
        elif op == "Gather" and len(node.input) > 1:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            table = shapes.get(node.input[0])
            if axis == 0 and table is not None and len(table) == 2 and table[0] > 1:
                positions.append(0)
        elif op in ("Add", "Sub", "Mul", "Div") and len(node.input) == 2:
            r0, r1 = rank(node.input[0]), rank(node.input[1])
            if r0 is not None and r1 is not None and r0 != r1:
                positions.append(0 if r0 < r1 else 1)
        for p in positions:
            if p < len(node.input):
                src = source(node.input[p])
                if src is not None:
                    found.add(src)
    return found
