"""``isosched jobs``: per-stream readings of the per-job records a replay wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from isosched.cli.app import app, emit_json
from isosched.errors import IsoschedError


def _cell(x: float | None, fmt: str = ".2f") -> str:
    return "–" if x is None else format(x, fmt)


@app.command("jobs")
def jobs(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Per-job records (DIR/<policy>.jobs.jsonl from isosched replay), or DIR for all."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Per stream: met, dropped, late, wait and run times, tiles, preemptions (one table a file).

    Write the records with `isosched replay TRACE --policy P1,P2 --jobs-out DIR`, then
    `isosched jobs DIR/P1.jobs.jsonl DIR/P2.jobs.jsonl` to compare the policies stream by stream.
    Times in ms; a job's run time is from its first start to its finish (waits after a
    preemption included); its tiles are those of its first placement.
    """
    from isosched.report.jobs import read_job_records, stream_readings

    paths: list[Path] = []
    for given in files:
        found = sorted(given.glob("*.jobs.jsonl")) if given.is_dir() else [given]
        if not found:
            raise IsoschedError(f"{given}: no *.jobs.jsonl files (isosched replay --jobs-out DIR)")
        paths += found
    doc: dict[str, Any] = {"schema": "isosched.jobs-readings/v1", "files": {}}
    for path in paths:
        doc["files"][str(path)] = stream_readings(read_job_records(path))
    if as_json:
        emit_json(doc)
        return
    for path, streams in doc["files"].items():
        print(path)
        print(
            f"  {'stream':<18} {'jobs':>5} {'met':>5} {'drop':>5} {'late':>5} {'wait50':>7} "
            f"{'run50':>7} {'run90':>7} {'preempt':>7}  tiles (jobs)"
        )
        for name, s in streams.items():
            tiles = ", ".join(f"{k}: {v}" for k, v in s["tiles"].items()) or "–"
            print(
                f"  {name:<18} {s['jobs']:>5} {s['met']:>5} {s['dropped']:>5} {s['late']:>5} "
                f"{_cell(s['wait_p50_ms']):>7} {_cell(s['run_p50_ms']):>7} "
                f"{_cell(s['run_p90_ms']):>7} {s['preempted']:>7}  {tiles}"
            )
