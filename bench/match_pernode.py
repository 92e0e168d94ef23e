"""Cost of a node of the compiled ``cp`` search (or a step of ``repair``), in µs, on fixed
instance sets (timed).

Run: ``python -m bench.match_pernode SET`` from the repository root, where ``SET`` is

* ``planted1000``: the four 1,000-vertex transformers of ``bench/match_bench.py``'s planted
  instances (44×44, h = 2, 10 % blocked; matcher seed = instance seed, as the benchmark runs
  them), 1,000,000-node budgets;
* ``planted``: all 48 planted instances (sizes 50–1,000, three kinds), 300,000-node budgets
  (1,000,000 for the 1,000-vertex transformers);
* ``online16`` / ``online8``: the online instances of ``match_bench.online_instances`` on
  ``datacenter-16x16`` / ``edge-8x8`` (``--seed``, 17 by default; plans from ``--plans-dir``),
  3,000-node budgets, matcher seed 0.

``--engine repair`` times the compiled ``repair`` kernel instead (``repair_search``, a step per
node, the same budgets and seeds, from its own greedy start).

Each instance's model is built before the clock; the search (its Python driver included) is
timed ``--repeat`` times and the best kept. Printed: instances, nodes and µs per node, per group
(online 16×16 by hop bound); ``--json FILE`` keeps per instance the stop reason, the node counts
(``cp``: backtracks and propagations too), the placement (repair: the partial one) and the time,
so that two versions of an engine can be checked to search node for node alike. Compare versions
by running them alternately, back
to back, on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

from bench.match_bench import _free_target, online_instances, side_for
from isosched.match import ChipTarget, mesh_target, planted_instance
from isosched.match.cp import CPModel, cp_search
from isosched.match.repair import repair_search
from isosched.tilegraph import TileGraph

Case = tuple[str, TileGraph, ChipTarget, int, int]  # name, pattern, target, seed, node budget


def planted_cases(only_1000: bool) -> list[Case]:
    """The planted benchmark's instances (h = 2, 10 % blocked, seeds 1000–1003)."""
    sizes = (1000,) if only_1000 else (50, 200, 500, 1000)
    kinds = ("transformer",) if only_1000 else ("chain", "multibranch", "transformer")
    out: list[Case] = []
    for n in sizes:
        for kind in kinds:
            side = side_for(n, 0.1)
            for seed in range(1000, 1004):
                inst = planted_instance(side, side, n, 2, 0.1, kind, seed)
                target = mesh_target(side, side, 2, inst.blocked)
                budget = 1_000_000 if (n == 1000 and kind == "transformer") else 300_000
                out.append((f"{n}/{kind}/{seed}", inst.pattern, target, seed, budget))
    return out


def online_cases(chip: str, plans_dir: str, seed: int) -> list[Case]:
    """The online benchmark's instances on one chip (matcher seed 0, 3,000-node budgets)."""
    return [
        (f"{inst.name}/h{inst.hops}", inst.pattern, _free_target(inst), 0, 3000)
        for inst in online_instances(plans_dir, [chip], 3, seed)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("set", choices=["planted1000", "planted", "online16", "online8"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--plans-dir", default="/tmp/isosched-bench-plans")
    ap.add_argument("--seed", type=int, default=17, help="instance seed of the online sets")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--engine", choices=["cp", "repair"], default="cp")
    args = ap.parse_args()
    if args.set.startswith("planted"):
        cases = planted_cases(args.set == "planted1000")
    else:
        chip = "datacenter-16x16" if args.set == "online16" else "edge-8x8"
        cases = online_cases(chip, args.plans_dir, args.seed)
    _, pattern, target, _, _ = cases[0]
    cp_search(CPModel(pattern, target), math.inf, max_nodes=100)  # load the compiled core
    repair_search(pattern, target, math.inf, max_steps=100)
    rows: list[dict[str, Any]] = []
    for name, pattern, target, seed, budget in cases:
        best = math.inf
        if args.engine == "repair":
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                rep = repair_search(pattern, target, math.inf, seed=seed, max_steps=budget)
                best = min(best, time.perf_counter() - t0)
            row = {"stop": rep.stop, "nodes": rep.steps, "runs": rep.runs, "tiles": rep.partial}
        else:
            model = CPModel(pattern, target)
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out = cp_search(model, math.inf, seed=seed, max_nodes=budget)
                best = min(best, time.perf_counter() - t0)
            row = {
                "stop": out.stop,
                "nodes": out.stats.nodes,
                "backtracks": out.stats.backtracks,
                "extra": sorted(out.stats.extra.items()),
                "tiles": out.tiles,
            }
        rows.append({"name": name, "hops": target.hops, **row, "s": best})
    groups: dict[str, Callable[[dict[str, Any]], bool]] = {"all": lambda r: True}
    if args.set == "online16":
        groups = {
            "five and six hops": lambda r: r["hops"] >= 5,
            "two to four hops": lambda r: r["hops"] <= 4,
        }
    for label, keep in groups.items():
        sel = [r for r in rows if keep(r)]
        nodes = sum(r["nodes"] for r in sel)
        secs = sum(r["s"] for r in sel)
        print(
            f"{args.set}, {label}: {len(sel)} instances, {nodes} nodes, "
            f"{1e6 * secs / max(nodes, 1):.3f} µs per node"
        )
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh)


if __name__ == "__main__":
    main()
