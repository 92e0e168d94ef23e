"""Vega-Lite chart specifications built from replay, sweep and plan documents.

Every function returns a plain ``dict`` (a Vega-Lite v6 specification with its data inline), so
tests check the marks, fields and titles without a browser. Every chart has axis titles with units
and a legend.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from isosched.report.palette import (
    policy_colour_encoding,
    policy_dash_encoding,
    policy_order,
    stream_colour,
)

__all__ = [
    "critical_by_stream",
    "energy_breakdown",
    "job_gantt",
    "latency_cdf",
    "layer_group",
    "plan_mesh",
    "sweep_capacities",
    "sweep_lines",
    "sweep_points",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
#: Charts fill the width of their container (the page), at this height in pixels.
HEIGHT = 300
#: Capacity labels (rotated text) nearer than this fraction of the load axis are merged into one:
#: 5 % is about 14 px on a phone, a line of the labels' text.
LABEL_GAP = 0.05


def _spec(title: str, **body: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": "container",
        "height": HEIGHT,
        "autosize": {"type": "fit-x", "contains": "padding"},
        **body,
    }


def _nearest_points(tooltip: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A layer of invisible points whose tooltip shows for the point nearest the pointer.

    The nearest-point selection lays a Voronoi diagram over the points, so the pointer need not
    be on a 1-pixel line; the chosen point is drawn.
    """
    return {
        "mark": {"type": "point", "filled": True, "size": 70},
        "params": [
            {
                "name": name,
                "select": {
                    "type": "point",
                    "nearest": True,
                    "on": "pointerover",
                    "clear": "pointerout",
                },
            }
        ],
        "encoding": {
            "opacity": {"condition": {"param": name, "empty": False, "value": 1}, "value": 0},
            "tooltip": tooltip,
        },
    }


def latency_cdf(runs: dict[str, dict[str, Any]], points: int = 200) -> dict[str, Any]:
    """Cumulative distribution of job latency (release to finish, ms) per policy.

    ``runs`` maps policy to its run details (:func:`isosched.report.run_details`). Unfinished
    jobs count in the denominator, so a curve ends below 1 when jobs were dropped. At most
    ``points`` quantiles are drawn per policy. Policies keep their colour and dash pattern
    (:mod:`isosched.report.palette`), so coinciding curves stay visible.
    """
    values: list[dict[str, Any]] = []
    for policy in policy_order(runs):
        jobs = runs[policy]["jobs"]
        lat = sorted(
            (j["finish_us"] - j["release_us"]) / 1e3 for j in jobs if j["finish_us"] is not None
        )
        n = len(jobs)
        if not lat:
            continue
        step = max(1, math.ceil(len(lat) / points))
        idx = [*range(0, len(lat), step), len(lat) - 1]
        values.extend(
            {"policy": policy, "latency_ms": lat[i], "fraction": (i + 1) / n}
            for i in sorted(set(idx))
        )
    tooltip = [
        {"field": "policy"},
        {"field": "latency_ms", "format": ".2f", "title": "latency (ms)"},
        {"field": "fraction", "format": ".3f", "title": "fraction finished within"},
    ]
    return _spec(
        "Latency CDF",
        data={"values": values},
        encoding={
            "x": {
                "field": "latency_ms",
                "type": "quantitative",
                "title": "latency, release to finish (ms)",
                "scale": {"type": "log"},
                # a log axis labels 0.3, 0.4, 0.5 … side by side: on a phone they ran together
                "axis": {"labelOverlap": "greedy", "labelSeparation": 4, "labelFlush": True},
            },
            "y": {
                "field": "fraction",
                "type": "quantitative",
                "title": "fraction of jobs finished within",
                "scale": {"domain": [0, 1]},
            },
            "color": policy_colour_encoding(runs),
        },
        layer=[
            {
                "mark": {"type": "line", "interpolate": "step-after", "strokeWidth": 2},
                "encoding": {"strokeDash": policy_dash_encoding(runs)},
            },
            _nearest_points(tooltip, "cdf_near"),
        ],
    )


