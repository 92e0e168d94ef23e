"""Wall time of a multi-seed sweep (issue 16: 5 seeds × 6 scales × 7 policies in ≤ 5 min).

Run: ``python bench/sweep_speed.py [--scenario ad_urban] [--hw edge-8x8]
[--scales 0.5,1,2,4,6,8] [--seeds 5] [--workers 2] [--profile POLICY:SCALE]
[--time POLICY:SCALE,... [--repeat N]]``; ``ISOSCHED_PURE_PYTHON=1`` times the pure-Python
simulator instead of the mypyc build.

Plans are loaded from the plan cache and the cache is warmed before timing (the target is "with
a warm plan cache"). Prints the wall time of the grid plus the capacity bisection, the points
run, the load average (the machine may be shared) and the CPU time of the pool's workers (less
sensitive to other load than the wall time). ``--profile isosched:8`` prints a cProfile of that
one point instead; ``--time planaria:8,moca:8`` times those points alone (run it at two commits
to compare).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import time

from isosched import native
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.scenario_library import load_scenario
from isosched.plan import PlanCache
from isosched.sim import POLICY_NAMES
from isosched.sim.sweep import plan_book, run_point, sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="ad_urban")
    ap.add_argument("--hw", default="edge-8x8")
    ap.add_argument("--scales", default="0.5,1,2,4,6,8")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--policies", default=",".join(POLICY_NAMES))
    ap.add_argument("--profile", default=None, help="POLICY:SCALE: profile one point (seed 0)")
    ap.add_argument(
        "--time",
        default=None,
        help="POLICY:SCALE[,...]: wall time of these points (seed 0), one after the other, "
        "best of --repeat",
    )
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    hw = load_hardware(args.hw)
    models = load_models(s.model for s in sc.streams)
    book = plan_book(hw, models, PlanCache())
    t0 = time.perf_counter()
    book.warm({s.model for s in sc.streams}, None)
    print(f"plan cache warm-up: {time.perf_counter() - t0:.1f} s")
    # As the sweep's pool workers do: the warm plan book out of the collector's walks.
    gc.collect()
    gc.freeze()
    if args.profile:
        policy, scale = args.profile.split(":")
        prof = cProfile.Profile()
        prof.enable()
        run_point(sc, hw, policy, float(scale), 0)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return
    if args.time:
        for item in args.time.split(","):
            policy, scale = item.split(":")
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                m = run_point(sc, hw, policy, float(scale), 0)
                best = min(best, time.perf_counter() - t0)
            print(
                f"{policy} x{scale}: {best:.1f} s (satisfaction {m['satisfaction']:.4f}, "
                f"load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        return
    policies = args.policies.split(",")
    scales = [float(x) for x in args.scales.split(",")]
    load0 = os.getloadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    doc = sweep(sc, hw, policies, scales, args.seeds, workers=args.workers, models=models)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    load1 = os.getloadavg()
    grid = len(policies) * len(scales) * args.seeds
    print(
        f"{sc.name} on {hw.name}: {len(policies)} policies x {len(scales)} scales x "
        f"{args.seeds} seeds = {grid} grid points + {doc['points'] - grid} bisection points"
    )
    print(f"wall {wall:.1f} s, {args.workers} workers, load {load0[0]:.1f} -> {load1[0]:.1f}")
    compiled = native.compiled_modules()
    print(
        f"simulator: {'compiled (mypyc)' if compiled else 'pure Python'}, "
        f"{len(compiled)}/{len(native.NATIVE_MODULES)} modules compiled"
    )
    # CPU time of the pool's workers (counted when the pool is joined; 0 with --workers 1, when
    # the points run in this process): less sensitive to a shared machine than the wall time.
    print(f"workers' CPU {cpu:.1f} s ({cpu / max(args.workers, 1):.1f} s per worker)")
    print("| policy | LBT capacity | censored |")
    print("|---|---|---|")
    for p, body in doc["policies"].items():
        print(f"| {p} | {body['lbt_capacity']:.3g} | {body['lbt_capacity_censored']} |")


if __name__ == "__main__":
    main()
