"""Vega-Lite chart specifications built from replay, sweep and plan documents.

Every function returns a plain ``dict`` (a Vega-Lite v6 specification with its data inline), so
tests check the marks, fields and titles without a browser. Every chart has axis titles with units
and a legend.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

__all__ = [
    "critical_by_stream",
    "energy_breakdown",
    "latency_cdf",
    "plan_mesh",
    "sweep_lines",
    "tile_gantt",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
WIDTH = 560
POLICY_LEGEND = {"title": "policy"}


def _spec(title: str, **body: Any) -> dict[str, Any]:
    return {"$schema": SCHEMA, "title": title, "width": WIDTH, "height": 300, **body}


def latency_cdf(runs: dict[str, dict[str, Any]], points: int = 200) -> dict[str, Any]:
    """Cumulative distribution of job latency (release to finish, ms) per policy.

    ``runs`` maps policy to its run details (:func:`isosched.report.run_details`). Unfinished
    jobs count in the denominator, so a curve ends below 1 when jobs were dropped. At most
    ``points`` quantiles are drawn per policy.
    """
    values: list[dict[str, Any]] = []
    for policy, d in runs.items():
        jobs = d["jobs"]
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
    return _spec(
        "Latency CDF",
        data={"values": values},
        mark={"type": "line", "interpolate": "step-after", "point": False},
        encoding={
            "x": {
                "field": "latency_ms",
                "type": "quantitative",
                "title": "latency, release to finish (ms)",
                "scale": {"type": "log"},
            },
            "y": {
                "field": "fraction",
                "type": "quantitative",
                "title": "fraction of jobs finished within",
                "scale": {"domain": [0, 1]},
            },
            "color": {"field": "policy", "type": "nominal", "legend": POLICY_LEGEND},
            "tooltip": [
                {"field": "policy"},
                {"field": "latency_ms", "format": ".2f", "title": "latency (ms)"},
                {"field": "fraction", "format": ".3f"},
            ],
        },
    )


def critical_by_stream(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Deadline satisfaction of each critical stream per policy (all streams when none is)."""
    streams: dict[tuple[str, str], list[bool]] = defaultdict(list)
    any_critical = any(j["critical"] for d in runs.values() for j in d["jobs"])
    for policy, d in runs.items():
        for j in d["jobs"]:
            if j["critical"] or not any_critical:
                streams[(policy, j["stream"])].append(bool(j["met"]))
    values = [
        {"policy": p, "stream": s, "satisfaction": sum(m) / len(m), "jobs": len(m)}
        for (p, s), m in sorted(streams.items())
    ]
    which = "critical streams" if any_critical else "streams"
    return _spec(
        f"Deadline satisfaction of {which}",
        data={"values": values},
        mark={"type": "bar"},
        encoding={
            "x": {"field": "stream", "type": "nominal", "title": "stream"},
            "xOffset": {"field": "policy", "type": "nominal"},
            "y": {
                "field": "satisfaction",
                "type": "quantitative",
                "title": "jobs meeting their deadline (fraction)",
                "scale": {"domain": [0, 1]},
            },
            "color": {"field": "policy", "type": "nominal", "legend": POLICY_LEGEND},
            "tooltip": [
                {"field": "policy"},
                {"field": "stream"},
                {"field": "satisfaction", "format": ".3f"},
                {"field": "jobs"},
            ],
        },
    )


