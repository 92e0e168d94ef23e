"""Issue 14: no client-named file is read, every request is bounded, no input gets a 5xx."""

import contextlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import onnx.helper as oh
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto

from isosched.errors import IsoschedError
from isosched.io.bounded_json import MAX_JSON_DEPTH, decode_json
from isosched.io.onnx import parse_onnx
from isosched.io.trace_jsonl import parse_trace_text, read_scenario
from isosched.trace import generate_trace
from isosched.trace.generate import expected_jobs
from isosched.trace.scenario import ScenarioError
from service.app import create_app
from service.settings import Settings
from tests.test_service import SMALL_SCENARIO, TINY

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "traces" / "scenarios"


@pytest.fixture
def app(tmp_path):
    app = create_app(
        Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, max_body_bytes=4 << 20)
    )
    yield app
    app.state.runner.shutdown()


@pytest.fixture
def client(app):
    return TestClient(app)


# --- 1. no path from a client, ever ---------------------------------------------------------


def _paths(tmp_path: Path) -> list[str]:
    """Every path form of the issue, plus graph files that do exist on the server."""
    graph = tmp_path / "server_graph.json"
    graph.write_text(json.dumps({"schema": "isosched.graph/v1", **TINY}))
    return [
        "/etc/passwd",
        "../../../../etc/hostname",
        "/proc/self/environ",
        str(graph),
        "models/resnet50.json",  # relative to the working directory: it exists in a checkout
        str(ROOT / "models" / "onnx" / "resnet50.onnx"),
    ]


def _scenario(model: str) -> dict[str, Any]:
    return {
        "name": "p",
        "horizon_ms": 100,
        "streams": [{"id": "a", "model": model, "period_ms": 50, "deadline_ms": 50, "priority": 1}],
    }


def _trace_text(model: str) -> str:
    head = {"schema": "isosched.trace/v1", "seed": 0, "time_unit": "us"}
    job = {
        "job": "a#0",
        "stream": "a",
        "model": model,
        "release_us": 0,
        "deadline_us": 10,
        "priority": 1,
        "critical": False,
    }
    return json.dumps(head) + "\n" + json.dumps(job) + "\n"


def test_no_route_reads_a_model_path_a_client_names(client, tmp_path, monkeypatch):
    """Plans, sweeps, generated and uploaded traces: a path is an unknown model, always 422."""
    import isosched.io.graph_json
    import isosched.io.model_source

    def no_file(*_a, **_k):
        raise AssertionError("a file was read for a client")

    monkeypatch.setattr(isosched.io.model_source, "load_model", no_file)
    monkeypatch.setattr(isosched.io.graph_json, "read_json", no_file)
    details = set()
    for path in _paths(tmp_path):
        answers = [
            client.post("/v1/plans", json={"model": path}),
            client.post("/v1/sweeps", json={"scenario": _scenario(path), "policies": "fcfs"}),
            client.post("/v1/traces", json={"scenario": _scenario(path)}),
            client.post(
                "/v1/traces",
                content=_trace_text(path),
                headers={"content-type": "application/x-ndjson"},
            ),
        ]
        for r in answers:
            assert r.status_code == 422, (path, r.status_code, r.text)
            # the same answer whether the file exists or not: no oracle for the server's files
            details.add(r.json()["detail"].replace(path[:100], "PATH").replace(repr(path), "P"))
    assert client.get("/v1/traces").json() == []  # nothing naming a path was stored
    assert client.get("/v1/jobs").json() == []
    assert all("passwd" not in d and "root:" not in d for d in details)


def test_uploaded_graph_ids_are_models_of_traces_and_sweeps(client):
    """The other kind of name a request may use: a stored graph's id (checked at submit)."""
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    r = client.post("/v1/traces", json={"scenario": _scenario(gid)})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    ok = client.post("/v1/replays", json={"trace_id": tid, "hw": "edge-4x4", "policies": "fcfs"})
    assert ok.status_code == 202
    job = client.get(f"/v1/jobs/{ok.json()['id']}").json()
    assert "trace" not in job["params"] and job["params"]["trace_id"] == tid  # not a copy
    assert client.delete(f"/v1/graphs/{gid}").status_code == 204
    gone = client.post("/v1/replays", json={"trace_id": tid, "hw": "edge-4x4"})
    assert gone.status_code == 422 and "unknown model" in gone.json()["detail"]