def critical_by_stream(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Deadline satisfaction of each critical stream per policy (all streams when none is).

    Each bar is labelled with its met / jobs count, so that a row of full bars still says how
    many jobs it stands for.
    """
    streams: dict[tuple[str, str], list[bool]] = defaultdict(list)
    any_critical = any(j["critical"] for d in runs.values() for j in d["jobs"])
    for policy, d in runs.items():
        for j in d["jobs"]:
            if j["critical"] or not any_critical:
                streams[(policy, j["stream"])].append(bool(j["met"]))
    values = [
        {
            "policy": p,
            "stream": s,
            "satisfaction": sum(m) / len(m),
            "jobs": len(m),
            "label": f"{sum(m)}/{len(m)}",
        }
        for (p, s), m in sorted(streams.items())
    ]
    which = "critical streams" if any_critical else "streams"
    order = policy_order(runs)
    enc = {
        "x": {"field": "stream", "type": "nominal", "title": "stream"},
        "xOffset": {"field": "policy", "type": "nominal", "sort": order},
        "y": {
            "field": "satisfaction",
            "type": "quantitative",
            "title": "jobs meeting their deadline (fraction)",
            "scale": {"domain": [0, 1]},
        },
        "tooltip": [
            {"field": "policy"},
            {"field": "stream"},
            {"field": "satisfaction", "format": ".3f"},
            {"field": "label", "title": "met / jobs"},
        ],
    }
    return _spec(
        f"Deadline satisfaction of {which} (labels: met / jobs)",
        data={"values": values},
        encoding=enc,
        layer=[
            {
                "mark": {"type": "bar"},
                "encoding": {"color": policy_colour_encoding(runs, lines=False)},
            },
            {
                "mark": {"type": "text", "angle": 270, "align": "right", "dx": -4, "fontSize": 10},
                "encoding": {"text": {"field": "label"}, "color": {"value": "white"}},
            },
        ],
    )


def energy_breakdown(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Energy per policy (mJ), split into inference and checkpoint/restore.

    The checkpoint share is often a fraction of a percent, too thin to see as a bar segment, so
    each bar is labelled with it (the number alone, which the title explains: seven labels fit a
    phone's width).
    """
    values: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for policy in policy_order(runs):
        d = runs[policy]
        total = sum(j["energy_pj"] for j in d["jobs"]) * 1e-9
        ckpt = sum(j["checkpoint_pj"] for j in d["jobs"]) * 1e-9
        values.append({"policy": policy, "part": "inference", "energy_mj": total - ckpt})
        values.append({"policy": policy, "part": "checkpoint and restore", "energy_mj": ckpt})
        share = 100 * ckpt / total if total > 0 else 0.0
        labels.append({"policy": policy, "energy_mj": total, "label": f"{share:.2f} %"})
    x = {"field": "policy", "type": "nominal", "title": "policy", "sort": policy_order(runs)}
    return _spec(
        "Energy breakdown (labels: checkpoint and restore share)",
        data={"values": values},
        layer=[
            {
                "mark": {"type": "bar"},
                "encoding": {
                    "x": x,
                    "y": {
                        "field": "energy_mj",
                        "type": "quantitative",
                        "title": "energy (mJ)",
                        "stack": "zero",
                    },
                    "color": {
                        "field": "part",
                        "type": "nominal",
                        "legend": {"title": "energy spent on"},
                        "scale": {
                            "domain": ["inference", "checkpoint and restore"],
                            "range": ["#9db7d5", "#b2182b"],
                        },
                    },
                    "tooltip": [
                        {"field": "policy"},
                        {"field": "part"},
                        {"field": "energy_mj", "format": ".3f", "title": "energy (mJ)"},
                    ],
                },
            },
            {
                "data": {"values": labels},
                "mark": {"type": "text", "dy": -6, "fontSize": 11},
                "encoding": {
                    "x": x,
                    "y": {"field": "energy_mj", "type": "quantitative"},
                    "text": {"field": "label"},
                },
            },
        ],
    )


_SWEEP_METRICS = {
    "lbt_per_s": "latency-bound throughput (deadline-meeting jobs/s)",
    "satisfaction": "deadline satisfaction (fraction of jobs)",
    "critical_satisfaction": "critical deadline satisfaction (fraction)",
}


def sweep_points(doc: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """A sweep's curve points of ``metric`` per policy, v2 intervals when present.

    Reads ``isosched.sweep/v2`` (``<metric>_ci95`` ``[low, high]`` per point) and v1 (no
    interval: ``low`` and ``high`` equal the value) alike.
    """
    out = []
    for p in policy_order(doc["policies"]):
        for pt in doc["policies"][p]["curve"]:
            value = pt.get(metric)
            if value is None:
                continue
            ci = pt.get(f"{metric}_ci95")
            low, high = (
                (ci[0], ci[1]) if isinstance(ci, list | tuple) and len(ci) == 2 else (value, value)
            )
            out.append(
                {"policy": p, "scale": pt["scale"], "value": value, "low": low, "high": high}
            )
    return out


def sweep_capacities(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each policy's LBT capacity (load ×), whether it is censored, and its best LBT (jobs/s).

    The best LBT is the highest over every scale measured: the grid's and the bisection's.

    ``censored`` is the v2 field ``lbt_capacity_censored``; a v1 sweep does not say, and there a
    capacity at the largest scale tried is censored (the policy still passed there). Policies come
    in the dashboard's order.
    """
    out = []
    for p in policy_order(doc["policies"]):
        body = doc["policies"][p]
        curve = body.get("curve", [])
        cap = float(body.get("lbt_capacity") or 0.0)
        largest = max((pt["scale"] for pt in curve), default=0.0)
        censored = bool(body.get("lbt_capacity_censored", cap > 0 and cap >= largest))
        probed = [*curve, *body.get("bisection", [])]  # the bisection's points count too
        best = max((pt.get("lbt_per_s") or 0.0 for pt in probed), default=0.0)
        out.append({"policy": p, "capacity": cap, "censored": censored, "best_lbt_per_s": best})
    return out


def sweep_lines(
    doc: dict[str, Any], metric: str = "lbt_per_s", title: str | None = None
) -> dict[str, Any]:
    """A sweep metric against load scale, one line per policy, LBT capacity marked.

    Each policy keeps its colour and dash; a band shows the 95 % interval over seeds when the
    sweep has one (``isosched.sweep/v2``). The capacity of each policy (largest scale meeting
    the satisfaction target) is a dashed vertical rule in the policy's colour, labelled (``≥``
    when censored: the largest scale tried still passed; labels nearer than :data:`LABEL_GAP`
    of the axis share one, so they do not overlap); satisfaction charts also show the
    target. Tooltips follow the nearest point.
    """
    if metric not in _SWEEP_METRICS:
        raise ValueError(f"unknown sweep metric {metric!r}; one of {', '.join(_SWEEP_METRICS)}")
    values = sweep_points(doc, metric)
    names = list(doc["policies"])
    scales = [v["scale"] for v in values] or [1.0]
    caps = [c for c in sweep_capacities(doc) if c["capacity"] > 0]
    # one label per distinct capacity, naming every policy whose rule falls there
    at: dict[Any, list[str]] = defaultdict(list)
    for c in caps:
        at[c["capacity"]].append(c["policy"])
    censored_at = {c["capacity"] for c in caps if c["censored"]}
    lo, hi = min(scales) * 0.95, max(scales) * 1.05
    # labels nearer than LABEL_GAP of the axis would overlap: one label names them all
    groups: list[list[tuple[Any, list[str]]]] = []
    for cap, ps in sorted(at.items()):
        if groups and cap - groups[-1][0][0] < LABEL_GAP * (hi - lo):
            groups[-1].append((cap, ps))
        else:
            groups.append([(cap, ps)])
    cap_labels = [
        {
            "capacity": group[0][0],
            "label": "; ".join(
                f"{', '.join(ps)}: {'≥ ' if cap in censored_at else ''}{cap:g}×"
                for cap, ps in group
            ),
        }
        for group in groups
    ]
    x_scale = {"domain": [lo, hi], "zero": False, "nice": False}
    x = {"field": "scale", "type": "quantitative", "title": "load scale (×)", "scale": x_scale}
    color = policy_colour_encoding(names)
    tooltip = [
        {"field": "policy"},
        {"field": "scale", "title": "load scale (×)"},
        {"field": "value", "format": ".3f", "title": metric},
        {"field": "low", "format": ".3f", "title": "95 % low"},
        {"field": "high", "format": ".3f", "title": "95 % high"},
    ]
    y_title = _SWEEP_METRICS[metric]
    nearest = _nearest_points(tooltip, f"near_{metric}")
    nearest["data"] = {"values": values}
    nearest["encoding"].update(
        {"x": x, "y": {"field": "value", "type": "quantitative"}, "color": color}
    )
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": values},
            "mark": {"type": "errorband", "opacity": 0.15},
            "encoding": {
                "x": x,
                "y": {"field": "low", "type": "quantitative", "title": y_title},
                "y2": {"field": "high"},
                "color": color,
            },
        },
        {
            "data": {"values": values},
            "mark": {"type": "line", "point": True, "strokeWidth": 2},
            "encoding": {
                "x": x,
                "y": {"field": "value", "type": "quantitative", "title": y_title},
                "color": color,
                "strokeDash": policy_dash_encoding(names),
            },
        },
        {
            "data": {"values": caps},
            "mark": {"type": "rule", "strokeDash": [6, 4], "strokeWidth": 1.5},
            "encoding": {
                "x": {"field": "capacity", "type": "quantitative", "scale": x_scale},
                "color": color,
                "tooltip": [
                    {"field": "policy"},
                    {"field": "capacity", "title": "LBT capacity (load ×)"},
                    {"field": "censored", "title": "censored (at least)"},
                ],
            },
        },
        {
            "data": {"values": cap_labels},
            "mark": {
                "type": "text",
                "angle": 270,
                "align": "right",
                "baseline": "bottom",
                "dy": -3,
                "y": 4,
                "color": "#333",
            },
            "encoding": {
                "x": {"field": "capacity", "type": "quantitative", "scale": x_scale},
                "text": {"field": "label"},
            },
        },
        nearest,
    ]
    if metric != "lbt_per_s":
        layers.append(
            {
                "data": {"values": [{"target": doc.get("target", 0.99)}]},
                "mark": {"type": "rule", "color": "#888"},
                "encoding": {"y": {"field": "target", "type": "quantitative"}},
            }
        )
    if title is None:
        title = f"{y_title.split(' (')[0].capitalize()} against load (dashed: capacity)"
    return _spec(title, layer=layers)


#: Fills of the intervals in which a job holds tiles without computing.
MOVING_KINDS = {"checkpoint": "#111111", "restore": "#6b6b6b", "reload": "#b0b0b0"}


def job_gantt(
    jobs: list[dict[str, Any]],
    intervals: list[list[Any]],
    t0_ms: float,
    t1_ms: float,
    truncated: bool = False,
    colours: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One row per job over time; a bar's height is the number of tiles the job held.

    ``jobs`` and ``intervals`` come from :func:`isosched.report.details.chip_window`. Bars are
    coloured by stream (``colours``, e.g. :func:`isosched.report.palette.stream_colours` of the
    run's streams, else :func:`isosched.report.palette.stream_colour`);
    checkpoint, restore and reload spans are drawn over them in greys; a red tick marks each
    deadline in the window. A rule follows the parameter ``now`` (ms), which the chip view moves.
    """
    most = max((len(iv[4]) for iv in intervals), default=1) or 1
    by_row = {j["row"]: j for j in jobs}
    bars = []
    for row, kind, start, end, tiles in intervals:
        j = by_row[row]
        frac = max(len(tiles) / most, 0.08)
        bars.append(
            {
                "row": row,
                "job": j["id"],
                "stream": j["stream"],
                "kind": kind,
                "tiles": len(tiles),
                "start_ms": start,
                "end_ms": end,
                "y0": row + 0.95 - 0.85 * frac,
                "y1": row + 0.95,
            }
        )
    runs = [b for b in bars if b["kind"] == "run"]
    moving = [b for b in bars if b["kind"] != "run"]
    deadlines = [
        {"row": j["row"], "job": j["id"], "deadline_ms": j["deadline_ms"], "y0": j["row"] + 0.05}
        for j in jobs
        if t0_ms <= j["deadline_ms"] <= t1_ms
    ]
    for d in deadlines:
        d["y1"] = d["y0"] + 0.9
    streams = sorted({j["stream"] for j in jobs})
    colours = colours or {}

    def pick(stream: str) -> str:
        return colours.get(stream) or stream_colour(stream)

    n = max(len(jobs), 1)
    x = {
        "field": "start_ms",
        "type": "quantitative",
        "title": "time (ms)",
        "scale": {"domain": [t0_ms, t1_ms], "nice": False},
    }
    names = json.dumps([j["id"] for j in jobs])
    y = {
        "field": "y0",
        "type": "quantitative",
        "title": "job (bar height: tiles held)",
        "scale": {"domain": [n, 0], "nice": False, "zero": False},
        "axis": {
            "values": [r + 0.5 for r in range(len(jobs))],
            "labelExpr": f"{names}[floor(datum.value)]",
            "grid": False,
            "labelOverlap": True,
        },
    }
    tooltip = [
        {"field": "job"},
        {"field": "stream"},
        {"field": "kind"},
        {"field": "tiles", "title": "tiles held"},
        {"field": "start_ms", "format": ".3f", "title": "start (ms)"},
        {"field": "end_ms", "format": ".3f", "title": "end (ms)"},
    ]
    title = f"Jobs over time, {t0_ms:g}–{t1_ms:g} ms"
    if truncated:
        title += f" (first {len(jobs)} jobs: zoom in for the rest)"
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": "container",
        "height": max(160, min(1400, 16 * n)),
        "autosize": {"type": "fit-x", "contains": "padding"},
        "params": [{"name": "now", "value": t0_ms}],
        "layer": [
            {
                "data": {"values": runs},
                "mark": {"type": "rect", "clip": True},
                "encoding": {
                    "x": x,
                    "x2": {"field": "end_ms"},
                    "y": y,
                    "y2": {"field": "y1"},
                    "color": {
                        "field": "stream",
                        "type": "nominal",
                        "legend": {"title": "stream"},
                        "scale": {"domain": streams, "range": [pick(s) for s in streams]},
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "data": {"values": moving},
                "mark": {"type": "rect", "clip": True},
                "encoding": {
                    "x": x,
                    "x2": {"field": "end_ms"},
                    "y": y,
                    "y2": {"field": "y1"},
                    "fill": {
                        "field": "kind",
                        "type": "nominal",
                        "legend": {"title": "moving state (preemption)"},
                        "scale": {
                            "domain": list(MOVING_KINDS),
                            "range": list(MOVING_KINDS.values()),
                        },
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "data": {"values": deadlines},
                "mark": {"type": "rule", "color": "#c0392b", "strokeWidth": 2, "clip": True},
                "encoding": {
                    "x": {"field": "deadline_ms", "type": "quantitative", "scale": x["scale"]},
                    "y": {"field": "y0", "type": "quantitative"},
                    "y2": {"field": "y1"},
                    "tooltip": [
                        {"field": "job"},
                        {"field": "deadline_ms", "format": ".3f", "title": "deadline (ms)"},
                    ],
                },
            },
            {
                "data": {"values": [{}]},
                "transform": [{"calculate": "now", "as": "now_ms"}],
                "mark": {"type": "rule", "color": "#000", "strokeDash": [4, 2]},
                "encoding": {"x": {"field": "now_ms", "type": "quantitative"}},
            },
        ],
        "resolve": {"scale": {"color": "independent", "fill": "independent"}},
    }


def layer_group(layers: list[str]) -> str:
    """The name of the layer group a tile task computes: the layers' common dotted prefix.

    ``["features.9.expand", "features.9.expand.bn"]`` → ``features.9.expand``; layers with no
    common prefix give the first and last (``conv1…pool``); one layer gives its own id.
    """
    if not layers:
        return "(no layer)"
    parts = [name.split(".") for name in layers]
    common: list[str] = []
    for pieces in zip(*parts, strict=False):
        if all(p == pieces[0] for p in pieces):
            common.append(pieces[0])
        else:
            break
    if common:
        return ".".join(common)
    return f"{layers[0]}…{layers[-1]}"


def _block(group: str) -> str:
    """The block a layer group belongs to (its first two dotted parts), for colours."""
    return ".".join(group.split(".")[:2])


def plan_mesh(doc: dict[str, Any], segment: int = 0) -> dict[str, Any]:
    """One segment of an ``isosched.plan/v1`` document on the mesh: its tile graph as placed.

    Vertices sit on their tiles (spread around the centre when several share one), named and
    coloured by their layer group (:func:`layer_group`); edges are lines whose width grows with
    the bytes they carry per inference and whose colour is the hops they cross on the mesh.
    """
    seg = doc["segments"][segment]
    w, h = doc["mesh"]
    on_tile: dict[tuple[int, int], list[str]] = defaultdict(list)
    for vid, (x, y) in seg["placement"].items():
        on_tile[(x, y)].append(vid)
    pos: dict[str, tuple[float, float]] = {}
    for (x, y), vids in on_tile.items():
        for k, vid in enumerate(sorted(vids)):
            if len(vids) == 1:
                pos[vid] = (float(x), float(y))
            else:
                a = 2 * math.pi * k / len(vids)
                pos[vid] = (x + 0.25 * math.cos(a), y + 0.25 * math.sin(a))
    info = {v["id"]: v for v in seg["tile_graph"]["vertices"]}
    grid = [{"x": x, "y": y, "used": (x, y) in on_tile} for x in range(w) for y in range(h)]
    verts = []
    for vid, p in sorted(pos.items()):
        layers = list(info.get(vid, {}).get("layers") or [])
        group = layer_group(layers) if layers else vid
        tile = seg["placement"][vid]
        verts.append(
            {
                "vertex": vid,
                "layer": group,
                "block": _block(group),
                "layers": ", ".join(layers[:6])
                + (f" (+{len(layers) - 6})" if len(layers) > 6 else ""),
                "cycles": info.get(vid, {}).get("cycles", 0),
                "tile": f"({tile[0]}, {tile[1]})",
                "x": p[0],
                "y": p[1],
            }
        )
    edges = []
    for e in seg["tile_graph"]["edges"]:
        if e["src"] not in pos or e["dst"] not in pos:
            continue
        (ax, ay), (bx, by) = seg["placement"][e["src"]], seg["placement"][e["dst"]]
        edges.append(
            {
                "src": e["src"],
                "dst": e["dst"],
                "x": pos[e["src"]][0],
                "y": pos[e["src"]][1],
                "x2": pos[e["dst"]][0],
                "y2": pos[e["dst"]][1],
                "kib": e.get("bytes", 0) / 1024,
                "hops": abs(ax - bx) + abs(ay - by),
            }
        )
    named: set[str] = set()
    for v in verts:  # name a group once, on its first tile task, to keep the mesh readable
        v["label"] = "" if v["layer"] in named else v["layer"]
        named.add(v["layer"])
    sx = {"domain": [-0.5, w - 0.5], "nice": False, "zero": False}
    sy = {"domain": [h - 0.5, -0.5], "nice": False, "zero": False}
    xe = {
        "field": "x",
        "type": "quantitative",
        "title": "mesh x (tile)",
        "scale": sx,
        "axis": {"values": list(range(w)), "grid": False, "format": "d"},
    }
    ye = {
        "field": "y",
        "type": "quantitative",
        "title": "mesh y (tile)",
        "scale": sy,
        "axis": {"values": list(range(h)), "grid": False, "format": "d"},
    }
    side = max(320, min(720, 60 * max(w, h)))
    hop_bound = int(seg.get("hops", doc.get("hops", 2)))
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "title": (
            f"{doc['model']} segment {segment} (of 0..{len(doc['segments']) - 1}) on {doc['hw']}: "
            f"II {seg['ii_cycles']:g} cycles, {seg['tiles_used']} tiles, h={seg['hops']}"
        ),
        "width": side,
        "height": side * h / max(w, 1),
        "layer": [
            {
                "data": {"values": grid},
                "mark": {"type": "square", "size": max(60, 0.55 * (side / max(w, h)) ** 2)},
                "encoding": {
                    "x": xe,
                    "y": ye,
                    "color": {
                        "condition": {"test": "datum.used", "value": "#dde7f3"},
                        "value": "#f4f4f4",
                    },
                    "tooltip": [
                        {"field": "x", "title": "tile x"},
                        {"field": "y", "title": "tile y"},
                        {"field": "used", "title": "used by this segment"},
                    ],
                },
            },
            {
                "data": {"values": edges},
                "mark": {"type": "rule", "opacity": 0.8},
                "encoding": {
                    "x": xe,
                    "y": ye,
                    "x2": {"field": "x2"},
                    "y2": {"field": "y2"},
                    "strokeWidth": {
                        "field": "kib",
                        "type": "quantitative",
                        "title": "edge (KiB per inference)",
                        "scale": {"range": [0.75, 6]},
                    },
                    "color": {
                        "field": "hops",
                        "type": "ordinal",
                        "title": "hops on the mesh",
                        "scale": {
                            "domain": list(range(hop_bound + 1)),
                            "scheme": "orangered",
                        },
                    },
                    "tooltip": [
                        {"field": "src"},
                        {"field": "dst"},
                        {"field": "kib", "format": ".1f", "title": "KiB per inference"},
                        {"field": "hops"},
                    ],
                },
            },
            {
                "data": {"values": verts},
                "mark": {"type": "circle", "size": 90, "opacity": 1, "stroke": "#fff"},
                "encoding": {
                    "x": xe,
                    "y": ye,
                    "fill": {
                        "field": "block",
                        "type": "nominal",
                        "legend": {"title": "layer group", "symbolLimit": 30, "columns": 1},
                        "scale": {"scheme": "tableau20"},
                    },
                    "tooltip": [
                        {"field": "vertex"},
                        {"field": "layer", "title": "layer group"},
                        {"field": "layers"},
                        {"field": "cycles", "format": ",.0f", "title": "stage cycles"},
                        {"field": "tile"},
                    ],
                },
            },
            {
                "data": {"values": verts},
                "mark": {"type": "text", "dy": -11, "fontSize": 9, "color": "#333"},
                "encoding": {"x": xe, "y": ye, "text": {"field": "label"}},
            },
        ],
        "resolve": {"scale": {"color": "independent"}},
    }
    if not edges:  # a segment on one tile: no rules to draw, so no edge legends either
        del spec["layer"][1]
    return spec
