"""The same LBT sweep on the local process pool and on Ray with 1 and 2 workers.

Run: ``python bench/sweep_scale.py [--scenario traces/scenarios/ad_urban.json]
[--scales 1,2,4,6] [--seeds 2] [--policies hasp,prema,planaria,fcfs]`` (needs the ``ray``
extra).

Profiles are computed once before timing (every runner ships or forks them), so the times are
the replays alone: serial, local pool with 1 and 2 processes, and a local Ray cluster with 1 and
2 CPUs (one point per task). Prints wall seconds, speed-up over serial, and whether each result
equals the serial one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.trace_jsonl import read_scenario
from isosched.plan import PlanCache
from isosched.sim.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", type=Path, default=ROOT / "traces/scenarios/ad_urban.json")
    ap.add_argument("--hw", default="edge-8x8")
    ap.add_argument("--scales", default="1,2,4,6")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--policies", default="hasp,prema,planaria,fcfs")
    args = ap.parse_args()
    sc = read_scenario(args.scenario)
    hw = load_hardware(args.hw)
    policies = args.policies.split(",")
    scales = [float(x) for x in args.scales.split(",")]
    models = load_models(s.model for s in sc.streams)
    points = len(policies) * len(scales) * args.seeds
    print(
        f"{sc.name} on {hw.name}: {points} points "
        f"({len(policies)} policies x {len(scales)} scales x {args.seeds} seeds)"
    )

    def timed(label: str, **kw: Any) -> tuple[str, float, dict[str, Any]]:
        t0 = time.perf_counter()
        doc = sweep(sc, hw, policies, scales, args.seeds, models=models, cache=PlanCache(), **kw)
        return label, time.perf_counter() - t0, doc

    runs = [timed("serial", workers=1), timed("local pool, 2 processes", workers=2)]
    import ray

    from service.ray_runner import connect, ray_map

    for cpus in (1, 2):
        connect("local", cpus)
        runs.append(timed(f"Ray, {cpus} worker{'s' if cpus > 1 else ''}", executor=ray_map()))
        ray.shutdown()
    base = runs[0][1]
    print("| runner | wall s | speed-up vs serial | same result |")
    print("|---|---|---|---|")
    for label, wall, doc in runs:
        same = "yes" if doc == runs[0][2] else "NO"
        print(f"| {label} | {wall:.1f} | {base / wall:.2f}x | {same} |")


if __name__ == "__main__":
    main()
