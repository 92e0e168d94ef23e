"""Discrete-event replay of multi-DNN traces under scheduling policies."""

from isosched.sim.engine import JobState, Policy, Run, Simulator
from isosched.sim.metrics import job_record, summarize
from isosched.sim.planbook import PlanBook
from isosched.sim.policies import POLICY_NAMES, make_policy, parse_policies
from isosched.sim.replay import REPLAY_SCHEMA, replay

__all__ = [
    "POLICY_NAMES",
    "REPLAY_SCHEMA",
    "JobState",
    "PlanBook",
    "Policy",
    "Run",
    "Simulator",
    "job_record",
    "make_policy",
    "parse_policies",
    "replay",
    "summarize",
]