def test_named_models_reads_no_file(tmp_path):
    from isosched.errors import UnknownModelError
    from isosched.io.model_source import named_models

    path = tmp_path / "g.json"
    path.write_text(json.dumps(TINY))
    with pytest.raises(UnknownModelError, match="unknown model"):
        named_models([str(path)])
    assert set(named_models(["resnet50"])) == {"resnet50"}


# --- 2. parsers that cannot crash -----------------------------------------------------------

DEEP = "[" * 100_000
DEEP_META = json.dumps({**TINY, "meta": {}})[:-1].replace(
    '"meta": {}', '"meta": ' + '{"a": ' * 990 + "1" + "}" * 990
)
HUGE_INT = '{"name": "g", "layers": [], "meta": {"n": ' + "7" * 5000 + "}}"
NAN = json.dumps({**TINY, "meta": {"x": 1}}).replace('"x": 1', '"x": NaN')


@pytest.mark.parametrize(
    "text", [DEEP, DEEP_META + "}", HUGE_INT, NAN], ids=["deep", "meta", "int", "nan"]
)
def test_decode_json_refuses_with_the_limit(text):
    with pytest.raises(IsoschedError) as info:
        decode_json(text, "doc")
    message = str(info.value)
    assert any(k in message for k in (str(MAX_JSON_DEPTH), "digits", "NaN")), message


def test_decode_json_accepts_brackets_and_digits_inside_strings():
    text = json.dumps({"a": "[" * 1000 + "\\" + '"', "b": "9" * 1000, "c": [1.5, -2e3]})
    assert decode_json(text)["b"] == "9" * 1000


BAD_BODIES = {"deep": DEEP, "meta": DEEP_META + "}", "int": HUGE_INT, "nan": NAN}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
@pytest.mark.parametrize(
    ("route", "ctype"),
    [
        ("/v1/graphs", "application/json"),
        ("/v1/hardware", "application/json"),
        ("/v1/traces", "application/json"),
        ("/v1/traces", "application/x-ndjson"),
        ("/v1/plans", "application/json"),
        ("/v1/sweeps", "application/json"),
        ("/v1/replays", "application/json"),
    ],
)
def test_hostile_json_bodies_are_422_never_500(client, route, ctype, case):
    r = client.post(route, content=BAD_BODIES[case], headers={"content-type": ctype})
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert isinstance(r.json()["detail"], str)


def test_hostile_trace_lines_are_refused_naming_the_line():
    head = '{"schema": "isosched.trace/v1"}\n'
    job = (
        '{"job": "a", "stream": "a", "model": "m", "release_us": R, "deadline_us": 9, '
        '"priority": 1, "critical": false}'
    )
    for bad in (
        head + job.replace("R", "7" * 5000),
        head + job.replace("R", "1" * 30),
        head + job.replace("R", "NaN"),
        head + "[" * 100_000,
        '{"schema": "isosched.trace/v1", "x": ' + "[" * 990 + "]" * 990 + "}\n",
    ):
        with pytest.raises(IsoschedError, match="line"):
            parse_trace_text(bad)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isosched", *args], capture_output=True, text=True, timeout=120
    )


def _one_line_exit_2(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("isosched: error: "), out.stderr[-1500:]
    return lines[0]


def test_cli_refuses_hostile_files_with_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP_META + "}")
    huge = tmp_path / "huge.json"
    huge.write_text(HUGE_INT)
    trace = tmp_path / "deep.jsonl"
    trace.write_text('{"schema": "isosched.trace/v1"}\n' + DEEP)
    assert "nested" in _one_line_exit_2(_cli("models", "show", str(deep)))
    assert "digits" in _one_line_exit_2(_cli("models", "show", str(huge)))
    assert "line 2" in _one_line_exit_2(_cli("trace", "show", str(trace)))
    assert "digits" in _one_line_exit_2(_cli("hw", "show", str(huge)))


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "resnet50", "--hops", "abc"],
        ["schema", "nope"],
        ["plan"],
        ["trace", "gen", str(SCENARIOS / "ad_urban.json"), "-o", "x.jsonl", "--scale", "nan"],
    ],
)
def test_cli_usage_errors_are_one_line(args):
    _one_line_exit_2(_cli(*args))


