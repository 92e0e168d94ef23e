"""Replay a trace under several policies and collect the contract's metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from isosched.cost import roofline_cycles
from isosched.errors import IsoschedError
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.plan.cache import PlanCache
from isosched.sim.engine import Run, Simulator
from isosched.sim.metrics import summarize
from isosched.sim.planbook import PlanBook
from isosched.sim.policies import check_policies, make_policy, needs_no_lcs_plans
from isosched.trace.generate import Trace

__all__ = ["REPLAY_SCHEMA", "isolated_latencies", "policy_kind", "replay"]

REPLAY_SCHEMA = "isosched.replay/v2"


def replay(
    trace: Trace,
    hw: Hardware,
    policies: list[str],
    models: Mapping[str, Graph] | None = None,
    *,
    plans: PlanBook | None = None,
    cache: PlanCache | None = None,
    progress: Callable[[str], None] | None = None,
    wall_budget_s: float = 600.0,
    label: str = "",
) -> tuple[dict[str, Any], dict[str, Run]]:
    """Replay ``trace`` under each policy.

    Parameters
    ----------
    trace, hw : Trace, Hardware
        What to replay, on which chip.
    policies : list of str
        Policy names.
    models : mapping name -> Graph, optional
        The graph of every model the trace names (not needed when ``plans`` is given).
    plans : PlanBook, optional
        Plans and profiles to use (and fill); a new one over ``models`` and ``cache`` otherwise.
    cache : PlanCache, optional
        Where plans are cached (default: memory only).
    progress : callable, optional
        One-line progress messages.
    wall_budget_s : float
        Wall-time budget per policy, seconds (finite, ≥ 0); a run cut short says so
        (``budget_exhausted``).
    label : str
        What the document's ``trace`` names when the trace's header has no ``scenario`` (the
        file's name, say).

    Raises
    ------
    IsoschedError
        Before any work, on a policy list that is not one (see
        :func:`~isosched.sim.policies.check_policies`) or a budget that is not a finite number
        ≥ 0; on a model of the trace without a graph.

    Returns
    -------
    (dict, dict)
        The ``isosched.replay/v2`` document and the runs by policy.
    """
    check_policies(policies)
    if not (math.isfinite(wall_budget_s) and wall_budget_s >= 0):
        raise IsoschedError(f"wall_budget_s must be a finite number ≥ 0, got {wall_budget_s!r}")
    if plans is None:
        plans = PlanBook(hw, models or {}, cache)
    names = {j.model for j in trace.jobs}
    for m in sorted(names):
        plans.graph(m)
    plans.warm(names, progress, no_lcs=any(needs_no_lcs_plans(p) for p in policies))
    runs: dict[str, Run] = {}
    alone = isolated_latencies(trace, plans)  # one baseline for every policy's antt and stp
    horizon_us = trace.header.get("horizon_us")
    doc: dict[str, Any] = {
        "schema": REPLAY_SCHEMA,
        "trace": trace.header.get("scenario") or label,
        "seed": trace.header.get("seed"),
        "hw": hw.name,
        "horizon_s": horizon_us / 1e6 if isinstance(horizon_us, int | float) else None,
        "policies": {},
    }
    for i, name in enumerate(policies):
        inner = None
        if progress is not None:
            outer = f"policy {i + 1}/{len(policies)}"
            progress(f"{outer} {name}: 0/{len(trace.jobs)} jobs released")

            def inner(msg: str, outer: str = outer) -> None:
                progress(f"{outer} {msg}")

        sim = Simulator(
            trace, hw, make_policy(name), plans, wall_budget_s=wall_budget_s, progress=inner
        )
        run = sim.run()
        runs[name] = run
        if doc["horizon_s"] is None:
            doc["horizon_s"] = run.duration_s
        doc["policies"][name] = summarize(run, alone)
    ref = doc["policies"].get("fcfs", {}).get("mean_finished_latency_ms")
    for m in doc["policies"].values():
        mine = m.get("mean_finished_latency_ms")
        m["speedup_vs_fcfs"] = ref / mine if ref and mine else None
    return doc, runs


def policy_kind(name: str) -> str:
    """``tss`` or ``lts``: how the policy's jobs execute."""
    return str(getattr(make_policy(name), "kind", "lts"))


def isolated_latencies(trace: Trace, plans: PlanBook, kind: str | None = None) -> dict[str, float]:
    """Each job's latency alone on the whole chip, µs.

    ``kind`` ``"tss"``: its TSS plan; ``"lts"``: layer by layer; ``None`` (what a replay's
    ``antt`` and ``stp`` divide by, for every policy alike): the faster of the two, the least
    time the chip needs for the job.
    """
    hw = plans.hw
    whole = (hw.width, hw.height)
    bw = hw.dram_bytes_per_cycle
    out = {}
    for j in trace.jobs:
        tss = lts = math.inf
        if kind in ("tss", None):
            t = plans.job_plan(j.model, whole).base_timing
            tss = hw.cycles_to_us(roofline_cycles(t.pieces, bw))
        if kind in ("lts", None):
            lts = plans.lts(j.model, hw.tiles, 1.0).latency_us
        out[j.job] = min(tss, lts)
    return out
