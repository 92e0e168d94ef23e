"""What an import does not know for sure: counted in the graph's ``meta`` and summarised.

Every ONNX import records ``guessed_shape_layers`` (layers whose output shape was not given by
ONNX's inference, the file or a shape rule, and was guessed from a data input) and
``unknown_compute_layers`` (layers whose MACs or vector operations are not known for sure: an
op without converter, an ``If`` on a run-time condition, a loop without a constant trip count),
and names those layers with their reasons in ``uncertain_layers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from isosched.errors import GraphError
from isosched.io.onnx.context import Ctx

__all__ = [
    "MAX_UNCERTAIN_LISTED",
    "parse_dims",
    "uncertainty_counts",
    "uncertainty_line",
    "uncertainty_meta",
]


#: Layers named, with their reasons, in ``meta["uncertain_layers"]``.
MAX_UNCERTAIN_LISTED = 200


def uncertainty_meta(ctx: Ctx) -> dict[str, Any]:
    """The counts and reasons of the layers whose shape or work is not known for sure."""
    kinds = {lid: {k for k, _ in reasons} for lid, reasons in ctx.uncertain.items()}
    listed = {
        lid: "; ".join(f"{k}: {why}" for k, why in reasons)
        for lid, reasons in list(ctx.uncertain.items())[:MAX_UNCERTAIN_LISTED]
    }
    return {
        "guessed_shape_layers": sum("shape" in k for k in kinds.values()),
        "unknown_compute_layers": sum("compute" in k for k in kinds.values()),
        "uncertain_layers": listed,
    }


def uncertainty_counts(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(guessed_shape_layers, unknown_compute_layers)`` of a graph's meta; ``None`` if absent."""
    if "guessed_shape_layers" not in meta and "unknown_compute_layers" not in meta:
        return None
    return int(meta.get("guessed_shape_layers", 0)), int(meta.get("unknown_compute_layers", 0))


def uncertainty_line(meta: Mapping[str, Any]) -> str | None:
    """One line saying how many layers are uncertain, or ``None`` when none is."""
    counts = uncertainty_counts(meta)
    if counts is None or counts == (0, 0):
        return None
    shapes, compute = counts
    unknown = meta.get("unknown_ops") or {}
    ops = f" (ops without converter: {', '.join(sorted(unknown))})" if unknown else ""
    return (
        f"{shapes} layers have guessed shapes and {compute} layers unknown compute{ops}; "
        "MACs and latency may be wrong (the layers are named in meta.uncertain_layers)"
    )


def parse_dims(items: Iterable[str]) -> dict[str, int]:
    """``NAME=VALUE`` strings as ``{NAME: VALUE}`` (values positive integers).

    Raises
    ------
    GraphError
        For an item that is not ``NAME=VALUE`` with a positive integer value, or a name given
        twice with different values.
    """
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value.isdigit() or int(value) < 1 or len(value) > 10:
            raise GraphError(
                f"dimension {item[:100]!r}: expected NAME=VALUE with VALUE in 1..9,999,999,999"
            )
        if out.get(name, int(value)) != int(value):
            raise GraphError(f"dimension {name[:100]!r} given twice with different values")
        out[name] = int(value)
    return out
