"""Dashboard data without a browser: run details, Gantt windows and Vega-Lite specs."""

import pytest

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.plan import plan_model, plan_to_doc
from isosched.report import (
    chip_window,
    critical_by_stream,
    energy_breakdown,
    gantt_window,
    job_gantt,
    latency_cdf,
    layer_group,
    plan_mesh,
    run_details,
    sweep_capacities,
    sweep_lines,
    sweep_points,
)
from isosched.sim.replay import replay
from isosched.sim.sweep import sweep
from isosched.trace import generate_trace, parse_scenario
from isosched.zoo import load_zoo_model

SCENARIO = {
    "name": "rep",
    "horizon_ms": 120,
    "streams": [
        {
            "id": "cam",
            "model": "mobilenetv2",
            "period_ms": 10,
            "deadline_ms": 8,
            "priority": 9,
            "critical": True,
        },
        {"id": "bg", "model": "resnet50", "period_ms": 20, "deadline_ms": 60, "priority": 1},
    ],
}


@pytest.fixture(scope="module")
def replayed():
    hw = load_hardware("edge-4x4")
    trace = generate_trace(parse_scenario(SCENARIO), seed=3, scale=2.0)
    models = load_models({j.model for j in trace.jobs})
    doc, runs = replay(trace, hw, ["isosched", "hasp", "fcfs"], models)
    return doc, {p: run_details(r, *hw.mesh) for p, r in runs.items()}


def titled(spec):
    """Every axis and legend of every layer has a title."""
    layers = spec.get("layer", [spec])
    for layer in layers:
        enc = {**spec.get("encoding", {}), **layer.get("encoding", {})}
        for ch in ("x", "y"):
            if ch in enc and "field" in enc[ch] and ch + "2" not in layer["encoding"].get(ch, {}):
                assert enc[ch].get("title") or any(
                    other.get("encoding", {}).get(ch, {}).get("title") for other in [spec, *layers]
                ), (spec["title"], ch)
    return True


def test_run_details_match_the_summary(replayed):
    doc, details = replayed
    for policy, d in details.items():
        m = doc["policies"][policy]
        assert len(d["jobs"]) == m["jobs"]
        assert sum(j["met"] for j in d["jobs"]) == m["met"]
        assert sum(j["energy_pj"] for j in d["jobs"]) * 1e-9 == pytest.approx(m["energy_mj"])
        assert sum(j["preemptions"] for j in d["jobs"]) == m["preemptions"]
        for i, kind, start, end, tiles in d["intervals"]:
            assert 0 <= i < len(d["jobs"]) and kind in ("run", "checkpoint", "restore", "reload")
            assert start < end and tiles and all(0 <= t < 16 for t in tiles)


def test_latency_cdf_is_monotone_and_counts_unfinished_jobs(replayed):
    _, details = replayed
    spec = latency_cdf(details)
    assert spec["layer"][0]["mark"]["type"] == "line" and titled(spec)
    # one colour and one dash per policy, the same on every chart; tooltips on the nearest point
    assert spec["encoding"]["color"]["scale"]["domain"] == ["isosched", "hasp", "fcfs"]
    assert spec["encoding"]["color"]["scale"]["range"] == ["#0072B2", "#E69F00", "#000000"]
    dashes = spec["layer"][0]["encoding"]["strokeDash"]["scale"]["range"]
    assert len({tuple(d) for d in dashes}) == 3
    assert spec["layer"][1]["params"][0]["select"]["nearest"] is True
    assert spec["width"] == "container"
    for policy, d in details.items():
        pts = [v for v in spec["data"]["values"] if v["policy"] == policy]
        fr = [p["fraction"] for p in pts]
        lat = [p["latency_ms"] for p in pts]
        assert fr == sorted(fr) and lat == sorted(lat)
        finished = sum(j["finish_us"] is not None for j in d["jobs"])
        assert fr[-1] == pytest.approx(finished / len(d["jobs"]))


def test_critical_streams_and_energy(replayed):
    doc, details = replayed
    crit = critical_by_stream(details)
    assert {v["stream"] for v in crit["data"]["values"]} == {"cam"} and titled(crit)
    for v in crit["data"]["values"]:
        jobs = [j for j in details[v["policy"]]["jobs"] if j["critical"]]
        assert v["satisfaction"] == pytest.approx(sum(j["met"] for j in jobs) / len(jobs))
    energy = energy_breakdown(details)
    for policy in details:
        parts = [v["energy_mj"] for v in energy["data"]["values"] if v["policy"] == policy]
        assert sum(parts) == pytest.approx(doc["policies"][policy]["energy_mj"])
        assert min(parts) >= 0


