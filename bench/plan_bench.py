"""Planning time and achieved pipeline interval per zoo model and preset.

Run: ``python bench/plan_bench.py [--presets edge-4x4,edge-8x8,datacenter-16x16] [--models ...]``.

For each (model, preset): wall time of the whole plan (units, ILP per segment, LCS, placement),
the slowest single ILP solve, segments, tiles, hop bound needed, and the achieved interval
against the simple lower bound Σ MACs / (tiles × MACs per cycle): ``ratio`` = Σ over segments
of (B × II) divided by that bound, i.e. the time one inference occupies the pipeline against
perfectly balanced use of every MAC.
"""

from __future__ import annotations

import argparse
import time

from isosched.io.hardware_json import load_hardware
from isosched.plan import plan_model
from isosched.zoo import load_zoo_model, zoo_names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", default="edge-4x4,edge-8x8,datacenter-16x16")
    ap.add_argument("--models", default=",".join(zoo_names()))
    args = ap.parse_args()
    print(
        "| model | preset | segments | tiles | hops | plan s | max ILP ms | status | "
        "II cycles | bound ratio | latency ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        hw = load_hardware(preset)
        for name in args.models.split(","):
            g = load_zoo_model(name)
            t0 = time.perf_counter()
            plan = plan_model(g, hw)
            wall = time.perf_counter() - t0
            bound = g.macs / (hw.tiles * hw.tile.macs_per_cycle)
            busy = sum(s.ii_cycles * s.data_tiles for s in plan.segments)
            status = {s.allocation.status for s in plan.segments}
            print(
                f"| {name} | {preset} | {len(plan.segments)} | {plan.tiles_used} | {plan.hops} | "
                f"{wall:.2f} | {max(s.allocation.elapsed_ms for s in plan.segments):.0f} | "
                f"{'OPTIMAL' if status == {'OPTIMAL'} else 'FEASIBLE'} | {plan.ii_cycles:.0f} | "
                f"{busy / bound:.2f} | {plan.latency_ms:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