def test_graphs_never_hold_nan(client):
    doc = json.loads(json.dumps(TINY))
    r = client.post(
        "/v1/graphs",
        content=json.dumps(doc).replace('"out_features": 2', '"out_features": NaN'),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    text = client.get(f"/v1/graphs/{gid}").text
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} served"))


# --- 3. unbounded work from a tiny request --------------------------------------------------


def test_trace_sizes_are_counted_after_scale_before_generating(client):
    r = client.post("/v1/traces", json={"scenario": "ad_stress", "scale": 1000})
    assert r.status_code == 422 and "ISOSCHED_MAX_TRACE_JOBS" in r.json()["detail"]
    inline = {**SMALL_SCENARIO, "horizon_ms": 10_000_000}  # 900k jobs: valid at scale 1
    r = client.post("/v1/traces", json={"scenario": inline, "scale": 1000})
    assert r.status_code == 422 and "ISOSCHED_MAX_TRACE_JOBS" in r.json()["detail"]
    r = client.post("/v1/sweeps", json={"scenario": inline, "scales": [1], "policies": "fcfs"})
    assert r.status_code == 422 and "ISOSCHED_MAX_TRACE_JOBS" in r.json()["detail"]
    many = {"scenario": "ad_stress", "scales": [50] * 30, "policies": "all", "seeds": 1}
    r = client.post("/v1/sweeps", json=many)
    assert r.status_code == 422 and "ISOSCHED_MAX_SWEEP_JOBS" in r.json()["detail"]
    assert client.get("/v1/jobs").json() == [] and client.get("/v1/traces").json() == []


