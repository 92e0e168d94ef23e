"""Calibrate the per-unit decision costs of the hardware file's ``scheduler`` section.

Measures, on this machine, the host time of the work a scheduling decision counts: testing one
stored placement against the occupancy map, one online-matcher search node, and one unit of
CP-SAT deterministic time. The simulator charges decisions from these numbers (never from wall
time), so they are measured once per machine class and stored as the defaults in
``isosched/hw/model.py`` (``Scheduler``); docs/simulator.md records the run.

Run: ``python bench/calibrate_decisions.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from isosched.hw.model import Scheduler
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.match.placer import ONLINE_ENGINE, place
from isosched.plan import PlanCache
from isosched.plan.multijob import JobDemand, allocate_jobs
from isosched.sim.planbook import PlanBook


def _occupied(rng: random.Random, tiles: int, fraction: float) -> int:
    free = (1 << tiles) - 1
    for t in rng.sample(range(tiles), int(fraction * tiles)):
        free &= ~(1 << t)
    return free


def _ns_per(items: Sequence[tuple[Any, ...]], one: Callable[..., float]) -> float:
    """Host time per unit of work, ns: ``one(*item)`` for every item returns the units it did.

    Only the calls are timed (a wall time measured and reported, never fed into a result).
    """
    units = 0.0
    t0 = time.perf_counter()
    for item in items:
        units += one(*item)
    return (time.perf_counter() - t0) * 1e9 / max(units, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--engine", default=ONLINE_ENGINE, help="online engine whose node is timed (placer default)"
    )
    args = ap.parse_args()
    hw = load_hardware("edge-8x8")
    models = load_models(["resnet50", "mobilenetv2", "yolov3"])
    book = PlanBook(hw, models, PlanCache())
    book.warm(set(models))
    rng = random.Random(0)
    lookup_ns, node_ns, dtime_ns = [], [], []
    for _ in range(args.repeat):
        # Library lookups: every image of every plan against random partly occupied chips
        # (the chips drawn before the clock starts: only the placer's calls are timed).
        calls = [
            (book.job_plan(model, shape), book.library(model, shape), _occupied(rng, hw.tiles, f))
            for model in sorted(models)
            for shape in book.budgets
            for f in (0.2, 0.5, 0.8)
        ]
        lookup_ns.append(
            _ns_per(
                calls,
                lambda plan, lib, free: (
                    place(
                        plan.pattern,
                        plan.hops,
                        free,
                        hw.width,
                        hw.height,
                        library=lib,
                        online=False,
                    ).lookups
                ),
            )
        )
        # Matcher nodes: online matches of 8- and 16-tile plans on partly occupied chips.
        searches = [
            (book.job_plan(model, shape), _occupied(rng, hw.tiles, f))
            for model in sorted(models)
            for shape in book.budgets[-3:]
            for f in (0.3, 0.5)
        ]
        node_ns.append(
            _ns_per(
                searches,
                lambda plan, free: (
                    place(
                        plan.pattern,
                        plan.hops,
                        free,
                        hw.width,
                        hw.height,
                        node_budget=300,
                        seed=0,
                        engine=args.engine,
                    ).nodes
                ),
            )
        )
        # CP-SAT: the multi-job model on 2-8 competing jobs (drawn before the clock starts).
        problems = [
            [
                JobDemand(
                    f"j{i}",
                    rng.randint(1, 9),
                    rng.uniform(1e3, 5e4),
                    tuple((k, rng.uniform(2e2, 2e4) * 64 / k) for k in (4, 8, 16, 32, 64)),
                )
                for i in range(n)
            ]
            for n in range(2, 9)
        ]
        dtime_ns.append(
            _ns_per(
                [(d,) for d in problems],
                lambda demands: allocate_jobs(demands, 64, dtime_limit=0.005).deterministic_time,
            )
        )
    med = statistics.median
    cur = Scheduler()
    print("unit | measured median (ns) | stored default (ns)")
    print("|---|---|---|")
    print(f"| lookup (one stored placement) | {med(lookup_ns):.0f} | {cur.lookup_ns:.0f} |")
    print(f"| matcher node ({args.engine}) | {med(node_ns):.0f} | {cur.match_node_ns:.0f} |")
    print(f"| CP-SAT deterministic second | {med(dtime_ns):.3g} | {cur.cpsat_ns_per_dtime:.3g} |")


if __name__ == "__main__":
    main()
