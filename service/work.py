"""Functions the runner executes in worker processes (plain data in, plain data out)."""

from __future__ import annotations

from typing import Any

from isosched.graph import parse_graph
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_model
from isosched.plan import plan_model, plan_to_doc
from isosched.sim.replay import replay
from isosched.sim.sweep import sweep
from isosched.trace import parse_scenario
from service.traces import parse_trace_text

__all__ = ["plan_job", "replay_job", "sweep_job"]


def plan_job(
    hw: str, graph: dict[str, Any] | None = None, model: str | None = None
) -> dict[str, Any]:
    """Plan a stored graph document or a zoo model on a hardware preset."""
    g = parse_graph(graph) if graph is not None else load_model(str(model))
    return plan_to_doc(plan_model(g, load_hardware(hw)))


def replay_job(trace: str, hw: str, policies: list[str]) -> dict[str, Any]:
    """Replay a trace (JSON Lines text) under policies; the replay document."""
    doc, _ = replay(parse_trace_text(trace), load_hardware(hw), policies)
    return doc


def sweep_job(
    scenario: dict[str, Any], hw: str, policies: list[str], scales: list[float], seeds: int
) -> dict[str, Any]:
    """An LBT sweep of a scenario document (one worker: the runner already parallelises jobs)."""
    return sweep(parse_scenario(scenario), load_hardware(hw), policies, scales, seeds, workers=1)
