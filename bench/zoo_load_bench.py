"""Time to load zoo models from their graph files and price every layer (issue: under 2 s).

Run: ``python bench/zoo_load_bench.py [--repeat N]``. Prints, per model, the median wall time
of (read + validate the graph file) and of (LTS and TSS cost of every layer on edge-8x8 with
all 64 tiles), in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from isosched.cost import lts_layer_cost, tss_layer_cost
from isosched.io.graph_json import read_graph
from isosched.io.hardware_json import load_hardware

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hw", default="edge-8x8")
    args = ap.parse_args()
    hw = load_hardware(args.hw)
    files = sorted((ROOT / "models").glob("*.json"), key=lambda p: p.stat().st_size)
    files = [f for f in files if f.name != "MANIFEST.json"]
    print(
        f"{'model':<14} {'layers':>7} {'file KiB':>9} {'load ms':>9} {'cost ms':>9} {'total ms':>9}"
    )
    worst = 0.0
    for path in files:
        loads, costs = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            g = read_graph(path)
            t1 = time.perf_counter()
            for layer in g:
                lts_layer_cost(layer, hw.tiles, hw)
                tss_layer_cost(layer, hw.tiles, hw)
            t2 = time.perf_counter()
            loads.append((t1 - t0) * 1e3)
            costs.append((t2 - t1) * 1e3)
        load, cost = statistics.median(loads), statistics.median(costs)
        worst = max(worst, load + cost)
        print(
            f"{g.name:<14} {len(g):>7} {path.stat().st_size / 1024:>9.1f} "
            f"{load:>9.1f} {cost:>9.1f} {load + cost:>9.1f}"
        )
    print(f"slowest model: {worst:.1f} ms (target: under 2000 ms)")


if __name__ == "__main__":
    main()
