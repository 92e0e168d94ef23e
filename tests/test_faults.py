"""Faults: a killed API process, a killed worker, hostile file names. Nothing stored is lost and
no job is left running forever."""

import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.servers import serve
from tests.test_service import TINY, wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_killing_the_api_during_a_job_and_during_writes_loses_nothing(tmp_path):
    proc, base = serve(tmp_path)
    stored: list[str] = []
    stop = threading.Event()
    with httpx.Client(base_url=base, timeout=30) as c:
        gid = c.post("/v1/graphs", json=TINY).json()["id"]
        plan = c.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
        done = wait_for(c, plan)
        assert done["state"] == "done"
        running = c.post(
            "/v1/sweeps", json={"scenario": "ad_urban", "scales": [1, 2, 4, 8], "seeds": 1}
        )
        rid = running.json()["id"]

        def upload() -> None:  # writes in flight when the process dies
            with httpx.Client(base_url=base, timeout=5) as w:
                while not stop.is_set():
                    try:
                        r = w.post("/v1/graphs", json=TINY)
                    except httpx.HTTPError:
                        return
                    if r.status_code == 201:
                        stored.append(r.json()["id"])

        writer = threading.Thread(target=upload)
        writer.start()
        time.sleep(1.0)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        stop.set()
        writer.join(timeout=30)
        for child in children:  # the whole process tree dies, as in a container crash
            child.kill()
    assert len(stored) > 0
    again, base = serve(tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get(f"/v1/jobs/{done['id']}").json()["result"] == done["result"]
            job = c.get(f"/v1/jobs/{rid}").json()
            assert job["state"] == "failed" and "interrupted" in job["error"]
            for g in stored:  # every acknowledged write survived
                assert c.get(f"/v1/graphs/{g}").status_code == 200
    finally:
        again.terminate()
        again.wait(timeout=30)


def _is_pool_worker(p: psutil.Process) -> bool:
    """A live multiprocessing child (an exited one is a zombie until reaped: not a worker)."""
    try:
        return "multiprocessing" in " ".join(p.cmdline())
    except psutil.Error:
        return False


def test_a_dead_worker_fails_its_job_with_the_reason_and_the_pool_recovers(tmp_path):
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, workers=1))
    client = TestClient(app)
    jid = client.post(
        "/v1/sweeps", json={"scenario": "ad_urban", "scales": [1, 2, 4, 8], "seeds": 1}
    ).json()["id"]
    t0 = time.time()
    while client.get(f"/v1/jobs/{jid}").json()["progress"] is None:
        assert time.time() - t0 < 60
        time.sleep(0.1)
    victims = [p for p in psutil.Process().children(recursive=True) if _is_pool_worker(p)]
    assert victims
    for p in victims:
        p.kill()
    job = wait_for(client, jid, timeout_s=60)
    assert job["state"] == "failed" and "worker process died" in job["error"]
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    plan = client.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
    after = wait_for(client, plan)
    assert after["state"] == "done"  # a fresh pool took the next job
    app.state.runner.shutdown()


@pytest.mark.parametrize("name", ["../../escape.onnx", "/etc/passwd", "..\\\\x.json", "a\\x00b"])
def test_client_file_names_never_reach_the_disk(tmp_path, name):
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path))
    client = TestClient(app)
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    data = (ROOT / "models" / "onnx" / "resnet50.onnx").read_bytes()
    headers = {
        "content-type": "application/onnx",
        "content-disposition": f'attachment; filename="{name}"',
    }
    assert client.post("/v1/graphs", content=data, headers=headers).status_code == 201
    trace = client.post(
        "/v1/traces",
        content=(ROOT / "traces" / "ad_highway.s7.jsonl").read_text(),
        headers={"content-type": "application/x-ndjson", "content-disposition": f"filename={name}"},
    )
    assert trace.status_code == 201
    after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert {str(p) for p in after - before} <= {"db.sqlite-wal", "db.sqlite-shm", "db.sqlite"}
    assert not (tmp_path.parent / "escape.onnx").exists()
    app.state.runner.shutdown()
