"""``isosched results``: regenerate every results table and the data behind the dashboard.

Every shipped scenario × chip × physics setting × policy is swept (``isosched.sweep/v2``: seeds,
intervals, capacity by bisection). Points are cached on disk by content and code
(:class:`~isosched.sim.point_cache.PointCache`), so an interrupted run resumes where it stopped
and a finished one re-renders at once. Each sweep is written as
``DATA/<physics>/<hw>/<scenario>.json`` with the code version, hardware and seeds stamped in,
``DATA/index.json`` lists them, and the tables between the markers of docs/results.md are
rewritten from whatever sweeps exist (the missing ones are listed as not run).

A policy that runs only TSS plans (IsoSched, its ablations, HASP) cannot tell the two physics
settings apart: the premise changes the LTS dataflow only, and the plan book plans TSS with it
off. Such a policy's premise points are therefore filed under their fair-physics twins
(:class:`PhysicsBlindStore`), so that the premise sweeps reuse them instead of running them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from isosched.cli.app import app
from isosched.cli.interrupt import workers_stop_with_us
from isosched.errors import IsoschedError

if TYPE_CHECKING:
    from isosched.hw.model import Hardware
    from isosched.sim.point_cache import PointCache
    from isosched.sim.sweep import Point

# The library is imported inside the functions, so that every other command starts without it.

RESULTS_SCHEMA = "isosched.results/v1"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
ROOT = Path(__file__).resolve().parents[2]  # the checkout: traces/, docs/


def physics_hardware(hw: Hardware, physics: str) -> Hardware:
    """``hw`` under a physics setting of :data:`~isosched.report.tables.PHYSICS`."""
    if physics == "fair":
        return hw
    flow = hw.dataflow.model_copy(update={"lts_activations_via_dram": True})
    return hw.model_copy(update={"dataflow": flow})  # same name: TSS plans are shared


#: Policies that run only TSS plans, whose runs the LTS dataflow option cannot change.
TSS_ONLY = ("isosched", "hasp")


def tss_only(policy: str) -> bool:
    """Whether ``policy`` runs only TSS plans (IsoSched, its ablations, HASP)."""
    from isosched.sim.policies import ABLATION_NAMES

    return policy in TSS_ONLY or policy in ABLATION_NAMES


class PhysicsBlindStore:
    """A point store that files a TSS-only policy's points under the fair physics.

    Parameters
    ----------
    inner : PointCache
        Where the points are kept; its ``hits`` and ``stored`` count as before.

    Notes
    -----
    TSS plans are made with the LTS dataflow option off whatever the hardware says
    (:meth:`~isosched.sim.planbook.PlanBook.job_plan`), and a TSS-only policy reads nothing
    else of it, so its point under the premise is its point under the fair physics, byte for
    byte (tests/test_results.py runs both to check).
    """

    def __init__(self, inner: PointCache) -> None:
        self.inner = inner

    @property
    def hits(self) -> int:
        """Points found."""
        return self.inner.hits

    @property
    def stored(self) -> int:
        """Points computed and stored."""
        return self.inner.stored

    @staticmethod
    def twin(point: Point) -> Point:
        """The point a TSS-only policy's premise point is filed under (others: itself)."""
        scenario, hw, policy, scale, seed = point
        if not (hw.dataflow.lts_activations_via_dram and tss_only(policy)):
            return point
        flow = hw.dataflow.model_copy(update={"lts_activations_via_dram": False})
        return (scenario, hw.model_copy(update={"dataflow": flow}), policy, scale, seed)

    def get(self, point: Point) -> dict[str, Any] | None:
        """The stored result of ``point`` (or of its fair twin), or ``None``."""
        return self.inner.get(self.twin(point))

    def put(self, point: Point, result: dict[str, Any]) -> None:
        """Store the result of ``point`` (under its fair twin)."""
        self.inner.put(self.twin(point), result)


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def code_stamp() -> dict[str, Any]:
    """The code version: git commit, whether the tree differs from it, and the source hash."""
    from isosched.sim.point_cache import code_fingerprint

    dirty = _git("status", "--porcelain", "--", "isosched")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(dirty),
        "isosched_sha256": code_fingerprint(),
    }


