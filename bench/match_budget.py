"""How far past its wall-time budget the matcher returns, on partly occupied chips.

Run: ``python bench/match_budget.py`` (``--quick`` for a smoke run; ``--sides``, ``--budgets``,
``--hops``, ``--occupied``, ``--seeds`` to change the grid; ``--json FILE`` keeps raw rows).

Online instances: a chip of W×W tiles partly held by other jobs (random rectangles until the
given fraction is held), and a planted DNN-like tile graph (isosched.match.planted_instance) grown
on the empty chip at h hops with 90 % as many vertices as the chip has free tiles. Most do not
fit around the held tiles, so both engines search (and backjump) until the budget ends: the
worst case for keeping a budget. Every (chip, budget) cell runs both engines on every kind, hop
bound, occupancy and seed.

Overrun = elapsed_ms reported by the matcher minus the budget (it includes all setup). Each run
starts after ``gc.collect()``, so no garbage of an earlier run is collected inside it. The machine
may be shared: a run whose wall time exceeds its CPU time by more than 0.5 ms was descheduled for
part of it, and the "undisturbed" columns leave such runs out (the matcher cannot return while
it is not running). Runs with a full (generation 2) garbage collection inside are counted too.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

from isosched.match import TileMatcher, mesh_target, planted_instance

ENGINES = ("mcts", "ullmann")
KINDS = ("chain", "multibranch", "transformer")
#: Wall time beyond CPU time that marks a run as descheduled, milliseconds.
STOLEN_MS = 0.5


def held_tiles(side: int, fraction: float, rng: random.Random) -> list[tuple[int, int]]:
    """Tiles held by other jobs: random rectangles until ``fraction`` of the chip is held."""
    held: set[tuple[int, int]] = set()
    while len(held) < fraction * side * side:
        w, h = rng.randint(1, max(1, side // 3)), rng.randint(1, max(1, side // 3))
        x, y = rng.randrange(side - w + 1), rng.randrange(side - h + 1)
        held |= {(x + i, y + j) for i in range(w) for j in range(h)}
    return sorted(held)


class _GcWatch:
    """Time spent in generation-2 collections since the last ``reset``."""

    def __init__(self) -> None:
        self.full_ms = 0.0
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.full_ms += (time.perf_counter() - self._t0) * 1e3

    def reset(self) -> None:
        self.full_ms = 0.0


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(len(s) * q / 100) - 1))]


def _tail(xs: list[float]) -> str:
    """``p99 | max | count > 1 ms`` cells of a list of overruns."""
    if not xs:
        return "— | — | —"
    return f"{percentile(xs, 99):.2f} | {max(xs):.2f} | {sum(o > 1 for o in xs)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sides", default="8,16")
    ap.add_argument("--budgets", default="10,100", help="wall-time budgets, ms")
    ap.add_argument("--hops", default="2,4,6")
    ap.add_argument("--occupied", default="0.25,0.5", help="fractions of the chip held")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny grid, for CI smoke runs")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.sides, args.budgets, args.hops, args.seeds = "16", "10", "6", 1
    watch = _GcWatch()
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[int, float], list[dict[str, Any]]] = defaultdict(list)
    for side in [int(x) for x in args.sides.split(",")]:
        for budget in [float(x) for x in args.budgets.split(",")]:
            for engine in ENGINES:
                for kind in KINDS:
                    for hops in [int(x) for x in args.hops.split(",")]:
                        for occupied in [float(x) for x in args.occupied.split(",")]:
                            for seed in range(args.seeds):
                                rng = random.Random(1000 + 7919 * seed + hops)
                                held = held_tiles(side, occupied, rng)
                                n = min(side * side - 1, max(3, int(0.9 * (side**2 - len(held)))))
                                inst = planted_instance(side, side, n, hops, 0.0, kind, 1000 + seed)
                                target = mesh_target(side, side, hops, held)
                                matcher = TileMatcher(target, inst.pattern)
                                gc.collect()
                                watch.reset()
                                cpu0 = time.thread_time()
                                wall0 = time.perf_counter()
                                res = matcher.match(engine=engine, budget_ms=budget, seed=seed)
                                wall = (time.perf_counter() - wall0) * 1e3
                                cpu = (time.thread_time() - cpu0) * 1e3
                                row = {
                                    "side": side,
                                    "budget_ms": budget,
                                    "engine": engine,
                                    "kind": kind,
                                    "hops": hops,
                                    "occupied": occupied,
                                    "seed": seed,
                                    "n": n,
                                    "found": res.found,
                                    "reason": res.reason,
                                    "elapsed_ms": res.elapsed_ms,
                                    "overrun_ms": res.elapsed_ms - budget,
                                    "stolen_ms": wall - cpu,
                                    "full_gc_ms": watch.full_ms,
                                    "nodes": res.stats.get("nodes", 0),
                                    "backjumps": res.stats.get("backjumps", 0),
                                }
                                rows.append(row)
                                groups[(side, budget)].append(row)
            g = groups[(side, budget)]
            worst = max(g, key=lambda r: r["overrun_ms"])
            print(
                f"{side}x{side} budget {budget:.0f} ms: {len(g)} runs, max overrun "
                f"{worst['overrun_ms']:.2f} ms ({worst['engine']}, {worst['nodes']} nodes, "
                f"{worst['backjumps']} backjumps)",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"\nseeds {args.seeds}, hops {args.hops}, occupied {args.occupied}; "
        f"both engines per cell; overrun = elapsed - budget, ms"
    )
    print(
        "| chip | budget | runs | stopped by the budget | p50 | p99 | max | > 1 ms "
        "| undisturbed | undisturbed p99 | undisturbed max | undisturbed > 1 ms "
        "| with a full GC |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    disturbed_total = 0
    for (side, budget), g in groups.items():
        stopped = [r for r in g if r["reason"].startswith("budget")]
        over = [r["overrun_ms"] for r in stopped]
        calm = [r["overrun_ms"] for r in stopped if r["stolen_ms"] <= STOLEN_MS]
        disturbed_total += len(over) - len(calm)
        median = f"{statistics.median(over):.2f}" if over else "—"
        print(
            f"| {side}×{side} | {budget:.0f} ms | {len(g)} | {len(stopped)} | {median} | "
            f"{_tail(over)} | {len(calm)} | {_tail(calm)} | "
            f"{sum(r['full_gc_ms'] > 0 for r in stopped)} |"
        )
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh)
    print(
        f"\n{len(rows)} runs; {disturbed_total} descheduled for more than {STOLEN_MS} ms "
        "(machine busy)"
        if disturbed_total
        else f"\n{len(rows)} runs, none descheduled"
    )


if __name__ == "__main__":
    main()
