"""``isosched plan``: plan a model on a chip."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from isosched.cli.app import app, emit_json
from isosched.cli.progress import Progress
from isosched.errors import IsoschedError

#: Seconds without a progress message after which ``plan`` says its step is still running (the
#: placement of one segment on ``wafer-64x64`` is silent for minutes otherwise).
HEARTBEAT_S = 5.0


@app.command("plan")
def plan(
    model: Annotated[str, typer.Argument(help="Zoo name, graph file (.json) or ONNX file.")],
    hw: Annotated[str, typer.Option("--hw", help="Preset name or hardware file.")] = "edge-8x8",
    hops: Annotated[int, typer.Option("--hops", help="Hop bound of placements.")] = 2,
    ilp_dtime_limit: Annotated[
        float,
        typer.Option(
            "--ilp-dtime-limit",
            help="CP-SAT deterministic-time limit per segment (deterministic s): decides.",
        ),
    ] = 5.0,
    ilp_time_limit_s: Annotated[
        float,
        typer.Option("--ilp-time-limit", help="CP-SAT wall-clock safety net per segment, s."),
    ] = 60.0,
    match_nodes: Annotated[
        int,
        typer.Option("--match-nodes", help="Matcher budget per hop bound, search placements."),
    ] = 20_000,
    match_budget_ms: Annotated[
        float,
        typer.Option("--match-budget-ms", help="Matcher wall-clock safety net per hop bound, ms."),
    ] = 60_000.0,
    seed: Annotated[int, typer.Option("--seed", help="Solver and matcher seed.")] = 0,
    library: Annotated[
        bool, typer.Option("--library", help="Include the alternative placements.")
    ] = False,
    greedy_cuts: Annotated[
        bool, typer.Option("--greedy-cuts", help="Longest segments instead of the latency DP.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Plan cache directory (default: $ISOSCHED_CACHE_DIR, else "
            "$XDG_CACHE_HOME/isosched, else ~/.cache/isosched).",
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Plan without reading or writing the plan cache.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every progress message on stderr.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Allocate tiles (ILP), build the tile graph (LCS) and place it, segment by segment.

    Plans are cached on disk by content (docs/plan-cache.md): planning the same model on the
    same chip with the same options again reads the stored plan.
    """
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_model

    if not 1 <= hops <= 16:
        raise IsoschedError(f"--hops must be in 1..16, got {hops}")
    if not (ilp_dtime_limit >= 0 and math.isfinite(ilp_dtime_limit)):
        raise IsoschedError(
            f"--ilp-dtime-limit must be a finite number >= 0, got {ilp_dtime_limit}"
        )
    for flag, value in (
        ("--ilp-time-limit", ilp_time_limit_s),
        ("--match-budget-ms", match_budget_ms),
    ):
        if not (value > 0 and math.isfinite(value)):
            raise IsoschedError(f"{flag} must be a finite number > 0, got {value}")
    if match_nodes < 1:
        raise IsoschedError(f"--match-nodes must be >= 1, got {match_nodes}")
    if no_cache and cache_dir is not None:
        raise IsoschedError("--cache-dir and --no-cache exclude each other")

    progress = Progress(verbose=verbose, always=("plan cache",), heartbeat_s=HEARTBEAT_S)
    graph = load_model(model)
    hardware = load_hardware(hw)
    # the planner (OR-Tools, which imports pandas: about a second) only once the inputs are read
    from isosched.plan import PlanCache, plan_model, plan_to_doc

    kwargs: dict[str, Any] = {
        "hops": hops,
        "ilp_dtime_limit": ilp_dtime_limit,
        "ilp_time_limit_s": ilp_time_limit_s,
        "match_budget_ms": match_budget_ms,
        "match_nodes": match_nodes,
        "seed": seed,
        "optimal_cuts": not greedy_cuts,
    }
    try:
        if no_cache:
            result = plan_model(graph, hardware, progress=progress, **kwargs)
        else:
            result = PlanCache(cache_dir).plan(graph, hardware, progress=progress, **kwargs)
    finally:
        progress.close()
    if result.wall_limited:
        progress(
            "warning: a wall-clock safety net stopped a search; this plan is not reproducible "
            "(raise --ilp-time-limit / --match-budget-ms)"
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
