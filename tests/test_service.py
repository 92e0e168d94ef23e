"""REST service in-process: every route of the graphs, hardware and models resources."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.servers import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "name": "tiny",
    "layers": [
        {"id": "x", "op": "input", "shape": [4]},
        {"id": "fc", "op": "linear", "inputs": ["x"], "out_features": 2},
    ],
}


@pytest.fixture
def client(tmp_path):
    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, max_body_bytes=1 << 20)
    return TestClient(create_app(settings))


def test_health_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/graphs", "/v1/graphs/{graph_id}", "/v1/hardware", "/v1/models"} <= set(paths)


def test_graph_upload_read_list_delete(client):
    r = client.post("/v1/graphs", json=TINY)
    assert r.status_code == 201
    body = r.json()
    assert body["macs"] == 8 and body["layers"] == 2
    gid = body["id"]
    doc = client.get(f"/v1/graphs/{gid}").json()
    assert doc["schema"] == "isosched.graph/v1" and doc["name"] == TINY["name"]
    again = client.post("/v1/graphs", json=doc)  # a downloaded graph uploads again
    assert again.status_code == 201, again.text
    assert client.get(f"/v1/graphs/{again.json()['id']}").json() == doc
    assert client.delete(f"/v1/graphs/{again.json()['id']}").status_code == 204
    assert [g["id"] for g in client.get("/v1/graphs").json()] == [gid]
    assert client.delete(f"/v1/graphs/{gid}").status_code == 204
    assert client.get(f"/v1/graphs/{gid}").status_code == 404
    assert client.delete(f"/v1/graphs/{gid}").status_code == 404


def test_onnx_upload(client):
    data = (ROOT / "models" / "onnx" / "resnet50.onnx").read_bytes()
    r = client.post("/v1/graphs", content=data, headers={"content-type": "application/onnx"})
    assert r.status_code == 201
    assert abs(r.json()["macs"] - 4.09e9) / 4.09e9 < 0.03


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "name": "g",
                "layers": [
                    {"id": "a", "op": "activation", "inputs": ["b"]},
                    {"id": "b", "op": "activation", "inputs": ["a"]},
                ],
            },
            "cycle",
        ),
        (
            {"name": "g", "layers": [{"id": "a", "op": "activation", "inputs": ["zz"]}]},
            "unknown layer 'zz'",
        ),
        ({"name": "g", "layers": [{"id": "a", "op": "input", "shape": [-2]}]}, "layer 'a'"),
        (
            {"name": "g", "layers": [{"id": "a", "op": "input", "shape": [10**6, 10**6, 10**3]}]},
            "exceeds the limit",
        ),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_bad_graphs_are_422_naming_the_problem(client, body, message):
    r = client.post("/v1/graphs", json=body)
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_malformed_json_and_onnx_are_422(client):
    r = client.post("/v1/graphs", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post("/v1/graphs", content=b"garbage", headers={"content-type": "application/onnx"})
    assert r.status_code == 422


def test_malformed_json_body_of_a_model_route_says_where(client):
    r = client.post(
        "/v1/plans", content=b'{"model":"resnet50",', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("request body is not valid JSON: ") and "(char 20)" in detail


def test_unknown_zoo_model_lists_the_zoo(client):
    r = client.post("/v1/plans", json={"model": "resnet5", "hw": "edge-4x4"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("unknown model 'resnet5'") and "resnet50" in detail


def test_a_bad_field_names_the_field_and_counts_the_rest(client):
    r = client.post("/v1/plans", json={"model": 5, "hw": 6, "graph_id": 7})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("body.") and "more errors)" in detail


def test_body_limit_is_413(client):
    r = client.post(
        "/v1/graphs", content=b" " * (2 << 20), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "exceeds" in r.json()["detail"]


def test_hardware_and_models(client):
    names = [h["name"] for h in client.get("/v1/hardware").json()]
    assert "edge-8x8" in names
    assert client.get("/v1/hardware/edge-8x8").json()["mesh"] == [8, 8]
    assert client.get("/v1/hardware/edge-9x9").status_code == 404
    zoo = client.get("/v1/models").json()
    assert len(zoo) == 16  # the zoo (tests/test_zoo.py lists it)
    assert client.get("/v1/models/resnet50").json()["name"] == "resnet50"
    assert client.get("/v1/models/nonet").status_code == 404
    assert client.get("/v1/graphs", params={"limit": 0}).status_code == 422


def test_graphs_survive_a_restart_of_a_real_server(tmp_path):
    """A uvicorn process on 127.0.0.1 stores a graph; a new process on the same file serves it."""
    port = free_port()
    proc, base = serve(tmp_path, port=port)
    try:
        req = urllib.request.Request(
            f"{base}/v1/graphs",
            data=json.dumps(TINY).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        gid = json.loads(urllib.request.urlopen(req, timeout=10).read())["id"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, base = serve(tmp_path, port=port)  # the same address, a new process
    try:
        doc = json.loads(urllib.request.urlopen(f"{base}/v1/graphs/{gid}", timeout=10).read())
        assert doc["name"] == "tiny"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_for(client, jid, timeout_s=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        job = client.get(f"/v1/jobs/{jid}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {jid} still {job['state']} after {timeout_s} s")


def test_plan_job_runs_off_the_request_path(client):
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    r = client.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"})
    assert r.status_code == 202
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    job = wait_for(client, r.json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["result"]["schema"] == "isosched.plan/v1"
    zoo = client.post("/v1/plans", json={"model": "mobilenetv2", "hw": "edge-4x4"})
    assert wait_for(client, zoo.json()["id"])["result"]["model"] == "mobilenetv2"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "nonet"}, 422),
        ({"model": "resnet50", "hw": "edge-9x9"}, 422),
        ({"graph_id": "nope"}, 404),
        ({}, 422),
        ({"model": "resnet50", "graph_id": "x"}, 422),
        ({"model": "resnet50", "extra": 1}, 422),
    ],
)
def test_plan_requests_are_validated(client, body, status):
    assert client.post("/v1/plans", json=body).status_code == status


def test_jobs_404_and_cancel(client):
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.delete("/v1/jobs/nope").status_code == 404
    jid = client.post("/v1/plans", json={"model": "gpt2_xl"}).json()["id"]
    r = client.delete(f"/v1/jobs/{jid}")
    assert r.status_code == 202
    assert wait_for(client, jid)["state"] in ("cancelled", "done")


def test_deleting_a_finished_job_removes_it_and_its_result(client):
    """DELETE cancels a pending job (202) and deletes a finished one with its result (204)."""
    jid = client.post("/v1/plans", json={"model": "mobilenetv2", "hw": "edge-4x4"}).json()["id"]
    assert wait_for(client, jid)["state"] == "done"
    assert client.delete(f"/v1/jobs/{jid}").status_code == 204
    assert client.get(f"/v1/jobs/{jid}").status_code == 404
    assert client.delete(f"/v1/jobs/{jid}").status_code == 404
    assert jid not in {j["id"] for j in client.get("/v1/jobs").json()}


def test_interrupted_jobs_are_failed_on_restart(tmp_path):
    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    app = create_app(settings)
    jid = app.state.store.add_job("plan", {"hw": "edge-8x8"})
    app.state.store.set_job(jid, "running")
    app.state.runner.shutdown()
    # the process dies without a clean stop: its instance row names a process that is gone
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    from sqlalchemy import update

    from service.store import instances

    with app.state.store.engine.begin() as conn:
        conn.execute(update(instances).values(pid=int(gone.stdout)))
    again = create_app(settings)  # a new process on the same database
    job = again.state.store.get_job(jid)
    assert job["state"] == "failed" and "interrupted" in job["error"]
    again.state.runner.shutdown()


SMALL_SCENARIO = {
    "name": "svc",
    "horizon_ms": 100,
    "streams": [
        {
            "id": "cam",
            "model": "mobilenetv2",
            "period_ms": 20,
            "deadline_ms": 15,
            "priority": 9,
            "critical": True,
        },
        {"id": "bg", "model": "resnet50", "period_ms": 25, "deadline_ms": 80, "priority": 1},
    ],
}


def test_scenarios_and_traces(client):
    names = [s["name"] for s in client.get("/v1/scenarios").json()]
    assert {"ad_urban", "ad_highway", "ad_stress"} <= set(names)
    assert client.get("/v1/scenarios/ad_urban").json()["name"] == "ad_urban"
    assert client.get("/v1/scenarios/nope").status_code == 404
    r = client.post("/v1/traces", json={"scenario": "ad_urban", "seed": 7})
    assert r.status_code == 201 and r.json()["jobs"] == 1490  # as the shipped seed-7 trace
    tid = r.json()["id"]
    got = client.get(f"/v1/traces/{tid}").json()
    assert len(got["jobs"]) == 1490 and got["header"]["seed"] == 7
    assert tid in [t["id"] for t in client.get("/v1/traces").json()]
    text = (ROOT / "traces" / "ad_highway.s7.jsonl").read_text()
    up = client.post("/v1/traces", content=text, headers={"content-type": "application/x-ndjson"})
    assert up.status_code == 201 and up.json()["name"] == "ad_highway"
    assert client.get("/v1/traces/nope").status_code == 404
    # a replay of an uploaded trace whose header names no scenario names the trace by its id
    header = {"schema": "isosched.trace/v1", "seed": 0, "horizon_us": 50_000}
    job = {"job": "c#0", "stream": "c", "model": "mobilenetv2", "release_us": 0,
           "deadline_us": 40_000, "priority": 1, "critical": False}  # fmt: skip
    bare = json.dumps(header) + "\n" + json.dumps(job) + "\n"
    up = client.post("/v1/traces", content=bare, headers={"content-type": "application/x-ndjson"})
    body = {"trace_id": up.json()["id"], "hw": "edge-4x4", "policies": "fcfs"}
    done = wait_for(client, client.post("/v1/replays", json=body).json()["id"])
    assert done["state"] == "done" and done["result"]["trace"] == f"trace {up.json()['id']}"


@pytest.mark.parametrize(
    ("content", "ctype", "message"),
    [
        ('{"scenario": "nope"}', "application/json", "unknown scenario"),
        (
            '{"scenario": {"name": "x", "horizon_ms": 10, "streams": []}}',
            "application/json",
            "streams",
        ),
        ('{"schema": "isosched.trace/v1"}\n{"job": 1}\n', "application/x-ndjson", "line 2"),
        ("not a header\n", "application/x-ndjson", "line 1"),
    ],
)
def test_bad_traces_are_422(client, content, ctype, message):
    r = client.post("/v1/traces", content=content, headers={"content-type": ctype})
    assert r.status_code == 422 and message in r.json()["detail"]


def test_replay_and_sweep_jobs_with_events(client):
    tid = client.post("/v1/traces", json={"scenario": SMALL_SCENARIO}).json()["id"]
    r = client.post(
        "/v1/replays", json={"trace_id": tid, "hw": "edge-4x4", "policies": "isosched,fcfs"}
    )
    assert r.status_code == 202
    jid = r.json()["id"]
    with client.stream("GET", f"/v1/jobs/{jid}/events") as events:
        text = "".join(events.iter_text())
    assert "event: state" in text and '"state": "done"' in text
    doc = client.get(f"/v1/jobs/{jid}").json()["result"]
    assert doc["schema"] == "isosched.replay/v2"
    assert set(doc["policies"]) == {"isosched", "fcfs"}
    s = client.post(
        "/v1/sweeps",
        json={"scenario": SMALL_SCENARIO, "hw": "edge-4x4", "policies": "hasp", "scales": [1, 2]},
    )
    assert s.status_code == 202
    result = wait_for(client, s.json()["id"])["result"]
    assert result["schema"] == "isosched.sweep/v2" and result["seeds"] == 5  # the default
    hasp = result["policies"]["hasp"]
    assert [c["scale"] for c in hasp["curve"]] == [1, 2]
    assert len(hasp["curve"][0]["satisfaction_ci95"]) == 2
    assert isinstance(hasp["lbt_capacity_censored"], bool)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/replays", {"trace_id": "nope"}, 404),
        ("/v1/replays", {"trace_id": "x", "policies": "nope"}, 422),
        ("/v1/replays", {"trace_id": "x", "hw": "edge-9x9"}, 422),
        ("/v1/sweeps", {"scenario": "nope"}, 422),
        ("/v1/sweeps", {"scenario": "ad_urban", "scales": [0]}, 422),
        ("/v1/sweeps", {"scenario": "ad_urban", "seeds": 99}, 422),
    ],
)
def test_job_requests_are_validated(client, path, body, status):
    assert client.post(path, json=body).status_code == status
    assert client.get("/v1/jobs/nope/events").status_code == 404


def test_policies_pattern_in_the_schema_is_what_the_server_accepts(client):
    """The OpenAPI pattern of ``policies`` admits every name ``parse_policies`` takes (the
    ablations too) and nothing it refuses."""
    import re

    from isosched.errors import IsoschedError
    from isosched.sim.policies import ABLATION_NAMES, POLICY_NAMES, parse_policies

    schema = client.get("/openapi.json").json()["components"]["schemas"]
    pattern = schema["ReplayRequest"]["properties"]["policies"]["pattern"]
    assert pattern == schema["SweepRequest"]["properties"]["policies"]["pattern"]
    names = [*POLICY_NAMES, *ABLATION_NAMES]
    texts = ["all", " all ", ", ".join(names), *names, " isosched", "nope", "isosched-"]
    texts += ["hasp,,fcfs", "all,hasp", "hasp,all", ""]
    for text in texts:
        try:
            parse_policies(text)
            accepted = True
        except IsoschedError:
            accepted = False
        assert bool(re.fullmatch(pattern, text)) == accepted, text
    # what a pattern cannot say: a name twice is refused with a reason, not run twice
    body = {"trace_id": "x", "policies": "fcfs, fcfs"}
    r = client.post("/v1/replays", json=body)
    assert r.status_code == 422 and "'fcfs' is named twice" in r.json()["detail"]


def test_demo_start_up_queues_the_ad_urban_replay_once(tmp_path):
    from service.app import seed_demo

    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    app = create_app(settings, demo=True)
    with TestClient(app) as client:
        traces = client.get("/v1/traces").json()
        assert [t["name"] for t in traces] == ["ad_urban"]
        assert seed_demo(app.state.store, app.state.runner) is None


@pytest.mark.parametrize(
    ("message", "fraction"),
    [
        ("started", None),
        ("segment 3/12: 4 units", 0.25),
        ("point 24/24: hasp x4", 1.0),
        ("policy 2/4 hasp: 50/100 jobs released", 0.375),
        ("policy 1/2 fcfs: 0/10 jobs released", 0.0),
        ("segment 1/0", None),
    ],
)
def test_progress_fraction(message, fraction):
    from service.work import progress_fraction

    assert progress_fraction(message) == fraction


def test_solver_progress_reaches_the_job_and_its_events(client):
    jid = client.post("/v1/plans", json={"model": "resnet50", "hw": "edge-8x8"}).json()["id"]
    with client.stream("GET", f"/v1/jobs/{jid}/events") as events:
        text = "".join(events.iter_text())
    progress = [
        json.loads(block.split("data: ", 1)[1])
        for block in text.split("\n\n")
        if block.startswith("event: progress")
    ]
    assert any(p["message"].startswith("segment ") for p in progress), text
    assert all(p["fraction"] is None or 0 <= p["fraction"] <= 1 for p in progress)
    job = client.get(f"/v1/jobs/{jid}").json()
    assert job["state"] == "done" and job["progress"]["message"].startswith("segment ")
    listed = client.get("/v1/jobs", params={"kind": "plan"}).json()
    assert [j["id"] for j in listed] == [jid] and "result" not in listed[0]
    assert client.get("/v1/jobs", params={"kind": "bogus"}).status_code == 422


def test_cancelling_a_running_job_frees_its_worker(tmp_path):
    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, workers=1)
    with TestClient(create_app(settings)) as client:
        long = {"scenario": "ad_urban", "scales": [1, 2, 3, 4, 6, 8], "policies": "all", "seeds": 1}
        jid = client.post("/v1/sweeps", json=long).json()["id"]
        t0 = time.time()
        while client.get(f"/v1/jobs/{jid}").json()["progress"] is None:
            assert time.time() - t0 < 60, "no progress from the running sweep"
            time.sleep(0.1)
        assert client.delete(f"/v1/jobs/{jid}").json()["state"] == "cancelled"
        # the single worker stops the sweep at its next report and takes the next job
        gid = client.post("/v1/graphs", json=TINY).json()["id"]
        quick = client.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
        assert wait_for(client, quick, timeout_s=90)["state"] == "done"
        job = client.get(f"/v1/jobs/{jid}").json()
        assert job["state"] == "cancelled" and job["result"] is None


def test_uploaded_hardware_plans_and_no_client_path_is_read(client, tmp_path):
    doc = client.get("/v1/hardware/edge-4x4").json()
    doc["name"] = "my-chip"
    doc["mesh"] = [3, 2]
    r = client.post("/v1/hardware", json=doc)
    assert r.status_code == 201 and r.json()["tiles"] == 6
    hid = r.json()["id"]
    assert client.get(f"/v1/hardware/{hid}").json()["name"] == "my-chip"
    assert hid in [h.get("id") for h in client.get("/v1/hardware").json()]
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    job = wait_for(client, client.post("/v1/plans", json={"graph_id": gid, "hw": hid}).json()["id"])
    assert job["state"] == "done" and job["result"]["hw"] == "my-chip"
    # the job names the hardware as a request does (its id), and says its name
    assert job["params"]["hw"] == hid and job["params"]["hw_name"] == "my-chip"
    again = client.post("/v1/plans", json={"graph_id": gid, "hw": job["params"]["hw"]})
    assert again.status_code == 202
    assert wait_for(client, again.json()["id"])["state"] == "done"
    # one name, one chip: the same file again is the same id; another file under it is refused
    r = client.post("/v1/hardware", json=doc)
    assert r.status_code == 200 and r.json()["id"] == hid
    other = client.post("/v1/hardware", json={**doc, "mesh": [2, 2]})
    assert other.status_code == 422 and hid in other.json()["detail"]
    # paging: the presets first, then the uploads
    listed = client.get("/v1/hardware").json()
    assert [h.get("id") for h in listed[-1:]] == [hid]
    assert client.get("/v1/hardware", params={"offset": len(listed) - 1}).json() == listed[-1:]
    assert client.get("/v1/hardware", params={"limit": 1}).json() == listed[:1]
    # a hardware file on the server's disk is never read for a client
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(doc))
    r = client.post("/v1/plans", json={"graph_id": gid, "hw": str(secret)})
    assert r.status_code == 422 and "unknown hardware" in r.json()["detail"]
    bad = client.post("/v1/hardware", json={**doc, "mesh": [0, 2]})
    assert bad.status_code == 422 and "mesh" in bad.json()["detail"]
    assert client.post("/v1/hardware", content=b"{").status_code == 422
    # an upload named as a preset would read as the preset in its results
    for preset in ("edge-8x8", "Edge-8x8"):
        same = client.post("/v1/hardware", json={**doc, "name": preset})
        assert same.status_code == 422 and "preset" in same.json()["detail"]
    spaced = client.post("/v1/hardware", json={**doc, "name": "edge-4x4 "})
    assert spaced.status_code == 422 and "spaces" in spaced.json()["detail"]
    assert client.delete("/v1/hardware/edge-4x4").status_code == 405
    assert client.delete(f"/v1/hardware/{hid}").status_code == 204
    assert client.get(f"/v1/hardware/{hid}").status_code == 404
    assert client.delete(f"/v1/hardware/{hid}").status_code == 404


def test_trace_delete(client):
    tid = client.post("/v1/traces", json={"scenario": SMALL_SCENARIO}).json()["id"]
    listed = client.get("/v1/traces").json()
    assert tid in [t["id"] for t in listed]
    assert client.get("/v1/traces", params={"limit": 1}).json() == listed[:1]
    assert client.get("/v1/traces", params={"limit": 0}).status_code == 422
    assert client.delete(f"/v1/traces/{tid}").status_code == 204
    assert client.get(f"/v1/traces/{tid}").status_code == 404
    assert client.delete(f"/v1/traces/{tid}").status_code == 404


def test_a_second_api_process_does_not_fail_its_siblings_jobs(tmp_path, monkeypatch):
    from service.app import app_factory

    monkeypatch.setenv("ISOSCHED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ISOSCHED_WARM_WORKERS", "0")
    first = app_factory()
    jid = first.state.store.add_job("plan", {"hw": "edge-8x8"})
    first.state.store.set_job(jid, "running")
    second = app_factory()  # a sibling started by `isosched serve --api-workers 2`
    assert second.state.store.get_job(jid)["state"] == "running"
    assert create_app(Settings.from_env()).state.store.get_job(jid)["state"] == "running"
    # once the owner stops beating, any instance fails the job
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from service.store import instances

    with first.state.store.engine.begin() as conn:
        old = datetime.now(UTC) - timedelta(minutes=5)
        conn.execute(update(instances).values(heartbeat_at=old))
    assert second.state.store.recover() == 1
    job = second.state.store.get_job(jid)
    assert job["state"] == "failed" and "interrupted" in job["error"]
    assert first.state.store.url == second.state.store.url


def test_a_full_queue_answers_429_with_retry_after(tmp_path):
    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, workers=1, max_pending=1)
    app = create_app(settings)
    client = TestClient(app)
    long = {"scenario": "ad_urban", "scales": [1, 2, 4, 8], "seeds": 1}
    first = client.post("/v1/sweeps", json=long)
    assert first.status_code == 202 and first.json()["state"] == "queued"
    busy = client.post("/v1/plans", json={"model": "resnet50"})
    assert busy.status_code == 429 and busy.headers["retry-after"] == "5"
    assert "pending" in busy.json()["detail"]
    client.delete(f"/v1/jobs/{first.json()['id']}")
    app.state.runner.shutdown()


def test_head_is_answered_wherever_get_is(client):
    for path in ("/healthz", "/v1/models", "/"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        assert head.headers.get("content-length") == got.headers.get("content-length"), path
    assert client.head("/v1/jobs/nope").status_code == 404
    assert client.head("/v1/jobs/nope/events").status_code == 405  # a stream: GET only
    assert client.head("/v1/plans").status_code == 405  # POST only


def test_an_event_stream_ends_with_a_final_state_when_its_job_is_deleted():
    """A job cancelled and deleted between two looks: the stream's last event says so."""
    import asyncio
    from types import SimpleNamespace

    from service.routers.jobs import job_events

    running = {"state": "running", "error": None, "progress": None}
    answers = iter([running, running, None])  # the route's check, one look, then deleted

    async def never() -> bool:
        return False

    store = SimpleNamespace(job_summary=lambda _jid: next(answers))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(store=store)))
    request.is_disconnected = never

    async def collect() -> list[str]:
        response = await job_events("j", request)  # type: ignore[arg-type]
        return [str(chunk) async for chunk in response.body_iterator]

    events = asyncio.run(collect())
    assert len(events) == 2 and all(e.startswith("event: state\n") for e in events)
    assert json.loads(events[-1].split("data: ")[1]) == {
        "id": "j", "state": "deleted", "error": "the job was deleted"
    }  # fmt: skip
