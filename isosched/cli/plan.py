"""``isosched plan``: plan a model on a chip."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from isosched.cli.app import app, emit_json
from isosched.errors import IsoschedError
from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_model
from isosched.plan import plan_model, plan_to_doc


@app.command("plan")
def plan(
    model: Annotated[str, typer.Argument(help="Zoo name, graph file (.json) or ONNX file.")],
    hw: Annotated[str, typer.Option("--hw", help="Preset name or hardware file.")] = "edge-8x8",
    hops: Annotated[int, typer.Option("--hops", help="Hop bound of placements.")] = 2,
    ilp_time_limit_s: Annotated[
        float, typer.Option("--ilp-time-limit", help="CP-SAT limit per segment, s.")
    ] = 5.0,
    match_budget_ms: Annotated[
        float, typer.Option("--match-budget-ms", help="Matcher wall-time cap per hop bound, ms.")
    ] = 2000.0,
    seed: Annotated[int, typer.Option("--seed", help="Solver and matcher seed.")] = 0,
    library: Annotated[
        bool, typer.Option("--library", help="Include the alternative placements.")
    ] = False,
    greedy_cuts: Annotated[
        bool, typer.Option("--greedy-cuts", help="Longest segments instead of the latency DP.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Allocate tiles (ILP), build the tile graph (LCS) and place it, segment by segment."""
    if not 1 <= hops <= 16:
        raise IsoschedError(f"--hops must be in 1..16, got {hops}")

    def progress(msg: str) -> None:
        sys.stderr.write(f"{msg}\n")

    graph = load_model(model)
    hardware = load_hardware(hw)
    result = plan_model(
        graph,
        hardware,
        hops=hops,
        ilp_time_limit_s=ilp_time_limit_s,
        match_budget_ms=match_budget_ms,
        seed=seed,
        progress=progress,
        optimal_cuts=not greedy_cuts,
    )
    doc = plan_to_doc(result, library=library)
    if as_json:
        emit_json(doc)
        return
    print(
        f"{graph.name} on {hardware.name}: {len(result.segments)} segment(s), "
        f"latency {doc['latency_ms']:.3f} ms, energy {doc['energy_mj']:.3f} mJ, "
        f"planned in {doc['elapsed_ms'] / 1e3:.2f} s"
    )
    print(
        f"{'seg':>4} {'layers':>7} {'tiles':>6} {'II cycles':>10} {'latency ms':>11} {'hops':>5} "
        f"{'solver':>9}"
    )
    for s in doc["segments"]:
        print(
            f"{s['index']:>4} {len(s['layers']):>7} {s['tiles_used']:>6} {s['ii_cycles']:>10.0f} "
            f"{s['latency_ms']:>11.3f} {s['hops']:>5} {s['solver']['status']:>9}"
        )