def _hw_sha(hw: Hardware) -> str:
    return hashlib.sha256(
        json.dumps(hw.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()


def _render(
    entries: list[dict[str, Any]], planned: list[tuple[str, str, str]], package: str = ""
) -> str:
    """The generated block of docs/results.md.

    ``package`` is this run's package hash: planned tables whose data another package computed
    (kept from an earlier run, say when ``--budget-min`` stopped this one) are named as such.
    """
    from isosched.report.tables import scoreboard, sweep_tables, tier_table

    out = [BEGIN, ""]
    have = {(e["physics"], e["hw"], e["scenario"]): e for e in entries}
    missing = [k for k in planned if k not in have]
    out.append("Generated by `isosched results`; do not edit between the markers.")
    out.append(
        "95 % Student-t intervals over seeds; each table states its commit, seeds and capacity "
        "bisection steps (docs/simulator.md, Sweeps)."
    )
    if missing:
        out.append("")
        out.append(
            "Not run in this regeneration (rerun `isosched results` to add them): "
            + ", ".join(f"{s} on {h} ({p})" for p, h, s in missing)
            + "."
        )
    older = [
        k
        for k in planned
        if k in have and package and have[k]["code"].get("isosched_sha256") != package
    ]
    if older:
        out.append("")
        out.append(
            f"Computed by other code than this run's (package `{package[:8]}…`; each table names "
            "its commit): " + ", ".join(f"{s} on {h} ({p})" for p, h, s in older) + "."
        )
    if entries:
        out.append("")
        out.append("### Scoreboard: IsoSched's LBT capacity against each baseline")
        out.append("")
        out.append(
            "One row per table below; a cell is the baseline's capacity (load scale) and "
            "IsoSched's outcome against it: **W** IsoSched's is higher, T equal, **L** lower "
            "(≥: censored, passing every grid scale; <: below the floor). Read the discussion "
            "in each table's section for why."
        )
        out.append("")
        out.append(scoreboard(entries).rstrip())
        tiers = tier_table(entries)
        if tiers:
            out.append("")
            out.append("### Capacity across task complexity (tiers S to XL, fair physics)")
            out.append("")
            out.append(
                "The same mix of streams with growing models (docs/traces.md); LBT capacity "
                "(load scale) per policy, one column per chip and tier."
            )
            out.append("")
            out.append(tiers.rstrip())
    for physics, hw, scenario in [(e["physics"], e["hw"], e["scenario"]) for e in entries]:
        e = have.get((physics, hw, scenario))
        if e is None:
            continue
        out.append("")
        out.append(f"### {scenario} on {hw} — {physics} physics")
        out.append("")
        code = e["code"]
        dirty = " plus uncommitted changes" if code["dirty"] else ""
        sw = e["sweep"]
        out.append(
            f"Offered utilisation at ×1: {e['offered_utilisation']:.3f} of the whole chip "
            f"(DRAM {e['offered_dram_utilisation']:.3f}); hardware `{e['hw_name']}` "
            f"(sha256 {e['hw_sha256'][:12]}); data `{e['file']}`. Code: commit "
            f"`{(code['commit'] or 'unknown')[:12]}`{dirty}; seeds {sw['seed_list']}; capacity "
            f"bisected {sw['bisect_steps']} steps."
        )
        out.append("")
        out.append(sweep_tables(e["sweep"]).rstrip())
    out.extend(["", END])
    return "\n".join(out) + "\n"


@app.command("results")
def results(
    scenarios: Annotated[
        str, typer.Option("--scenarios", help="Shipped scenario names, comma-separated, or all.")
    ] = "all",
    hw: Annotated[
        str, typer.Option("--hw", help="Chips, comma-separated.")
    ] = "edge-8x8,edge-4x4,datacenter-16x16",
    physics: Annotated[
        str, typer.Option("--physics", help="fair, premise, or both: fair,premise.")
    ] = "fair,premise",
    scales: Annotated[str, typer.Option("--scales", help="Grid scales.")] = "0.5,1,2,4,6,8",
    seeds: Annotated[int, typer.Option("--seeds", min=2, help="Seeds per point.")] = 5,
    ablations_on: Annotated[
        str,
        typer.Option(
            "--ablations-on",
            help="Chips (of --hw) whose sweeps include the IsoSched ablations, or none.",
        ),
    ] = "edge-8x8",
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Local processes (0: cores).")
    ] = 0,
    data: Annotated[Path, typer.Option("--data", help="Where the sweep documents go.")] = ROOT
    / "docs"
    / "results-data",
    markdown: Annotated[
        Path, typer.Option("--markdown", help="File whose generated block is rewritten.")
    ] = ROOT / "docs" / "results.md",
    point_cache: Annotated[
        Path | None, typer.Option("--point-cache", help="Point cache directory.")
    ] = None,
    budget_min: Annotated[
        float, typer.Option("--budget-min", min=0, help="Start no sweep after this many minutes.")
    ] = 0.0,
    bisect_steps: Annotated[
        int, typer.Option("--bisect-steps", min=0, max=12, help="Capacity bisection steps.")
    ] = 3,
    render_only: Annotated[
        bool, typer.Option("--render-only", help="Only rewrite the tables from the data.")
    ] = False,
) -> None:
    """Sweep every scenario x chip x physics x policy; write the data and the tables."""
    # the defaults above are isosched.sim.sweep's DEFAULT_SEEDS and BISECT_STEPS (test_sweep.py)
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_models
    from isosched.io.scenario_library import load_scenario, shipped_scenarios
    from isosched.plan import PlanCache
    from isosched.plan.cache import default_cache_dir
    from isosched.report.tables import PHYSICS
    from isosched.sim.load import offered_load
    from isosched.sim.point_cache import PointCache
    from isosched.sim.policies import ABLATION_NAMES, POLICY_NAMES
    from isosched.sim.sweep import plan_book, sweep
    from isosched.trace.generate import parse_scales

    names = list(shipped_scenarios()) if scenarios == "all" else scenarios.split(",")
    by_name = {sc.name: sc for sc in (load_scenario(n) for n in names)}
    chips = hw.split(",")
    settings = physics.split(",")
    for p in settings:
        if p not in PHYSICS:
            raise IsoschedError(f"unknown physics {p!r}; one of {', '.join(PHYSICS)}")
    chip_files = {chip: load_hardware(chip) for chip in chips}  # every chip checked up front
    ablated = [] if ablations_on == "none" else ablations_on.split(",")
    for chip in ablated:
        if chip not in chips:
            raise IsoschedError(
                f"--ablations-on names {chip!r}, which is not a chip of --hw "
                f"({', '.join(chips)}); give chips of --hw, or none"
            )
    factors = parse_scales(scales)  # checked before any point runs
    stamp = code_stamp()
    planned = [(p, h, s) for h in chips for p in settings for s in by_name]
    t0 = time.monotonic()
    for i, (phys, chip, name) in enumerate([] if render_only else planned):
        if budget_min and time.monotonic() - t0 > budget_min * 60:
            sys.stderr.write(
                f"budget of {budget_min:g} min spent: {len(planned) - i} sweeps not started\n"
            )
            break
        sc = by_name[name]
        hardware = physics_hardware(chip_files[chip], phys)
        policies = list(POLICY_NAMES) + (list(ABLATION_NAMES) if chip in ablated else [])
        models = load_models(s.model for s in sc.streams)
        cache = PhysicsBlindStore(PointCache(point_cache or default_cache_dir(), models))
        label = f"[{i + 1}/{len(planned)}] {name} on {chip} ({phys})"

        def progress(msg: str, label: str = label) -> None:
            sys.stderr.write(f"{label}: {msg}\n")

        with workers_stop_with_us(progress) as report:
            doc = sweep(
                sc,
                hardware,
                policies,
                factors,
                seeds,
                workers=workers or os.cpu_count() or 1,
                progress=report,
                models=models,
                cache=PlanCache(),
                bisect_steps=bisect_steps,
                point_cache=cache,
            )
        load = offered_load(sc, plan_book(hardware, models, PlanCache()), 1.0)
        rel = Path(phys) / chip / f"{name}.json"
        entry = {
            "schema": RESULTS_SCHEMA,
            "physics": phys,
            "physics_description": PHYSICS[phys],
            "hw": chip,
            "hw_name": hardware.name,
            "hw_sha256": _hw_sha(hardware),
            "scenario": name,
            "offered_utilisation": load["utilisation"],
            "offered_dram_utilisation": load["dram_utilisation"],
            "code": stamp,
            "file": str(Path("docs") / "results-data" / rel),
            "sweep": doc,
        }
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
        progress(f"written {path} ({cache.hits} cached points, {cache.stored} new)")
    # every sweep in the data directory (earlier runs' too), planned ones in plan order first
    found = {
        (f.parent.parent.name, f.parent.name, f.stem): f
        for f in data.glob("*/*/*.json")
        if f.parent.parent.parent == data
    }
    order = planned + sorted(k for k in found if k not in planned)
    entries = [json.loads(found[k].read_text(encoding="utf-8")) for k in order if k in found]
    index = [
        {
            "physics": e["physics"],
            "hw": e["hw"],
            "scenario": e["scenario"],
            "file": e["file"],
            "offered_utilisation": e["offered_utilisation"],
            "code": e["code"],
            "lbt_capacity": {
                p: {"value": b["lbt_capacity"], "censored": b["lbt_capacity_censored"]}
                for p, b in e["sweep"]["policies"].items()
            },
        }
        for e in entries
    ]
    data.mkdir(parents=True, exist_ok=True)
    (data / "index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    text = markdown.read_text(encoding="utf-8") if markdown.is_file() else ""
    block = _render(entries, planned, stamp["isosched_sha256"])
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) + 1 :]
    else:
        text = text + ("\n" if text else "") + block
    markdown.write_text(text, encoding="utf-8")
    done = sum(1 for k in planned if k in found)
    sys.stderr.write(
        f"{done}/{len(planned)} planned sweeps done; {len(entries)} tables in {markdown}\n"
    )
