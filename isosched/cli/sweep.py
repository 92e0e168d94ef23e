"""``isosched sweep``: latency-bound throughput against load scale, per policy."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from isosched.cli.app import app, emit_json
from isosched.cli.interrupt import workers_stop_with_us
from isosched.cli.progress import Progress
from isosched.errors import IsoschedError


@app.command("sweep")
def sweep(
    scenario: Annotated[
        str,
        typer.Argument(help="Scenario file (isosched.scenario/v1) or a shipped scenario's name."),
    ],
    hw: Annotated[str, typer.Option("--hw", help="Preset name or hardware file.")] = "edge-8x8",
    policy: Annotated[
        str, typer.Option("--policy", help="Policies, comma-separated, or all.")
    ] = "all",
    scales: Annotated[
        str, typer.Option("--scales", help="Load scale factors, comma-separated.")
    ] = "0.5,1,1.5,2,3,4",
    # the defaults are isosched.sim.sweep's DEFAULT_SEEDS and BISECT_STEPS (tests/test_sweep.py)
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per point (0 .. N-1).")] = 5,
    bisect_steps: Annotated[
        int,
        typer.Option("--bisect-steps", min=0, max=12, help="Bisection steps of the capacity."),
    ] = 3,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Local processes (0: one per core).")
    ] = 0,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run points on Ray: 'local' (a cluster on this machine, --workers CPUs) "
            "or a cluster address such as ray://head:10001.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every progress message on stderr.")
    ] = False,
) -> None:
    """Replay SCENARIO at every load scale under each policy; report LBT capacity."""
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_models
    from isosched.io.scenario_library import load_scenario
    from isosched.plan import PlanCache
    from isosched.sim.policies import parse_policies
    from isosched.sim.sweep import sweep as run_sweep
    from isosched.trace.generate import expected_jobs, parse_scales
    from isosched.trace.scenario import MAX_JOBS

    executor = None
    if ray is not None:
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            raise IsoschedError(
                "--ray needs Ray: install it with pip install -e '.[ray]' (or run without --ray "
                "to use the local process pool)"
            ) from None
        from service.ray_cluster import ray_map  # the library itself never imports Ray

        executor = ray_map(ray, workers or None)
    factors = parse_scales(scales)
    names = parse_policies(policy)
    sc = load_scenario(scenario)
    for f in factors:  # every point's trace size, counted before any work
        jobs = expected_jobs(sc, f)
        if jobs > MAX_JOBS:
            raise IsoschedError(
                f"at scale {f:g} scenario {sc.name!r} releases up to {jobs:,} jobs; "
                f"the limit is {MAX_JOBS:,}"
            )
    hardware = load_hardware(hw)
    if ray is not None:  # join the cluster now: a bad address is refused before any planning
        from service.ray_cluster import connect

        connect(ray, workers or None)

    progress = Progress(verbose=verbose)  # a live line with an ETA on a terminal, else a few
    with workers_stop_with_us(progress) as report:
        doc = run_sweep(
            sc,
            hardware,
            names,
            factors,
            seeds=seeds,
            workers=workers or os.cpu_count() or 1,
            progress=report,
            executor=executor,
            models=load_models(s.model for s in sc.streams),
            cache=PlanCache(),
            bisect_steps=bisect_steps,
        )
    progress.close()
    if as_json:
        emit_json(doc)
        return
    print("\n".join(sweep_table(doc)))


def sweep_table(doc: dict[str, Any]) -> list[str]:
    """The lines ``isosched sweep`` prints for a ``isosched.sweep/v2`` document.

    The policy column is as wide as the longest name (at least 10), so the columns line up.
    """
    wide = max([10, *(len(name) for name in doc["policies"])])
    lines = [
        f"{doc['scenario']} on {doc['hw']}, {doc['seeds']} seeds per point",
        f"{'policy':<{wide}} {'LBT capacity':>14}  mean satisfaction by scale",
    ]
    for name, d in doc["policies"].items():
        cap = f"{'>=' if d['lbt_capacity_censored'] else ''}{d['lbt_capacity']:.3g}"
        if d["lbt_capacity_below_floor"]:
            cap = f"<{doc['capacity_floor']:.3g}"
        sats = " ".join(f"{p['scale']:g}:{p['satisfaction']:.3f}" for p in d["curve"])
        lines.append(f"{name:<{wide}} {cap:>14}  {sats}")
    return lines