def test_uploaded_traces_are_bounded_too(tmp_path):
    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, max_trace_jobs=100)
    client = TestClient(create_app(settings))
    text = (ROOT / "traces" / "ad_highway.s7.jsonl").read_text()
    r = client.post("/v1/traces", content=text, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and "100" in r.json()["detail"]


@pytest.mark.parametrize("scale", [float("inf"), float("nan"), 0.0, -1.0, 1e9])
def test_generate_trace_refuses_infinite_and_huge_scales(scale):
    sc = read_scenario(SCENARIOS / "ad_urban.json")
    with pytest.raises(ScenarioError):
        generate_trace(sc, seed=0, scale=scale)


@pytest.mark.parametrize("name", ["ad_urban", "ad_stress", "ad_highway"])
@pytest.mark.parametrize("scale", [0.01, 0.5, 1.0, 3.7])
def test_expected_jobs_bounds_the_trace(name, scale):
    sc = read_scenario(SCENARIOS / f"{name}.json")
    assert len(generate_trace(sc, seed=3, scale=scale).jobs) <= expected_jobs(sc, scale)


@pytest.mark.parametrize(
    "args",
    [
        ["trace", "gen", str(SCENARIOS / "ad_stress.json"), "-o", "x.jsonl", "--scale", "inf"],
        ["trace", "gen", str(SCENARIOS / "ad_stress.json"), "-o", "x.jsonl", "--scale", "1e9"],
        ["sweep", str(SCENARIOS / "ad_urban.json"), "--scales", "inf"],
        ["sweep", str(SCENARIOS / "ad_urban.json"), "--scales", "nan"],
        ["sweep", str(SCENARIOS / "ad_urban.json"), "--scales", "1,1e9"],
    ],
)
def test_cli_refuses_unbounded_scales(args, tmp_path):
    _one_line_exit_2(
        subprocess.run(
            [sys.executable, "-m", "isosched", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    )
    assert not (tmp_path / "x.jsonl").exists()


# --- 4. an ONNX file of 200 bytes cannot allocate gigabytes ---------------------------------


def _bomb(kind: str) -> bytes:
    """A tiny model whose constant folding would make a huge tensor."""
    inits, nodes = [], []
    if kind == "constant_of_shape":
        inits.append(oh.make_tensor("shape", TensorProto.INT64, [2], [20000, 20000]))
        nodes.append(oh.make_node("ConstantOfShape", ["shape"], ["big"]))
    elif kind == "range":
        inits += [
            oh.make_tensor(n, TensorProto.FLOAT, [], [v])
            for n, v in (("s", 0.0), ("l", 1e8), ("d", 1.0))
        ]
        nodes.append(oh.make_node("Range", ["s", "l", "d"], ["big"]))
    else:  # broadcasting two small constants into a huge one
        inits += [
            oh.make_tensor("a", TensorProto.INT64, [2], [8, 8]),
            oh.make_tensor("r", TensorProto.INT64, [2], [30000, 30000]),
        ]
        nodes.append(oh.make_node("Tile", ["a", "r"], ["big"]))
    nodes.append(oh.make_node("Add", ["x", "big"], ["y"]))
    graph = oh.make_graph(
        nodes,
        "bomb",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


@pytest.mark.parametrize("kind", ["constant_of_shape", "range", "tile"])
def test_onnx_folding_counts_elements_before_evaluating(kind):
    data = _bomb(kind)
    assert len(data) < 200
    tracemalloc.start()
    try:
        with contextlib.suppress(IsoschedError):  # refusing it is fine; gigabytes are not
            parse_onnx(data, "bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB traced while importing a {len(data)}-byte file"


def test_onnx_upload_errors_name_no_server_path(client):
    r = client.post(
        "/v1/graphs", content=b"\x08\x07garbage", headers={"content-type": "application/onnx"}
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "uploaded ONNX model" in detail and "/tmp" not in detail and "upload.onnx" not in detail
    bomb = client.post(
        "/v1/graphs", content=_bomb("range"), headers={"content-type": "application/onnx"}
    )
    assert bomb.status_code in (201, 422)


# --- 11. OpenAPI that tells the truth -------------------------------------------------------


def test_error_answers_are_as_documented(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["ErrorBody"]["properties"]["detail"]["type"] == "string"
    plans = spec["paths"]["/v1/plans"]["post"]["responses"]
    assert {"404", "413", "422", "429"} <= set(plans)
    assert "Retry-After" in plans["429"]["headers"]
    r = client.get("/v1/jobs", params={"state": "bogus"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    r = client.options("/v1/hardware")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "POST"}
    r = client.request("PATCH", "/v1/graphs/x")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "DELETE"}
    r = client.delete("/v1/hardware/edge-4x4")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    r = client.post("/v1/plans", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]
    # a form upload (curl -F) is told how to send the file instead
    r = client.post("/v1/graphs", files={"file": ("m.onnx", b"\x08\x07binary")})
    assert r.status_code == 422 and "not a form" in r.json()["detail"]


# --- 6. large uploads are parsed off the API process ------------------------------------------


def test_a_large_graph_upload_is_parsed_in_a_child_process_and_its_errors_come_back(client):
    """Bodies of 1 MiB and more are decoded by the parser process (the GIL and the parse's
    transient memory stay out of the API process); its answer, and its errors, are the same."""
    from service.routers import graphs

    layers: list[dict[str, Any]] = [{"id": "x", "op": "input", "shape": [64]}]
    layers += [
        {"id": f"a{i}", "op": "activation", "inputs": [f"a{i - 1}" if i else "x"]}
        for i in range(20_000)
    ]
    body = json.dumps({"name": "large", "layers": layers}).encode()
    assert len(body) >= graphs._PROCESS_BYTES
    r = client.post("/v1/graphs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["layers"] == 20_001 and r.json()["name"] == "large"
    assert graphs._PARSER is not None  # the child process did the parsing
    assert client.get(f"/v1/graphs/{r.json()['id']}").json()["layers"][-1]["id"] == "a19999"
    layers[-1]["inputs"] = ["nowhere"]
    bad = json.dumps({"name": "large", "layers": layers}).encode()
    r = client.post("/v1/graphs", content=bad, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "nowhere" in r.json()["detail"]
    graphs.shutdown_parser()
    assert graphs._PARSER is None


def test_a_graph_over_the_planners_unit_cap_is_refused_before_a_job(client):
    """The planner plans at most MAX_PLAN_UNITS units; a plan, replay or sweep of a bigger
    stored graph is 422 at once, not a job that fails later. Many layers are not many units."""
    from isosched.plan.planner import MAX_PLAN_UNITS
    from service.routers import graphs

    def chain(op: dict[str, Any]) -> str:
        layers: list[dict[str, Any]] = [{"id": "x", "op": "input", "shape": [4]}]
        layers += [
            {"id": f"a{i}", **op, "inputs": [f"a{i - 1}" if i else "x"]}
            for i in range(MAX_PLAN_UNITS + 1)
        ]
        r = client.post("/v1/graphs", json={"name": "chain", "layers": layers})
        assert r.status_code == 201, r.text
        gid: str = r.json()["id"]
        return gid

    jobs_before = len(client.get("/v1/jobs").json())
    big = chain({"op": "linear", "out_features": 4})
    r = client.post("/v1/plans", json={"graph_id": big, "hw": "edge-4x4"})
    assert r.status_code == 422, r.text
    assert f"{MAX_PLAN_UNITS + 1:,} planning units" in r.json()["detail"]
    scenario = {
        "schema": "isosched.scenario/v1",
        "name": "big",
        "horizon_ms": 10,
        "streams": [{"id": "s", "model": big, "period_ms": 5, "deadline_ms": 5, "priority": 1}],
    }
    r = client.post("/v1/sweeps", json={"scenario": scenario, "hw": "edge-4x4", "seeds": 1})
    assert r.status_code == 422 and "planning units" in r.json()["detail"]
    assert len(client.get("/v1/jobs").json()) == jobs_before  # no job was queued
    light = chain({"op": "activation"})  # one planning unit
    r = client.post("/v1/plans", json={"graph_id": light, "hw": "edge-4x4"})
    assert r.status_code == 202, r.text
    client.delete(f"/v1/jobs/{r.json()['id']}")
    graphs.shutdown_parser()


# --- 7. a storage quota ---------------------------------------------------------------------


def test_the_storage_quota_is_a_413_naming_the_limit_and_deleting_frees_room(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    empty = create_app(Settings(url, tmp_path)).state.store.stored_bytes()
    assert empty is not None
    app = create_app(Settings(url, tmp_path, max_stored_bytes=empty + (3 << 20)))
    client = TestClient(app)
    layers: list[dict[str, Any]] = [{"id": "x", "op": "input", "shape": [64]}]
    layers += [
        {"id": f"a{i}", "op": "activation", "inputs": [f"a{i - 1}" if i else "x"]}
        for i in range(12_000)
    ]
    big = {"name": "big", "layers": layers}
    stored = []
    for _ in range(10):
        r = client.post("/v1/graphs", json=big)
        if r.status_code != 201:
            break
        stored.append(r.json()["id"])
    assert r.status_code == 413 and "ISOSCHED_MAX_STORED_BYTES" in r.json()["detail"]
    assert 1 <= len(stored) < 10
    used = app.state.store.stored_bytes()
    full = TestClient(create_app(Settings(url, tmp_path, max_stored_bytes=used)))
    assert full.post("/v1/plans", json={"model": "resnet50"}).status_code == 413
    assert full.post("/v1/traces", json={"scenario": "ad_urban"}).status_code == 413
    for gid in stored:
        assert client.delete(f"/v1/graphs/{gid}").status_code == 204
    assert client.post("/v1/graphs", json=big).status_code == 201  # deleting made room


@pytest.mark.skipif(
    not os.environ.get("ISOSCHED_TEST_POSTGRES_URL"),
    reason="PostgreSQL tests need ISOSCHED_TEST_POSTGRES_URL (set by .ci/run)",
)
def test_the_quota_reads_postgresql_sizes_too():
    from service.store import Store

    store = Store(os.environ["ISOSCHED_TEST_POSTGRES_URL"], recover=False)
    used = store.stored_bytes()
    assert used is not None and used > 0
