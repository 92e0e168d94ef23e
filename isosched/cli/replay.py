"""``isosched replay``: replay a trace under policies."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from isosched.cli.app import app, emit_json
from isosched.cli.progress import Progress
from isosched.errors import IsoschedError
from isosched.io.files import written_whole


@app.command("replay")
def replay(
    trace: Annotated[Path, typer.Argument(help="Trace file (isosched.trace/v1).")],
    hw: Annotated[str, typer.Option("--hw", help="Preset name or hardware file.")] = "edge-8x8",
    policy: Annotated[
        str, typer.Option("--policy", help="Comma-separated policies, or 'all'.")
    ] = "all",
    jobs_out: Annotated[
        Path | None, typer.Option("--jobs-out", help="Write DIR/<policy>.jobs.jsonl.")
    ] = None,
    wall_budget_s: Annotated[
        float, typer.Option("--budget-s", help="Wall-time budget per policy, s.")
    ] = 600.0,
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
    perfetto: Annotated[
        Path | None,
        typer.Option(
            "--perfetto",
            help="Write the replay as Chrome trace-event JSON (open in Perfetto or "
            "chrome://tracing): tile and stream tracks, preemptions, a scheduler track.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every progress message on stderr.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Replay TRACE on HW under each policy; print satisfaction, LBT, latency, energy.

    Exits 1 when a policy's replay was cut short by the wall-time budget (``budget_exhausted``).
    """
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_models
    from isosched.io.trace_jsonl import read_trace
    from isosched.plan import PlanCache
    from isosched.sim.metrics import job_record
    from isosched.sim.policies import parse_policies
    from isosched.sim.replay import replay as run_replay

    if not math.isfinite(wall_budget_s) or wall_budget_s < 0:
        raise IsoschedError(f"--budget-s must be a finite number >= 0, got {wall_budget_s:g}")
    if no_cache and cache_dir is not None:
        raise IsoschedError("--cache-dir and --no-cache exclude each other")
    names = parse_policies(policy)
    if jobs_out is not None:  # before the replay, not after it: a bad directory fails at once
        jobs_out.mkdir(parents=True, exist_ok=True)
    if perfetto is not None and (perfetto.is_dir() or not perfetto.parent.is_dir()):
        raise IsoschedError(f"--perfetto {str(perfetto)!r}: not a file in an existing directory")
    t = read_trace(trace)
    hardware = load_hardware(hw)
    models = load_models(j.model for j in t.jobs)
    cache = PlanCache(cache_dir, disk=not no_cache)
    progress = Progress(verbose=verbose)
    try:
        doc, runs = run_replay(
            t,
            hardware,
            names,
            models,
            cache=cache,
            progress=progress,
            wall_budget_s=wall_budget_s,
        )
    finally:
        progress.close()
    doc["trace"] = str(trace)
    if perfetto is not None:
        from isosched.report.details import run_details
        from isosched.report.perfetto import perfetto_trace

        details = {name: run_details(run, *hardware.mesh) for name, run in runs.items()}
        title = f"{trace.name} on {hardware.name}"
        with written_whole(perfetto) as part, part.open("w", encoding="utf-8") as fh:
            json.dump(perfetto_trace(details, title=title), fh, separators=(",", ":"))
    if jobs_out is not None:
        jobs_out.mkdir(parents=True, exist_ok=True)
        for name, run in runs.items():
            path = jobs_out / f"{name}.jobs.jsonl"
            with written_whole(path) as part, part.open("w", encoding="utf-8") as fh:
                for js in run.jobs:
                    fh.write(json.dumps(job_record(js), separators=(",", ":")) + "\n")
    exhausted = [n for n, m in doc["policies"].items() if m["budget_exhausted"]]
    if exhausted:
        sys.stderr.write(
            f"replay cut short by the wall-time budget (--budget-s {wall_budget_s:g}) for "
            f"{', '.join(exhausted)}: those results are incomplete\n"
        )
    if as_json:
        emit_json(doc)
    else:
        _table(doc)
    if exhausted:
        raise typer.Exit(1)


def _table(doc: dict[str, Any]) -> None:
    wide = max([10, *(len(name) for name in doc["policies"])])
    print(
        f"{'policy':<{wide}} {'sat':>6} {'crit':>6} {'LBT/s':>8} {'p99 ms':>8} {'mJ':>9} "
        f"{'inf/J':>8} {'preempt':>8} {'lib/online':>10} {'dec p99 ms':>10}"
    )
    for name, m in doc["policies"].items():
        p99 = m["p99_latency_ms"]
        print(
            f"{name:<{wide}} {m['satisfaction']:>6.3f} {m['critical_satisfaction']:>6.3f} "
            f"{m['lbt_per_s']:>8.1f} {p99 if p99 is not None else float('nan'):>8.2f} "
            f"{m['energy_mj']:>9.1f} {m['inferences_per_j']:>8.0f} {m['preemptions']:>8} "
            f"{str(m['library_hits']) + '/' + str(m['online_matches']):>10} "
            f"{m['decision_charged_p99_ms']:>10.3f}"
        )
