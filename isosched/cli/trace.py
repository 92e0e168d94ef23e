"""``isosched trace gen|show``: generate traces from scenarios and summarise them."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from isosched.cli.app import app, emit_json
from isosched.errors import IsoschedError, UnknownModelError
from isosched.io.files import written_whole

trace_app = typer.Typer(help="Scenarios and traces.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


@trace_app.command("gen")
def trace_gen(
    scenario: Annotated[
        str,
        typer.Argument(help="Scenario file (isosched.scenario/v1) or a shipped scenario's name."),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Trace file to write.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    scale: Annotated[
        float, typer.Option("--scale", min=0.001, help="Load scale: periods divided by it.")
    ] = 1.0,
) -> None:
    """Generate a JSON Lines trace from SCENARIO (seeded, reproducible)."""
    from isosched.io.scenario_library import load_scenario
    from isosched.io.trace_jsonl import write_trace
    from isosched.trace import generate_trace
    from isosched.zoo import zoo_names

    if output.is_dir() or not output.parent.is_dir():  # refused before the trace is made
        raise IsoschedError(f"-o {str(output)!r}: not a file in an existing directory")
    sc = load_scenario(scenario)
    known = set(zoo_names())
    for s in sc.streams:
        if s.model not in known and not Path(s.model).suffix:
            raise UnknownModelError(
                f"stream {s.id!r}: unknown model {s.model!r} (zoo: {', '.join(sorted(known))})"
            )
    trace = generate_trace(sc, seed=seed, scale=scale)
    with written_whole(output) as part:  # an interrupted write leaves the old file whole
        write_trace(trace, part)
    sys.stderr.write(f"{sc.name}: {len(trace.jobs)} jobs over {sc.horizon_ms:g} ms -> {output}\n")


@trace_app.command("load")
def trace_load(
    scenario: Annotated[
        str,
        typer.Argument(help="Scenario file (isosched.scenario/v1) or a shipped scenario's name."),
    ],
    hw: Annotated[str, typer.Option("--hw", help="Preset name or hardware file.")] = "edge-8x8",
    scale: Annotated[
        float, typer.Option("--scale", min=0.001, help="Load scale: periods divided by it.")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Offered load of SCENARIO on HW: whole-chip time its streams ask for (no policy run)."""
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_models
    from isosched.io.scenario_library import load_scenario
    from isosched.plan import PlanCache
    from isosched.sim.load import offered_load
    from isosched.sim.planbook import PlanBook

    sc = load_scenario(scenario)
    chip = load_hardware(hw)
    book = PlanBook(chip, load_models(s.model for s in sc.streams), PlanCache())
    doc = offered_load(sc, book, scale)
    if as_json:
        emit_json(doc)
        return
    print(
        f"{sc.name} on {chip.name} x{scale:g}: utilisation {doc['utilisation']:.3f} "
        f"(DRAM {doc['dram_utilisation']:.3f})"
    )
    for sid, st in doc["streams"].items():
        print(
            f"  {sid:<16} {st['model']:<18} {st['rate_hz']:>7.2f} Hz "
            f"{st['alone_ms']:>8.2f} ms  {st['share']:.3f}"
        )


@trace_app.command("show")
def trace_show(
    trace: Annotated[Path, typer.Argument(help="Trace file (isosched.trace/v1).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Summarise a trace: jobs per stream, critical jobs, span."""
    from isosched.io.trace_jsonl import read_trace

    t = read_trace(trace)
    per = Counter(j.stream for j in t.jobs)
    doc: dict[str, Any] = {
        "header": t.header,
        "jobs": len(t.jobs),
        "critical_jobs": sum(j.critical for j in t.jobs),
        "first_release_us": t.jobs[0].release_us if t.jobs else None,
        "last_release_us": t.jobs[-1].release_us if t.jobs else None,
        "streams": dict(sorted(per.items())),
    }
    if as_json:
        emit_json(doc)
        return
    span = (
        f", releases {t.jobs[0].release_us / 1e3:g}–{t.jobs[-1].release_us / 1e3:g} ms"
        if t.jobs
        else ""
    )
    print(
        f"{t.header.get('scenario', '?')} (seed {t.header.get('seed')}): {len(t.jobs)} jobs, "
        f"{doc['critical_jobs']} critical{span}"
    )
    for stream, n in sorted(per.items()):
        print(f"  {stream:<20} {n:>7}")
