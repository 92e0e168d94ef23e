"""Where IsoSched's TSS victims stop: with live state, or with nothing live.

Replays one scenario under IsoSched and sorts its preemptions by what the victim had live
when it was stopped (docs/simulator.md, "Preemption is physical", step 1): loading a segment's
weights, draining to its pipeline's end (between two segments), or inside a pipeline (live
state to write). Runs the engine's pure-Python path, which it wraps to look.

Run: ``python bench/preempt_cases.py [--scenario critical_burst] [--hw edge-8x8] [--scale 6]
[--seed 0]``.
"""

from __future__ import annotations

import argparse
import os

os.environ["ISOSCHED_PURE_PYTHON"] = "1"  # before isosched is imported: a class we can wrap

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.io.scenario_library import load_scenario
from isosched.plan import PlanCache
from isosched.sim import engine
from isosched.sim.replay import replay
from isosched.sim.sweep import plan_book
from isosched.trace import generate_trace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="critical_burst")
    ap.add_argument("--hw", default="edge-8x8")
    ap.add_argument("--scale", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    counts = {"loading weights": 0, "drained to the pipeline's end": 0, "live state": 0}
    disagree = 0
    preempt = engine.Simulator.preempt

    def looked(
        sim: engine.Simulator,
        js: engine.JobState,
        drain_us: float,
        state_bytes: int = 0,
        weight_bytes: int = 0,
        credit_us: float = 0.0,
    ) -> float:
        nonlocal disagree
        if js.plan is None:
            return preempt(sim, js, drain_us, state_bytes, weight_bytes, credit_us)
        sim.sync(js)
        loading, piece = sim._loading(js), js.piece
        said = sim.nothing_live(js, credit_us)
        out = preempt(sim, js, drain_us, state_bytes, weight_bytes, credit_us)
        # sorted by what the engine did, not by what nothing_live predicted
        if loading:
            counts["loading weights"] += 1
        elif js.piece > piece and js.resume_state_bytes == 0:
            counts["drained to the pipeline's end"] += 1
        else:
            counts["live state"] += 1
        wrote_nothing = js.resume_state_bytes == js.resume_weight_bytes == 0
        disagree += said != (wrote_nothing and (loading or js.piece > piece))
        return out

    engine.Simulator.preempt = looked  # type: ignore[method-assign,assignment]
    sc, hw = load_scenario(args.scenario), load_hardware(args.hw)
    book = plan_book(hw, load_models(s.model for s in sc.streams), PlanCache())
    trace = generate_trace(sc, seed=args.seed, scale=args.scale)
    doc, _ = replay(trace, hw, ["isosched"], plans=book)
    total = sum(counts.values())
    print(f"{args.scenario} x{args.scale:g} seed {args.seed} on {args.hw}: {total} TSS preemptions")
    print(f"(the run's own count: {doc['policies']['isosched']['preemptions']})")
    for what, n in counts.items():
        print(f"  {what}: {n}")
    print(f"  Simulator.nothing_live disagreed with the engine: {disagree}")


if __name__ == "__main__":
    main()
