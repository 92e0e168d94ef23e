"""Every policy on the shipped scenarios: replay at scale 1 and the LBT-capacity sweep.

Run: ``python bench/results.py [--hw edge-8x8] [--scales ...] [--seeds 2]``; prints the Markdown
tables of docs/results.md. Equivalent to, per scenario:

    isosched replay traces/<scenario>.s7.jsonl --hw edge-8x8 --policy all --json
    isosched sweep traces/scenarios/<scenario>.json --hw edge-8x8 --scales ... --seeds 2 --json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.trace_jsonl import read_scenario, read_trace
from isosched.plan import PlanCache
from isosched.sim.policies import POLICY_NAMES
from isosched.sim.replay import replay
from isosched.sim.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hw", default="edge-8x8")
    ap.add_argument("--scenarios", default="ad_urban,ad_highway,ad_stress")
    ap.add_argument("--scales", default="0.5,1,2,3,4,6,8")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument(
        "--lts-via-dram",
        action="store_true",
        help="the paper's premise: LTS sends every intermediate tensor through DRAM",
    )
    ap.add_argument("--no-sweep", action="store_true", help="scale-1 replays only")
    args = ap.parse_args()
    hw = load_hardware(args.hw)
    if args.lts_via_dram:
        flow = hw.dataflow.model_copy(update={"lts_activations_via_dram": True})
        hw = hw.model_copy(update={"dataflow": flow, "name": f"{hw.name}+lts-via-dram"})
    policies = list(POLICY_NAMES)
    scales = [float(x) for x in args.scales.split(",")]

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    for name in args.scenarios.split(","):
        trace = read_trace(ROOT / "traces" / f"{name}.s7.jsonl")
        models = load_models(j.model for j in trace.jobs)
        doc, _ = replay(trace, hw, policies, models, cache=PlanCache(), progress=progress)
        print(f"\n### {name} on {hw.name}, scale 1 (trace seed 7, {len(trace.jobs)} jobs)\n")
        print(
            "| policy | satisfaction | critical | LBT /s | p50 ms | p99 ms | energy J | "
            "inferences/J | preemptions | library hits / online | charged decision p99 ms |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for p, m in doc["policies"].items():
            print(
                f"| {p} | {m['satisfaction']:.3f} | {m['critical_satisfaction']:.3f} | "
                f"{m['lbt_per_s']:.1f} | {m['p50_latency_ms'] or 0:.2f} | "
                f"{m['p99_latency_ms'] or 0:.2f} | {m['energy_mj'] / 1e3:.2f} | "
                f"{m['inferences_per_j']:.0f} | {m['preemptions']} | "
                f"{m['library_hits']} / {m['online_matches']} | "
                f"{m['decision_charged_p99_ms']:.3f} |"
            )
        if args.no_sweep:
            continue
        sw = sweep(
            read_scenario(ROOT / "traces" / "scenarios" / f"{name}.json"),
            hw,
            policies,
            scales,
            seeds=args.seeds,
            progress=progress,
            models=models,
            cache=PlanCache(),
        )
        print(
            f"\nLBT-capacity sweep ({args.seeds} seeds per point): satisfaction (critical "
            "satisfaction) by load scale\n"
        )
        print("| policy | LBT capacity | " + " | ".join(f"×{s:g}" for s in scales) + " |")
        print("|---|---|" + "---|" * len(scales))
        for p, d in sw["policies"].items():
            cells = " | ".join(
                f"{c['satisfaction']:.3f} ({c['critical_satisfaction']:.3f})" for c in d["curve"]
            )
            print(f"| {p} | {d['lbt_capacity']:g} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