def energy_breakdown(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Energy per policy (mJ), split into inference and checkpoint/restore."""
    values: list[dict[str, Any]] = []
    for policy, d in runs.items():
        total = sum(j["energy_pj"] for j in d["jobs"]) * 1e-9
        ckpt = sum(j["checkpoint_pj"] for j in d["jobs"]) * 1e-9
        values.append({"policy": policy, "part": "inference", "energy_mj": total - ckpt})
        values.append({"policy": policy, "part": "checkpoint and restore", "energy_mj": ckpt})
    return _spec(
        "Energy breakdown",
        data={"values": values},
        mark={"type": "bar"},
        encoding={
            "x": {"field": "policy", "type": "nominal", "title": "policy"},
            "y": {
                "field": "energy_mj",
                "type": "quantitative",
                "title": "energy (mJ)",
                "stack": "zero",
            },
            "color": {"field": "part", "type": "nominal", "legend": {"title": "energy spent on"}},
            "tooltip": [
                {"field": "policy"},
                {"field": "part"},
                {"field": "energy_mj", "format": ".2f", "title": "energy (mJ)"},
            ],
        },
    )


_SWEEP_METRICS = {
    "lbt_per_s": "latency-bound throughput (deadline-meeting jobs/s)",
    "satisfaction": "deadline satisfaction (fraction of jobs)",
    "critical_satisfaction": "critical deadline satisfaction (fraction)",
}


def sweep_lines(doc: dict[str, Any], metric: str = "lbt_per_s") -> dict[str, Any]:
    """A sweep metric against load scale, one line per policy, LBT capacity marked.

    The capacity of each policy (largest scale meeting the satisfaction target) is a dashed
    vertical rule in the policy's colour; satisfaction charts also show the target.
    """
    if metric not in _SWEEP_METRICS:
        raise ValueError(f"unknown sweep metric {metric!r}; one of {', '.join(_SWEEP_METRICS)}")
    values = [
        {"policy": p, "scale": pt["scale"], "value": pt[metric]}
        for p, body in doc["policies"].items()
        for pt in body["curve"]
    ]
    caps = [
        {"policy": p, "capacity": body["lbt_capacity"]}
        for p, body in doc["policies"].items()
        if body["lbt_capacity"] > 0
    ]
    color = {"field": "policy", "type": "nominal", "legend": POLICY_LEGEND}
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": values},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "scale", "type": "quantitative", "title": "load scale (×)"},
                "y": {"field": "value", "type": "quantitative", "title": _SWEEP_METRICS[metric]},
                "color": color,
                "tooltip": [
                    {"field": "policy"},
                    {"field": "scale", "title": "load scale"},
                    {"field": "value", "format": ".3f", "title": metric},
                ],
            },
        },
        {
            "data": {"values": caps},
            "mark": {"type": "rule", "strokeDash": [6, 4], "strokeWidth": 1.5},
            "encoding": {
                "x": {"field": "capacity", "type": "quantitative"},
                "color": color,
                "tooltip": [{"field": "policy"}, {"field": "capacity", "title": "LBT capacity"}],
            },
        },
    ]
    if metric != "lbt_per_s":
        layers.append(
            {
                "data": {"values": [{"target": doc.get("target", 0.99)}]},
                "mark": {"type": "rule", "color": "#888"},
                "encoding": {"y": {"field": "target", "type": "quantitative"}},
            }
        )
    title = f"{_SWEEP_METRICS[metric].split(' (')[0].capitalize()} against load (dashed: capacity)"
    return _spec(title, layer=layers)


def tile_gantt(
    bars: list[dict[str, Any]], tiles: int, t0_ms: float, t1_ms: float, truncated: bool = False
) -> dict[str, Any]:
    """Tiles × time: one colour per job, checkpoints and restores overlaid in grey and black.

    ``bars`` come from :func:`isosched.report.gantt_window`.
    """
    runs = [b for b in bars if b["kind"] == "run"]
    saves = [b for b in bars if b["kind"] != "run"]
    x = {
        "field": "start_ms",
        "type": "quantitative",
        "title": "time (ms)",
        "scale": {"domain": [t0_ms, t1_ms]},
    }
    y = {
        "field": "tile",
        "type": "ordinal",
        "title": "tile (y × width + x)",
        "axis": {"labelOverlap": True},
        "scale": {"domain": list(range(tiles))},
    }
    tooltip = [
        {"field": "job"},
        {"field": "stream"},
        {"field": "kind"},
        {"field": "tile"},
        {"field": "start_ms", "format": ".3f", "title": "start (ms)"},
        {"field": "end_ms", "format": ".3f", "title": "end (ms)"},
    ]
    title = f"Tiles over time, {t0_ms:g}–{t1_ms:g} ms"
    if truncated:
        title += " (truncated: zoom in)"
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": 900,
        "height": max(200, min(600, 9 * tiles)),
        "layer": [
            {
                "data": {"values": runs},
                "mark": {"type": "bar", "clip": True},
                "encoding": {
                    "x": x,
                    "x2": {"field": "end_ms"},
                    "y": y,
                    "color": {
                        "field": "job",
                        "type": "nominal",
                        "legend": {"title": "job", "columns": 2, "symbolLimit": 40},
                        "scale": {"scheme": "tableau20"},
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "data": {"values": saves},
                "mark": {"type": "bar", "clip": True},
                "encoding": {
                    "x": x,
                    "x2": {"field": "end_ms"},
                    "y": y,
                    "color": {
                        "field": "kind",
                        "type": "nominal",
                        "legend": {"title": "preemption"},
                        "scale": {"domain": ["checkpoint", "restore"], "range": ["#222", "#999"]},
                    },
                    "tooltip": tooltip,
                },
            },
        ],
        "resolve": {"scale": {"color": "independent"}},
    }


def plan_mesh(doc: dict[str, Any], segment: int = 0) -> dict[str, Any]:
    """One segment of an ``isosched.plan/v1`` document on the mesh: vertices on tiles, edges.

    Vertices sharing a tile are spread around its centre; edges are drawn between vertex
    positions, their width growing with the bytes they carry.
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
    layer_of = {v["id"]: (v.get("layers") or [v["id"]])[0] for v in seg["tile_graph"]["vertices"]}
    grid = [{"x": x, "y": y, "used": (x, y) in on_tile} for x in range(w) for y in range(h)]
    verts = [
        {"vertex": vid, "layer": layer_of.get(vid, vid), "x": p[0], "y": p[1]}
        for vid, p in sorted(pos.items())
    ]
    edges = [
        {
            "src": e["src"],
            "dst": e["dst"],
            "x": pos[e["src"]][0],
            "y": pos[e["src"]][1],
            "x2": pos[e["dst"]][0],
            "y2": pos[e["dst"]][1],
            "kib": e["bytes"] / 1024,
        }
        for e in seg["tile_graph"]["edges"]
        if e["src"] in pos and e["dst"] in pos
    ]
    sx = {"domain": [-0.5, w - 0.5], "nice": False, "zero": False}
    sy = {"domain": [h - 0.5, -0.5], "nice": False, "zero": False}
    xe = {"field": "x", "type": "quantitative", "title": "mesh x (tile)", "scale": sx}
    ye = {"field": "y", "type": "quantitative", "title": "mesh y (tile)", "scale": sy}
    side = max(240, min(640, 40 * max(w, h)))
    return {
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
                "mark": {"type": "square", "size": max(40, 9000 / max(w, h) ** 2)},
                "encoding": {
                    "x": xe,
                    "y": ye,
                    "color": {
                        "field": "used",
                        "type": "nominal",
                        "legend": {"title": "tile used"},
                        "scale": {"domain": [True, False], "range": ["#dde7f3", "#f4f4f4"]},
                    },
                },
            },
            {
                "data": {"values": edges},
                "mark": {"type": "rule", "opacity": 0.6},
                "encoding": {
                    "x": xe,
                    "y": ye,
                    "x2": {"field": "x2"},
                    "y2": {"field": "y2"},
                    "strokeWidth": {
                        "field": "kib",
                        "type": "quantitative",
                        "title": "edge (KiB)",
                        "scale": {"range": [0.5, 4]},
                    },
                    "tooltip": [
                        {"field": "src"},
                        {"field": "dst"},
                        {"field": "kib", "format": ".1f"},
                    ],
                },
            },
            {
                "data": {"values": verts},
                "mark": {"type": "circle", "size": 60, "opacity": 1},
                "encoding": {
                    "x": xe,
                    "y": ye,
                    "fill": {
                        "field": "layer",
                        "type": "nominal",
                        "legend": {"title": "layer", "symbolLimit": 24},
                        "scale": {"scheme": "tableau20"},
                    },
                    "tooltip": [{"field": "vertex"}, {"field": "layer"}],
                },
            },
        ],
        "resolve": {"scale": {"color": "independent"}},
    }
