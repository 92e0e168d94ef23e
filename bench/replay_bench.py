"""Replay wall time with plans cached, library hit rates and charged decision latency.

For each scenario and scale: replay under IsoSched and HASP (the non-preemptive TSS peer on the
same simulator, in the same run), plans read from the plan cache (warmed first, not timed).
Prints a Markdown table for docs/performance.md.

Run: ``python bench/replay_bench.py [--hw edge-8x8] [--cases ad_urban:1,ad_stress:4]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.trace_jsonl import read_scenario
from isosched.plan import PlanCache
from isosched.sim import PlanBook, replay
from isosched.trace import generate_trace

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hw", default="edge-8x8")
    ap.add_argument(
        "--cases", default="ad_urban:1,ad_highway:1,ad_stress:1,ad_stress:2,ad_stress:4"
    )
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    hw = load_hardware(args.hw)
    print(
        "| scenario | scale | jobs | policy | replay wall s | vs HASP | placements | "
        "library hits | online matches | hit rate | charged p99 ms | wall p99 ms | "
        "preemptions | satisfaction | critical |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        name, scale = case.split(":")
        sc = read_scenario(ROOT / "traces" / "scenarios" / f"{name}.json")
        trace = generate_trace(sc, seed=args.seed, scale=float(scale))
        book = PlanBook(hw, load_models(j.model for j in trace.jobs), PlanCache())
        book.warm({j.model for j in trace.jobs})
        walls = {}
        rows = []
        for policy in ("isosched", "hasp"):
            t0 = time.perf_counter()
            doc, runs = replay(trace, hw, [policy], plans=book, wall_budget_s=1e9)
            assert not runs[policy].budget_exhausted
            walls[policy] = time.perf_counter() - t0
            rows.append((policy, doc["policies"][policy]))
        for policy, m in rows:
            hits = m["library_hits"] / m["placements"] if m["placements"] else 0.0
            print(
                f"| {name} | {scale} | {m['jobs']} | {policy} | {walls[policy]:.2f} | "
                f"{walls[policy] / walls['hasp']:.1f}x | {m['placements']} | "
                f"{m['library_hits']} | {m['online_matches']} | "
                f"{hits:.3f} | {m['decision_charged_p99_ms']:.3f} | "
                f"{m['decision_wall_p99_ms']:.2f} | {m['preemptions']} | "
                f"{m['satisfaction']:.3f} | {m['critical_satisfaction']:.3f} |"
            )


if __name__ == "__main__":
    main()
