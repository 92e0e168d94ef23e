"""Where the online placer's time goes: the compiled ``cp`` slices, the compiled repair kernel,
and the rest (Python: models, turns, answers), on the online benchmark's instances (timed).

Run: ``python -m bench.match_split`` from the repository root (``--plans-dir`` as for
``bench/match_bench.py --online``; ``--seeds`` the instance seeds, 17 and 18 by default). Each
instance is placed as the simulator places it (the plan's library first, then the placer's
online engine, ``--engine``) with a ``--node-budget`` of 5,000 nodes and matcher seed 0; those
that take at least ``--min-nodes`` nodes are timed ``--repeat`` times, and the fastest pass over
them is kept. The compiled calls are timed by wrapping them (a few hundred nanoseconds a call,
counted in their share). Printed per chip: instances, nodes, milliseconds in each part and the
rest per instance. Compare versions by running them alternately on the same machine.

``--after-fork`` forks this process (the child exits at once) before each timed placement, as a
benchmark that runs its peers in forked children would, and also prints the minor page faults
per placement: the first writes to a heap that was shared copy-on-write.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from bench.match_bench import ONLINE_CHIPS, OnlineInstance, online_instances, place_online
from isosched.match import cpcore, repair
from isosched.match.placer import ONLINE_ENGINE, Library, library_images, warm


def _timed(fn: Callable[..., Any], acc: dict[str, int], key: str) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        t0 = time.perf_counter_ns()
        try:
            return fn(*args)
        finally:
            acc[key] += time.perf_counter_ns() - t0

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--plans-dir", default="/tmp/isosched-bench-plans")
    ap.add_argument("--seeds", default="17,18", help="instance seeds")
    ap.add_argument("--engine", default=ONLINE_ENGINE)
    ap.add_argument("--node-budget", type=int, default=5_000)
    ap.add_argument("--min-nodes", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--after-fork", action="store_true")
    args = ap.parse_args()
    warm(args.engine)
    acc = {"cp": 0, "repair": 0}
    cpcore.search_slice = _timed(cpcore.search_slice, acc, "cp")
    kernel = _timed(repair._compiled_kernel(), acc, "repair")
    repair._compiled_kernel = lambda: kernel
    chips = list(ONLINE_CHIPS)
    todo: dict[str, list[tuple[OnlineInstance, Library]]] = {hw: [] for hw in chips}
    for seed in [int(x) for x in args.seeds.split(",")]:
        for inst in online_instances(args.plans_dir, chips, 3, seed):
            lib = library_images(inst.base, inst.width, inst.height)
            ans = place_online(inst, lib, node_budget=args.node_budget, seed=0, engine=args.engine)
            if ans.nodes >= args.min_nodes:
                todo[inst.hw].append((inst, lib))
    print(
        "| chip | instances | nodes | total ms | cp slices | repair kernel | rest | rest each "
        "| minor faults each |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for hw, cases in todo.items():
        best: tuple[int, int, int, int, int] | None = None
        for _ in range(args.repeat):
            acc["cp"] = acc["repair"] = 0
            nodes = total = faults = 0
            for inst, lib in cases:
                if args.after_fork:
                    pid = os.fork()
                    if pid == 0:
                        os._exit(0)
                    os.waitpid(pid, 0)
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter_ns()
                ans = place_online(
                    inst, lib, node_budget=args.node_budget, seed=0, engine=args.engine
                )
                total += time.perf_counter_ns() - t0
                faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
                nodes += ans.nodes
            if best is None or total < best[0]:
                best = (total, acc["cp"], acc["repair"], nodes, faults)
        if best is None or not cases:
            continue
        total, cp, rep, nodes, faults = best
        rest = total - cp - rep
        print(
            f"| {hw} | {len(cases)} | {nodes:,} | {total / 1e6:.1f} | {cp / 1e6:.1f} | "
            f"{rep / 1e6:.1f} | {rest / 1e6:.1f} | {rest / len(cases) / 1e3:.0f} µs | "
            f"{faults / len(cases):.0f} |"
        )


if __name__ == "__main__":
    main()
