"""Scenarios (periodic DNN streams) and the traces generated from them."""

from isosched.trace.generate import TRACE_SCHEMA, Job, Trace, generate_trace
from isosched.trace.scenario import SCENARIO_SCHEMA, Scenario, ScenarioError, Stream, parse_scenario

__all__ = [
    "SCENARIO_SCHEMA",
    "TRACE_SCHEMA",
    "Job",
    "Scenario",
    "ScenarioError",
    "Stream",
    "Trace",
    "generate_trace",
    "parse_scenario",
]
