"""Discrete-event replay of multi-DNN traces under scheduling policies."""

from isosched.native import install_guard

# The hot modules below run compiled when a current mypyc build exists, else from source
# (isosched.native; ISOSCHED_PURE_PYTHON=1 forces the sources). Before any of them is imported.
install_guard()

from isosched.sim.engine import JobState, Policy, Run, Simulator  # noqa: E402
from isosched.sim.metrics import job_record, summarize  # noqa: E402
from isosched.sim.planbook import PlanBook  # noqa: E402
from isosched.sim.policies import POLICY_NAMES, make_policy, parse_policies  # noqa: E402
from isosched.sim.replay import REPLAY_SCHEMA, replay  # noqa: E402

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
