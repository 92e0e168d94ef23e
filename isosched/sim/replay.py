"""Replay a trace under several policies and collect the contract's metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from isosched.hw.model import Hardware
from isosched.io.model_source import load_model
from isosched.sim.engine import Run, Simulator
from isosched.sim.metrics import summarize
from isosched.sim.policies import make_policy
from isosched.sim.policies.common import shapes
from isosched.sim.profiles import lts_profile, tss_profile
from isosched.trace.generate import Trace

__all__ = ["REPLAY_SCHEMA", "replay", "warm_profiles"]

REPLAY_SCHEMA = "isosched.replay/v1"


def warm_profiles(
    models: set[str], hw: Hardware, progress: Callable[[str], None] | None = None
) -> None:
    """Compute every profile a replay can look up, before it starts.

    Plans and layer costs per (model, region) are computed once: the policies' decisions then
    measure lookups and online solves only (DESIGN.md §6).
    """
    for model in sorted(models):
        load_model(model)
        if progress is not None:
            progress(f"profiling {model} on every region shape")
        for shape in shapes(hw):
            tss_profile(model, hw, shape)
            k = shape[0] * shape[1]
            lts_profile(model, hw, k, k / hw.tiles)
            lts_profile(model, hw, k, 1.0)


def replay(
    trace: Trace,
    hw: Hardware,
    policies: list[str],
    progress: Callable[[str], None] | None = None,
    wall_budget_s: float = 600.0,
) -> tuple[dict[str, Any], dict[str, Run]]:
    """Replay ``trace`` under each policy.

    Returns
    -------
    (dict, dict)
        The ``isosched.replay/v1`` document and the runs by policy.

    Raises
    ------
    UnknownModelError, GraphError
        If a job names a model that cannot be loaded.
    """
    models = sorted({j.model for j in trace.jobs})
    for model in models:
        load_model(model)
    warm_profiles(set(models), hw, progress)
    runs: dict[str, Run] = {}
    doc: dict[str, Any] = {
        "schema": REPLAY_SCHEMA,
        "trace": trace.header.get("scenario", ""),
        "seed": trace.header.get("seed"),
        "hw": hw.name,
        "policies": {},
    }
    for i, name in enumerate(policies):
        inner = None
        if progress is not None:
            outer = f"policy {i + 1}/{len(policies)}"
            progress(f"{outer} {name}: 0/{len(trace.jobs)} jobs released")

            def inner(msg: str, outer: str = outer) -> None:
                progress(f"{outer} {msg}")

        sim = Simulator(trace, hw, make_policy(name), wall_budget_s=wall_budget_s, progress=inner)
        run = sim.run()
        runs[name] = run
        doc["policies"][name] = summarize(run, isolated_latencies(trace, hw, policy_kind(name)))
    ref = doc["policies"].get("fcfs", {}).get("mean_latency_ms")
    for m in doc["policies"].values():
        mine = m.get("mean_latency_ms")
        m["speedup_vs_fcfs"] = ref / mine if ref and mine else None
    return doc, runs


def policy_kind(name: str) -> str:
    """``tss`` or ``lts``: how the policy's jobs execute."""
    return str(getattr(make_policy(name), "kind", "lts"))


def isolated_latencies(trace: Trace, hw: Hardware, kind: str) -> dict[str, float]:
    """Each job's latency alone on the whole chip (TSS plan or LTS layer by layer), µs."""
    whole = (hw.width, hw.height)
    out = {}
    for j in trace.jobs:
        if kind == "tss":
            out[j.job] = tss_profile(j.model, hw, whole).latency_us
        else:
            out[j.job] = lts_profile(j.model, hw, hw.tiles, 1.0).latency_us
    return out
