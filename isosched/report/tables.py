"""Markdown tables of sweep documents (``isosched results`` writes them into docs/results.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from isosched.report.palette import policy_order

__all__ = [
    "BASELINES",
    "PHYSICS",
    "capacity_cell",
    "capacity_rank",
    "scoreboard",
    "scoreboard_rows",
    "stream_satisfaction",
    "sweep_tables",
    "tier_table",
]

#: Physics settings results are shown under: name -> one-line description.
PHYSICS = {
    "fair": "one physics: LTS keeps activations on-chip when they fit (default)",
    "premise": "the paper's premise: every LTS intermediate tensor goes through DRAM "
    "(`dataflow.lts_activations_via_dram`)",
}


#: The baselines IsoSched is compared with, in the order of the scoreboard's columns.
BASELINES = ("hasp", "prema", "planaria", "cdmsa", "moca", "fcfs")


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
        return f"{_short(doc, policy)} (censored)"
    if body["lbt_capacity_below_floor"]:
        return f"{_short(doc, policy)} (below floor)"
    lo, hi = body["lbt_capacity_bracket"]
    return f"{_short(doc, policy)} ({lo:.3g}–{hi:.3g})"


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


def capacity_rank(doc: dict[str, Any], policy: str) -> tuple[int, float]:
    """An orderable form of a policy's LBT capacity in ``doc``.

    Below the floor < any bisected capacity < censored (a censored policy passed every grid
    scale, which every other policy failed somewhere); equal ranks are ties.
    """
    body = doc["policies"][policy]
    if body["lbt_capacity_censored"]:
        return (2, float(body["lbt_capacity"]))
    if body["lbt_capacity_below_floor"]:
        return (0, 0.0)
    return (1, float(body["lbt_capacity_bracket"][0]))


def _short(doc: dict[str, Any], policy: str) -> str:
    body = doc["policies"][policy]
    if body["lbt_capacity_censored"]:
        return f"≥ {body['lbt_capacity']:g}"
    if body["lbt_capacity_below_floor"]:
        return f"< {doc['capacity_floor']:g}"
    return f"{body['lbt_capacity_bracket'][0]:.3g}"


def scoreboard_rows(entries: Sequence[dict[str, Any]], tuning: str = "ad_urban") -> dict[str, Any]:
    """IsoSched's LBT capacity against each baseline's, one row per results table.

    ``entries`` are ``isosched.results/v1`` documents (those without ``isosched`` are left
    out). Returns ``columns`` (the baselines present), ``rows`` (fair first, then by chip and
    scenario; each with ``scenario``, ``hw``, ``physics``, ``tuning``, ``isosched`` (its capacity
    as text) and ``cells``: per column ``None`` or ``(capacity text, outcome)``, the outcome
    ``"W"`` (IsoSched higher), ``"T"`` (equal) or ``"L"`` (lower)) and ``tally``: per physics,
    per column, ``[wins, ties, losses]``.
    """
    docs = [e for e in entries if "isosched" in e["sweep"]["policies"]]
    cols = [b for b in BASELINES if any(b in e["sweep"]["policies"] for e in docs)]
    order = {"fair": 0, "premise": 1}
    docs.sort(key=lambda e: (order.get(e["physics"], 2), e["physics"], e["hw"], e["scenario"]))
    rows: list[dict[str, Any]] = []
    tally: dict[str, dict[str, list[int]]] = {}
    for e in docs:
        sw = e["sweep"]
        mine = capacity_rank(sw, "isosched")
        counts = tally.setdefault(e["physics"], {b: [0, 0, 0] for b in cols})
        cells: list[tuple[str, str] | None] = []
        for b in cols:
            if b not in sw["policies"]:
                cells.append(None)
                continue
            theirs = capacity_rank(sw, b)
            k = 0 if mine > theirs else 1 if mine == theirs else 2
            counts[b][k] += 1
            cells.append((_short(sw, b), "WTL"[k]))
        rows.append(
            {
                "scenario": e["scenario"],
                "hw": e["hw"],
                "physics": e["physics"],
                "tuning": e["scenario"] == tuning,
                "isosched": _short(sw, "isosched"),
                "cells": cells,
            }
        )
    return {"columns": cols, "rows": rows, "tally": tally}


def scoreboard(entries: Sequence[dict[str, Any]], tuning: str = "ad_urban") -> str:
    """:func:`scoreboard_rows` as a Markdown table.

    A cell is the baseline's capacity and IsoSched's outcome against it: **W** (IsoSched
    higher), T (equal), **L** (lower); the last rows count them per physics setting. Rows of the
    tuning scenario are marked.
    """
    board = scoreboard_rows(entries, tuning)
    cols = board["columns"]
    mark = {"W": "**W**", "T": "T", "L": "**L**"}
    lines = [
        "| scenario | chip | physics | isosched | " + " | ".join(cols) + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for r in board["rows"]:
        cells = ["–" if c is None else f"{c[0]} {mark[c[1]]}" for c in r["cells"]]
        name = r["scenario"] + (" (tuning)" if r["tuning"] else "")
        lines.append(
            f"| {name} | {r['hw']} | {r['physics']} | {r['isosched']} | " + " | ".join(cells) + " |"
        )
    for physics, counts in board["tally"].items():
        lines.append(
            f"| **{physics}: wins / ties / losses** | | | | "
            + " | ".join(f"{w} / {t} / {l_}" for w, t, l_ in counts.values())
            + " |"
        )
    return "\n".join(lines) + "\n"


def stream_satisfaction(
    doc: dict[str, Any], scale: float | None = None
) -> tuple[float, list[str], list[dict[str, Any]]]:
    """Mean satisfaction of every stream under every policy at one grid scale of a sweep.

    ``scale`` ``None``: the first grid scale at which some policy misses the target (where the
    policies part), else the largest. Returns the scale, the policies and one row per stream:
    ``stream`` and ``cells`` (per policy ``None`` or ``(mean, [low, high])``).

    Raises
    ------
    ValueError
        If ``scale`` is not a grid scale of the sweep.
    """
    policies = policy_order(doc["policies"])  # the order of every other table and chart
    curves = {p: {c["scale"]: c for c in doc["policies"][p]["curve"]} for p in policies}
    grid = sorted({x for cs in curves.values() for x in cs})
    if scale is None:
        target = doc.get("target", 0.99)
        parts = [
            x
            for x in grid
            if any(x in cs and cs[x]["satisfaction"] < target for cs in curves.values())
        ]
        scale = parts[0] if parts else grid[-1]
    elif scale not in grid:
        raise ValueError(
            f"scale {scale:g} is not a grid scale ({', '.join(f'{x:g}' for x in grid)})"
        )
    streams = sorted({s for cs in curves.values() if scale in cs for s in cs[scale]["streams"]})
    rows = []
    for sid in streams:
        cells: list[tuple[float, Any] | None] = []
        for p in policies:
            got = curves[p].get(scale, {}).get("streams", {}).get(sid)
            cells.append(
                None if got is None else (got["satisfaction"], got.get("satisfaction_ci95"))
            )
        rows.append({"stream": sid, "cells": cells})
    return scale, policies, rows


#: The task-complexity tiers of the scenario library, smallest models first.
TIERS = ("tier_s", "tier_m", "tier_l", "tier_xl")


def tier_table(entries: Sequence[dict[str, Any]], physics: str = "fair") -> str:
    """Every policy's LBT capacity across the complexity tiers, one column per (chip, tier).

    The paper claims IsoSched's lead over HASP "across varying task complexities"; this table
    puts the tiers side by side. Empty when no tier was run under ``physics``.
    """
    got = {
        (e["hw"], e["scenario"]): e["sweep"]
        for e in entries
        if e["physics"] == physics and e["scenario"] in TIERS
    }
    if not got:
        return ""
    cols = sorted(got, key=lambda k: (k[0], TIERS.index(k[1])))
    policies = [p for p in ("isosched", *BASELINES) if any(p in got[c]["policies"] for c in cols)]
    lines = [
        "| policy | "
        + " | ".join(f"{hw} {t.removeprefix('tier_').upper()}" for hw, t in cols)
        + " |",
        "|---|" + "---|" * len(cols),
    ]
    for p in policies:
        cells = [_short(got[c], p) if p in got[c]["policies"] else "–" for c in cols]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
