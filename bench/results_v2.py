"""Every policy on shipped scenarios at light and contended load, under both physics settings.

Prints Markdown tables for docs/results.md: per (scenario, scale) and policy, satisfaction,
critical satisfaction, p50 latency, energy per inference and preemptions; once with LTS keeping
activations on-chip (the default) and once with the paper's premise (every LTS intermediate
through DRAM, ``--lts-via-dram`` in bench/results.py).

Run: ``python bench/results_v2.py [--cases ad_urban:1,ad_urban:8,ad_stress:1,ad_stress:4]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.trace_jsonl import read_scenario
from isosched.plan import PlanCache
from isosched.sim import POLICY_NAMES, PlanBook, replay
from isosched.trace import generate_trace

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hw", default="edge-8x8")
    ap.add_argument("--cases", default="ad_urban:1,ad_urban:8,ad_stress:1,ad_stress:4")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=7200.0,
        help="wall budget per replay, s (a replay cut short is marked, never reported as a result)",
    )
    args = ap.parse_args()
    base = load_hardware(args.hw)
    flow = base.dataflow.model_copy(update={"lts_activations_via_dram": True})
    premise = base.model_copy(update={"dataflow": flow, "name": f"{base.name}+lts-via-dram"})
    for hw, label in ((base, "one physics (LTS activations on-chip)"), (premise, "paper premise")):
        print(f"\n### {label}: {hw.name}\n")
        print(
            "| scenario | scale | policy | satisfaction | critical | p50 ms | mJ/inference | "
            "preemptions |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for case in args.cases.split(","):
            name, scale = case.split(":")
            sc = read_scenario(ROOT / "traces" / "scenarios" / f"{name}.json")
            trace = generate_trace(sc, seed=7, scale=float(scale))
            book = PlanBook(hw, load_models(j.model for j in trace.jobs), PlanCache())
            policies = list(POLICY_NAMES)
            doc, runs = replay(trace, hw, policies, plans=book, wall_budget_s=args.budget_s)
            cut = {p for p, r in runs.items() if r.budget_exhausted}
            for p, m in doc["policies"].items():
                p50 = m["p50_latency_ms"]
                per = m["energy_mj"] / max(m["finished"], 1)
                print(
                    f"| {name} | {scale} | {p} | {m['satisfaction']:.3f} | "
                    f"{m['critical_satisfaction']:.3f} | "
                    f"{'–' if p50 is None else f'{p50:.2f}'} | {per:.2f} | {m['preemptions']} |"
                    + (" (cut short by the wall budget: not a result)" if p in cut else "")
                )


if __name__ == "__main__":
    main()
