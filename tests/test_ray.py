"""Ray runner: the same sweep on Ray and on the local pool gives identical results."""

import json
import os
import subprocess
import sys

import pytest

from isosched.io.hardware_json import load_hardware
from isosched.io.model_source import load_models
from isosched.sim.sweep import sweep
from isosched.trace import parse_scenario
from tests.test_report import SCENARIO
from tests.test_service import wait_for

try:
    import ray

    HAVE_RAY = True
except ImportError:  # pragma: no cover - the dev extra installs Ray
    if os.environ.get("CI"):
        raise
    HAVE_RAY = False

pytestmark = [
    pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install -e '.[ray]')"),
    pytest.mark.usefixtures("ray_exclusive"),
]

POLICIES = ["isosched", "hasp", "prema", "fcfs"]


@pytest.fixture(scope="module")
def local_cluster(ray_exclusive):
    from service.ray_runner import connect

    connect("local", 2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference():
    sc = parse_scenario(SCENARIO)
    models = load_models(s.model for s in sc.streams)
    return sweep(sc, load_hardware("edge-4x4"), POLICIES, [1, 2, 4], 2, workers=2, models=models)


def test_ray_sweep_equals_the_local_pool(local_cluster, reference):
    from service.ray_runner import ray_map

    got = sweep(
        parse_scenario(SCENARIO),
        load_hardware("edge-4x4"),
        POLICIES,
        [1, 2, 4],
        2,
        executor=ray_map("local"),
        models=load_models(s.model for s in parse_scenario(SCENARIO).streams),
    )
    assert got == reference


def test_service_jobs_on_ray(local_cluster, reference, tmp_path):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, ray_address="local"))
    client = TestClient(app)
    body = {
        "scenario": SCENARIO,
        "hw": "edge-4x4",
        "policies": ",".join(POLICIES),
        "scales": [1, 2, 4],
        "seeds": 2,
    }
    job = wait_for(client, client.post("/v1/sweeps", json=body).json()["id"], timeout_s=180)
    assert job["state"] == "done", job["error"]
    assert job["result"] == reference
    assert job["progress"]["message"].startswith("point ")


def test_cli_sweep_on_ray(tmp_path, reference):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    cmd = [sys.executable, "-m", "isosched", "sweep", str(path), "--hw", "edge-4x4"]
    cmd += ["--policy", ",".join(POLICIES), "--scales", "1,2,4", "--seeds", "2", "--json"]
    out = subprocess.run(
        [*cmd, "--ray", "local", "--workers", "2"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == reference


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("nowhere", "is not host:port"),
        ("127.0.0.1:1", "no Ray cluster answers at '127.0.0.1:1'"),
        ("ray://127.0.0.1:1", "no Ray cluster answers at 'ray://127.0.0.1:1'"),
    ],
)
def test_cli_sweep_refuses_a_ray_address_before_any_planning(tmp_path, address, reason):
    """A bad or silent address is one line and status 2, at once (Ray would retry for
    minutes), and before the plans are made."""
    env = {**os.environ, "ISOSCHED_CACHE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "isosched", "sweep", "ad_urban", "--ray", address]
    out = subprocess.run(
        [*cmd, "--scales", "1", "--seeds", "1"], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and reason in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "plan" not in out.stderr
    assert not list(tmp_path.rglob("*.pkl"))  # nothing was planned


def test_an_address_where_another_server_listens_is_refused_at_once(tmp_path):
    """Something answers there, but not gRPC (Ray would retry such an address for minutes)."""
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        env = {**os.environ, "ISOSCHED_CACHE_DIR": str(tmp_path)}
        cmd = [sys.executable, "-m", "isosched", "sweep", "ad_urban", "--ray", address]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 2, out.stderr
    assert f"something listens at '{address}', but not a Ray cluster" in out.stderr
