"""Issue 14: cancel means stop — a cancelled or timed-out job's worker is killed and replaced,
and workers never outlive the API process, however it ends."""

import signal
import time

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.servers import serve
from tests.test_service import TINY, wait_for

#: A chain of 1,000 light layers: the planner's first phase runs long without a progress report.
CHAIN = {
    "name": "chain1000",
    "layers": [{"id": "x", "op": "input", "shape": [64]}]
    + [
        {
            "id": f"fc{i}",
            "op": "linear",
            "inputs": ["x" if i == 0 else f"fc{i - 1}"],
            "out_features": 64,
        }
        for i in range(1000)
    ],
}

#: A sweep that runs for minutes with one worker.
LONG_SWEEP = {
    "scenario": "ad_stress",
    "scales": [1, 2, 3, 4, 6, 8],
    "policies": "all",
    "seeds": 1,
}


def _gone_within(pid: int, seconds: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


def _worker_pid(app, jid: str, timeout_s: float = 120) -> int:
    """The pid of the worker running ``jid`` (once the job is running there)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        state = app.state.store.get_job(jid)["state"]
        with app.state.runner.lock:
            pids = [s.proc.pid for s in app.state.runner.slots if s.job == jid]
        if state == "running" and pids:
            return int(pids[0])
        time.sleep(0.05)
    raise AssertionError(f"job {jid} never ran")


@pytest.fixture
def one_worker(tmp_path):
    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, workers=1))
    yield app, TestClient(app)
    app.state.runner.shutdown()


@pytest.mark.parametrize("what", ["sweep", "first planner phase"])
def test_cancel_kills_the_worker_within_a_second_and_the_next_job_runs(one_worker, what):
    app, client = one_worker
    if what == "sweep":
        jid = client.post("/v1/sweeps", json=LONG_SWEEP).json()["id"]
    else:
        gid = client.post("/v1/graphs", json=CHAIN).json()["id"]
        jid = client.post("/v1/plans", json={"graph_id": gid, "hw": "edge-8x8"}).json()["id"]
    pid = _worker_pid(app, jid)
    quick_gid = client.post("/v1/graphs", json=TINY).json()["id"]
    quick = client.post("/v1/plans", json={"graph_id": quick_gid, "hw": "edge-4x4"}).json()["id"]
    assert client.get(f"/v1/jobs/{quick}").json()["state"] == "queued"  # behind the long one
    t0 = time.monotonic()
    assert client.delete(f"/v1/jobs/{jid}").json()["state"] == "cancelled"
    assert _gone_within(pid, 5.0), "the cancelled job's worker is still alive"
    freed_s = time.monotonic() - t0
    assert freed_s < 5.0
    # a replacement worker takes the queued job at once (its start-up is the only wait)
    assert wait_for(client, quick, timeout_s=120)["state"] == "done"
    job = client.get(f"/v1/jobs/{jid}").json()
    assert job["state"] == "cancelled" and job["result"] is None


def test_a_job_cancelled_through_another_instance_is_stopped_too(one_worker):
    app, client = one_worker
    jid = client.post("/v1/sweeps", json=LONG_SWEEP).json()["id"]
    _worker_pid(app, jid)
    # what a sibling API process on the same database does: only the record changes
    app.state.store.set_job(jid, "cancelled", error="cancelled by request")
    # the dispatcher kills the worker, unless the worker noticed first at a progress report
    # and went idle: either way nothing works on the job any more
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        with app.state.runner.lock:
            busy = any(s.job == jid for s in app.state.runner.slots)
        if not busy:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the job cancelled elsewhere is still being worked on")


def test_a_job_over_its_time_limit_fails_and_frees_its_worker(tmp_path):
    settings = Settings(
        f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, workers=1, job_timeout_s=2.0
    )
    app = create_app(settings)
    client = TestClient(app)
    try:
        jid = client.post("/v1/sweeps", json=LONG_SWEEP).json()["id"]
        pid = _worker_pid(app, jid)
        job = wait_for(client, jid, timeout_s=120)
        assert job["state"] == "failed" and "timed out" in job["error"], job
        assert _gone_within(pid, 10.0)
    finally:
        app.state.runner.shutdown()


def test_a_worker_killed_from_outside_fails_its_job_and_is_replaced(one_worker):
    app, client = one_worker
    jid = client.post("/v1/sweeps", json=LONG_SWEEP).json()["id"]
    psutil.Process(_worker_pid(app, jid)).kill()
    job = wait_for(client, jid, timeout_s=60)
    assert job["state"] == "failed" and "worker process died" in job["error"]
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    again = client.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
    assert wait_for(client, again, timeout_s=120)["state"] == "done"


def _busy_server(tmp_path):
    """A real API process with both workers busy; returns (process, its descendants)."""
    proc, base = serve(tmp_path, env={"ISOSCHED_WORKERS": "2"})
    with httpx.Client(base_url=base, timeout=30) as c:
        jobs = [c.post("/v1/sweeps", json=LONG_SWEEP).json()["id"] for _ in range(2)]
        t0 = time.monotonic()
        while any(c.get(f"/v1/jobs/{j}").json()["state"] != "running" for j in jobs):
            assert time.monotonic() - t0 < 120, "the workers never started"
            time.sleep(0.2)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2  # two workers (and the multiprocessing resource tracker)
    return proc, children


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_the_api(tmp_path, sig):
    proc, children = _busy_server(tmp_path)
    try:
        proc.send_signal(sig)
        proc.wait(timeout=60)
        t0 = time.monotonic()
        alive = list(children)
        while alive and time.monotonic() - t0 < 10:
            alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.1)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        for p in children:  # never leave anything behind, even when the test fails
            if p.is_running():
                p.kill()