def test_gantt_window_clips_and_truncates(replayed):
    _, details = replayed
    d = details["hasp"]
    bars, truncated = gantt_window(d, 10_000, 40_000)
    assert bars and not truncated
    assert all(10.0 <= b["start_ms"] < b["end_ms"] <= 40.0 for b in bars)
    assert all(0 <= b["tile"] < 16 for b in bars)
    # no two run bars overlap on one tile: tiles are owned exclusively
    by_tile: dict[int, float] = {}
    for b in sorted(bars, key=lambda b: b["start_ms"]):
        assert b["start_ms"] >= by_tile.get(b["tile"], -1.0) - 1e-9
        by_tile[b["tile"]] = b["end_ms"]
    few, cut = gantt_window(d, 0, 10**9, max_bars=5)
    assert len(few) == 5 and cut
    jobs, intervals, cut = chip_window(d, 10_000, 40_000)
    assert not cut and {iv[0] for iv in intervals} == {j["row"] for j in jobs}
    assert all(10.0 <= iv[2] < iv[3] <= 40.0 for iv in intervals)
    spec = job_gantt(jobs, intervals, 10.0, 40.0)
    assert [layer["mark"]["type"] for layer in spec["layer"]][:2] == ["rect", "rect"]
    assert titled(spec)
    few_jobs, _, truncated = chip_window(d, 0, 10**9, max_jobs=2)
    assert len(few_jobs) == 2 and truncated


def test_sweep_lines_mark_the_capacity():
    hw = load_hardware("edge-4x4")
    sc = parse_scenario(SCENARIO)
    models = load_models(s.model for s in sc.streams)
    doc = sweep(sc, hw, ["hasp", "fcfs"], [1.0, 3.0], 1, workers=1, models=models)
    for metric in ("lbt_per_s", "satisfaction", "critical_satisfaction"):
        spec = sweep_lines(doc, metric)
        marks = [(layer["mark"]["type"], layer) for layer in spec["layer"]]
        line = next(layer for m, layer in marks if m == "line")
        rules = next(layer for m, layer in marks if m == "rule")  # the capacity rules first
        assert line["mark"]["type"] == "line" and rules["mark"]["type"] == "rule" and titled(spec)
        assert len(line["data"]["values"]) == 4
        caps = {v["policy"]: v["capacity"] for v in rules["data"]["values"]}
        for p, body in doc["policies"].items():
            assert caps.get(p, 0.0) == body["lbt_capacity"]
    with pytest.raises(ValueError, match="unknown sweep metric"):
        sweep_lines(doc, "nope")


def test_a_segment_without_edges_draws_no_edge_layer():
    """One tile task: no rules, so no edge legends (Vega warned of an infinite extent)."""
    doc = plan_to_doc(plan_model(load_zoo_model("mobilenetv2"), load_hardware("edge-4x4")))
    seg = doc["segments"][0]
    one = next(iter(seg["placement"]))
    vertex = next(v for v in seg["tile_graph"]["vertices"] if v["id"] == one)
    single = {**seg, "placement": {one: seg["placement"][one]}}
    single["tile_graph"] = {**seg["tile_graph"], "vertices": [vertex], "edges": []}
    spec = plan_mesh({**doc, "segments": [single]}, 0)
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["square", "circle", "text"]


def test_plan_mesh_puts_vertices_on_their_tiles():
    doc = plan_to_doc(plan_model(load_zoo_model("mobilenetv2"), load_hardware("edge-4x4")))
    spec = plan_mesh(doc, 0)
    grid, edges, verts, names = (layer["data"]["values"] for layer in spec["layer"])
    seg = doc["segments"][0]
    assert len(grid) == 16 and len(verts) == len(seg["placement"])
    assert len(edges) == len(seg["tile_graph"]["edges"])
    for v in verts:
        x, y = seg["placement"][v["vertex"]]
        assert abs(v["x"] - x) <= 0.25 + 1e-9 and abs(v["y"] - y) <= 0.25 + 1e-9
    assert "II" in spec["title"] and titled(spec)
    # tile tasks are named by their layer group, each group once on the mesh
    for v in verts:
        layers = next(x["layers"] for x in seg["tile_graph"]["vertices"] if x["id"] == v["vertex"])
        assert v["layer"] == layer_group(layers)
        assert all(name.startswith(v["layer"]) or "…" in v["layer"] for name in layers)
    shown = [v["label"] for v in names if v["label"]]
    assert len(shown) == len(set(shown)) == len({v["layer"] for v in verts})
    # edges carry their hops as placed, within the segment's hop bound
    for e in edges:
        (ax, ay), (bx, by) = seg["placement"][e["src"]], seg["placement"][e["dst"]]
        assert e["hops"] == abs(ax - bx) + abs(ay - by) <= seg["hops"]
    assert layer_group(["features.9.expand", "features.9.expand.bn"]) == "features.9.expand"
    assert layer_group(["conv1", "pool1"]) == "conv1…pool1"
    assert layer_group(["input_ids"]) == "input_ids"


