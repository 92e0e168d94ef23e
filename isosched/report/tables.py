"""Markdown tables of sweep documents (``isosched results`` writes them into docs/results.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["PHYSICS", "capacity_cell", "sweep_tables"]

#: Physics settings results are shown under: name -> one-line description.
PHYSICS = {
    "fair": "one physics: LTS keeps activations on-chip when they fit (default)",
    "premise": "the paper's premise: every LTS intermediate tensor goes through DRAM "
    "(`dataflow.lts_activations_via_dram`)",
}


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


def _ci(ci: Sequence[float] | None, fmt: str = ".3f") -> str:
    return "" if ci is None else f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


def capacity_cell(doc: dict[str, Any], policy: str) -> str:
    """LBT capacity as text.

    ``≥ 8 (censored)``, ``< 0.0625 (below floor)``, or ``2.5 (2.5–2.75)``: the capacity and
    the bracket the bisection left.
    """
    body = doc["policies"][policy]
    if body["lbt_capacity_censored"]:
        return f"≥ {body['lbt_capacity']:g} (censored)"
    if body["lbt_capacity_below_floor"]:
        return f"< {doc['capacity_floor']:g} (below floor)"
    lo, hi = body["lbt_capacity_bracket"]
    return f"{lo:.3g} ({lo:.3g}–{hi:.3g})"


def sweep_tables(doc: dict[str, Any], reference_scale: float = 1.0) -> str:
    """Two Markdown tables of one sweep.

    Capacity and the point at ``reference_scale`` per policy; then mean satisfaction (critical
    satisfaction) per grid scale. Intervals are the document's 95 % t-intervals over its seeds.
    """
    lines = []
    ref = reference_scale
    lines.append(
        f"| policy | LBT capacity (bracket) | satisfaction ×{ref:g} [95 % CI] | "
        f"critical ×{ref:g} [95 % CI] | p99 ms ×{ref:g} | mJ / inference ×{ref:g} | "
        f"J at equal work ×{ref:g} | preemptions ×{ref:g} |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for p, body in doc["policies"].items():
        pt = next((c for c in body["curve"] if c["scale"] == ref), None)
        if pt is None:
            lines.append(f"| {p} | {capacity_cell(doc, p)} | – | – | – | – | – | – |")
            continue
        eq = pt["energy_equal_work_mj"]
        lines.append(
            f"| {p} | {capacity_cell(doc, p)} | {pt['satisfaction']:.3f}"
            f"{_ci(pt['satisfaction_ci95'])} | {pt['critical_satisfaction']:.3f}"
            f"{_ci(pt['critical_satisfaction_ci95'])} | {_num(pt['p99_latency_ms'], '.2f')} | "
            f"{_num(pt['energy_per_inference_mj'], '.2f')} | "
            f"{_num(None if eq is None else eq / 1e3, '.2f')} | {pt['preemptions']:.1f} |"
        )
    scales = [c["scale"] for c in next(iter(doc["policies"].values()))["curve"]]
    lines.append("")
    lines.append(
        f"Mean satisfaction (critical satisfaction) by load scale; {doc['seeds']} seeds per point:"
    )
    lines.append("")
    lines.append("| policy | " + " | ".join(f"×{s:g}" for s in scales) + " |")
    lines.append("|---|" + "---|" * len(scales))
    for p, body in doc["policies"].items():
        cells = [
            f"{c['satisfaction']:.3f} ({c['critical_satisfaction']:.3f})" for c in body["curve"]
        ]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
