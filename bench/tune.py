"""Sweep one parameter of one policy on the tuning scenario (issue 15: same tuning effort).

Every policy keeps its parameters as module-level constants in its module
(``isosched/sim/policies/<policy>.py``); this sets one of them to each value in turn and replays
the tuning scenario ``ad_urban`` (seed 7, ``edge-8x8``) at the given scales (by default the
loads at which the policies start to miss deadlines: at scale 1 every policy meets every one).
The best value is the one with the highest mean satisfaction, then critical satisfaction;
docs/decisions.md records every sweep.

Run: ``python bench/tune.py POLICY NAME V1,V2,... [--scales 4,6,8]``, e.g.
``python bench/tune.py isosched MAX_PREEMPTIONS 0,1,2,4``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
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
    ap.add_argument("policy")
    ap.add_argument("name")
    ap.add_argument("values", help="comma-separated numbers")
    ap.add_argument("--scenario", default="ad_urban")
    ap.add_argument("--scales", default="4,6,8")
    ap.add_argument("--hw", default="edge-8x8")
    args = ap.parse_args()
    module = importlib.import_module(f"isosched.sim.policies.{args.policy}")
    if not hasattr(module, args.name):
        raise SystemExit(f"{module.__name__} has no parameter {args.name}")
    original = getattr(module, args.name)
    hw = load_hardware(args.hw)
    sc = read_scenario(ROOT / "traces" / "scenarios" / f"{args.scenario}.json")
    scales = [float(s) for s in args.scales.split(",")]
    traces = {s: generate_trace(sc, seed=7, scale=s) for s in scales}
    book = PlanBook(hw, load_models(x.model for x in sc.streams), PlanCache())
    cols = " | ".join(f"×{s:g} sat / crit" for s in scales)
    print(f"| {args.policy}.{args.name} | {cols} | mean sat |")
    print("|---|" + "---|" * (len(scales) + 1))
    best = None
    for raw in args.values.split(","):
        value = type(original)(float(raw)) if not isinstance(original, bool) else raw == "1"
        setattr(module, args.name, value)
        cells, sats = [], []
        for s in scales:
            doc, runs = replay(traces[s], hw, [args.policy], plans=book, wall_budget_s=1e9)
            if runs[args.policy].budget_exhausted:  # cannot happen with this budget; never hide it
                raise SystemExit(f"{args.policy} at ×{s:g} was cut short by the wall budget")
            m = doc["policies"][args.policy]
            cells.append(f"{m['satisfaction']:.3f} / {m['critical_satisfaction']:.3f}")
            sats.append((m["satisfaction"], m["critical_satisfaction"]))
        mean = (statistics.fmean(a for a, _ in sats), statistics.fmean(b for _, b in sats))
        # Ties keep the shipped value (no evidence to change it).
        if best is None or mean > best[0] or (mean == best[0] and value == original):
            best = (mean, value)
        print(f"| {value} | {' | '.join(cells)} | {mean[0]:.4f} |")
    setattr(module, args.name, original)
    assert best is not None
    print(f"\nbest {args.name} = {best[1]} (shipped: {original})")


if __name__ == "__main__":
    main()