def test_capacity_labels_that_would_overlap_share_one():
    def body(cap):
        curve = [{"scale": x, "satisfaction": 1.0, "lbt_per_s": 1.0} for x in (1.0, 5.0, 10.0)]
        return {"curve": curve, "lbt_capacity": cap, "lbt_capacity_censored": False}

    doc = {
        "schema": "isosched.sweep/v2",
        "policies": {"isosched": body(4.5), "hasp": body(4.6), "prema": body(4.5), "fcfs": body(8)},
    }
    spec = sweep_lines(doc, "lbt_per_s")
    labels = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    # 4.5 and 4.6 are 1 % of the axis apart (0.95 to 10.5): one label at 4.5 names all three
    assert labels["data"]["values"] == [
        {"capacity": 4.5, "label": "isosched, prema: 4.5×; hasp: 4.6×"},
        {"capacity": 8.0, "label": "fcfs: 8×"},
    ]


def test_sweep_reads_v2_intervals_and_censoring_and_v1_alike():
    """v2 points carry ``*_ci95`` bands and ``lbt_capacity_censored``; v1 sweeps say neither."""
    v1 = {
        "schema": "isosched.sweep/v1",
        "policies": {
            "fcfs": {
                "curve": [
                    {
                        "scale": 1.0,
                        "satisfaction": 1.0,
                        "critical_satisfaction": 1.0,
                        "lbt_per_s": 9,
                    },
                    {
                        "scale": 2.0,
                        "satisfaction": 0.5,
                        "critical_satisfaction": 0.4,
                        "lbt_per_s": 7,
                    },
                ],
                "lbt_capacity": 1.0,
            },
            "isosched": {
                "curve": [
                    {
                        "scale": 1.0,
                        "satisfaction": 1.0,
                        "critical_satisfaction": 1.0,
                        "lbt_per_s": 9,
                    },
                    {
                        "scale": 2.0,
                        "satisfaction": 1.0,
                        "critical_satisfaction": 1.0,
                        "lbt_per_s": 18,
                    },
                ],
                "lbt_capacity": 2.0,
            },
        },
    }
    caps = {c["policy"]: c for c in sweep_capacities(v1)}
    assert [c["policy"] for c in sweep_capacities(v1)] == ["isosched", "fcfs"]  # one order
    assert caps["isosched"]["censored"] and not caps["fcfs"]["censored"]
    assert caps["isosched"]["best_lbt_per_s"] == 18
    spec = sweep_lines(v1, "lbt_per_s")
    band = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "errorband")
    assert all(v["low"] == v["value"] == v["high"] for v in band["data"]["values"])
    labels = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert {v["label"] for v in labels["data"]["values"]} == {"fcfs: 1×", "isosched: ≥ 2×"}
    v2 = {
        "schema": "isosched.sweep/v2",
        "policies": {
            "isosched": {
                "curve": [
                    {
                        "scale": 1.0,
                        "satisfaction": 1.0,
                        "satisfaction_ci95": [1.0, 1.0],
                        "lbt_per_s": 9.0,
                        "lbt_per_s_ci95": [8.5, 9.5],
                    }
                ],
                "lbt_capacity": 1.0,
                "lbt_capacity_censored": False,
            }
        },
    }
    assert sweep_capacities(v2)[0]["censored"] is False
    (point,) = sweep_points(v2, "lbt_per_s")
    assert (point["low"], point["value"], point["high"]) == (8.5, 9.0, 9.5)


def test_best_lbt_counts_the_bisection_points():
    doc = {
        "schema": "isosched.sweep/v2",
        "policies": {
            "hasp": {
                "curve": [{"scale": 4.0, "lbt_per_s": 594.0}, {"scale": 8.0, "lbt_per_s": 100.0}],
                "bisection": [{"scale": 4.5, "lbt_per_s": 609.0}],
                "lbt_capacity": 4.5,
                "lbt_capacity_censored": False,
            }
        },
    }
    (cap,) = sweep_capacities(doc)
    assert cap["best_lbt_per_s"] == 609.0


def test_streams_of_a_run_never_share_a_colour():
    from isosched.report.palette import _STREAM_COLOURS, stream_colour, stream_colours

    names = [f"s{i}" for i in range(40)]
    # two names whose hashed colours collide: the set separates them, the later takes another
    a, b = next(
        (x, y)
        for i, x in enumerate(names)
        for y in names[i + 1 :]
        if stream_colour(x) == stream_colour(y)
    )
    got = stream_colours([b, a])
    assert got[a] == stream_colour(a) and got[b] != got[a]
    many = stream_colours(names[: len(_STREAM_COLOURS)])
    assert len(set(many.values())) == len(_STREAM_COLOURS)  # up to 18: all distinct
    assert stream_colours(reversed(names[:5])) == stream_colours(names[:5])  # set, not order
    # ad_urban's 13 streams: two pairs share a hashed colour; within the run none does
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "traces" / "scenarios" / "ad_urban.json"
    urban = [st["id"] for st in json.loads(path.read_text())["streams"]]
    assert len({stream_colour(x) for x in urban}) < len(urban)
    assert len(set(stream_colours(urban).values())) == len(urban)
