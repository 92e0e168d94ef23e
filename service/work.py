"""Functions the runner executes in worker processes (plain data in, plain data out)."""

from __future__ import annotations

from typing import Any

from isosched.graph import parse_graph
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_model
from isosched.plan import plan_model, plan_to_doc

__all__ = ["plan_job"]


def plan_job(
    hw: str, graph: dict[str, Any] | None = None, model: str | None = None
) -> dict[str, Any]:
    """Plan a stored graph document or a zoo model on a hardware preset."""
    g = parse_graph(graph) if graph is not None else load_model(str(model))
    return plan_to_doc(plan_model(g, load_hardware(hw)))
