"""Deployment files kept honest without a Docker engine.

The compose file and Dockerfile are read and checked against the code (services, health checks,
volumes, the settings the service reads), and the compose services' own start commands are run
outside containers: a Ray head and worker started exactly as compose starts them, and the API
started with compose's command and environment, running a sweep on that cluster.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers import free_port, wait_healthy
from tests.test_report import SCENARIO
from tests.test_service import wait_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
SETTINGS = (ROOT / "service" / "settings.py").read_text()


def test_compose_services_health_checks_and_volumes():
    services = COMPOSE["services"]
    assert set(services) == {"api", "postgres", "ray-head", "ray-worker"}
    for name, svc in services.items():
        assert "healthcheck" in svc, name
    assert set(COMPOSE["volumes"]) == {"pgdata", "apidata"}
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert services["api"]["volumes"] == ["apidata:/data"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]  # published on loopback only


def test_compose_environment_is_what_the_service_reads():
    for name, svc in COMPOSE["services"].items():
        for key in svc.get("environment", {}):
            if key.startswith("ISOSCHED_"):
                assert f'"{key}"' in SETTINGS, (name, key)
    env = COMPOSE["services"]["api"]["environment"]
    assert env["ISOSCHED_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["ISOSCHED_RAY_ADDRESS"] == "ray-head:6379"
    assert env["RAY_AUTH_MODE"] == "token"


def test_dockerfile_is_slim_non_root_and_installs_the_wheel():
    assert re.search(r"^FROM python:3\.11-slim AS build$", DOCKERFILE, re.M)
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, re.M)
    assert "pip wheel" in DOCKERFILE and "isosched-*.whl)[ray,postgres,native]" in DOCKERFILE
    # The simulator is compiled in the image, as root, before it drops to its user.
    build = DOCKERFILE.index("python -m isosched.native_build build")
    assert build < DOCKERFILE.rindex("\nUSER ")
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1] != "root"
    cmd = re.search(r"^CMD (.+)$", DOCKERFILE, re.M)
    assert cmd is not None
    api = COMPOSE["services"]["api"]["command"]
    assert yaml.safe_load(cmd.group(1)) == [c for c in api if c != "--demo"]
    for path in re.findall(r"^COPY (?!--from)(\S+) ", DOCKERFILE, re.M):
        for part in path.split():
            assert (ROOT / part).exists(), part


def _start(cmd, env):
    return subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(proc):
    """Stop a process and everything it started (Ray's daemons share its session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_compose_start_commands_outside_containers(tmp_path, ray_exclusive):
    pytest.importorskip("ray")
    bindir = Path(sys.executable).parent
    ray_port, api_port = free_port(), free_port()
    secret = os.urandom(16).hex()

    def local(cmd):
        """A compose command with its hosts and ports mapped to this machine."""
        out = []
        for c in cmd:
            c = c.replace("ray-head:", "127.0.0.1:").replace("6379", str(ray_port))
            c = c.replace("8000", str(api_port))
            out.append(c)
        exe = bindir / out[0]
        return [str(exe) if exe.exists() else out[0], *out[1:]]

    def environ(svc):
        env = {**os.environ, **{k: str(v) for k, v in svc["environment"].items()}}
        env["RAY_AUTH_TOKEN"] = secret
        pg = os.environ.get("ISOSCHED_TEST_POSTGRES_URL")
        env["ISOSCHED_DATABASE_URL"] = pg or f"sqlite:///{tmp_path / 'db.sqlite'}"
        env["ISOSCHED_DATA_DIR"] = str(tmp_path)
        env["ISOSCHED_RAY_ADDRESS"] = f"127.0.0.1:{ray_port}"
        env["ISOSCHED_WARM_WORKERS"] = "0"
        return env

    services = COMPOSE["services"]
    procs = []
    try:
        head = services["ray-head"]
        procs.append(_start(local(head["command"]), environ(head)))
        status = local(head["healthcheck"]["test"][1:])
        t0 = time.time()
        while subprocess.run(status, env=environ(head), capture_output=True).returncode != 0:
            assert time.time() - t0 < 90, "ray head did not become healthy"
            time.sleep(1)
        worker = services["ray-worker"]
        procs.append(_start(local(worker["command"]), environ(worker)))
        api = services["api"]
        cmd = [c for c in local(api["command"]) if c != "--demo"]
        cmd[cmd.index("0.0.0.0")] = "127.0.0.1"  # tests listen on loopback only
        procs.append(_start(cmd, environ(api)))
        base = f"http://127.0.0.1:{api_port}"
        wait_healthy(base, procs[-1], timeout_s=90)
        with httpx.Client(base_url=base, timeout=30) as client:
            body = {
                "scenario": SCENARIO,
                "hw": "edge-4x4",
                "policies": "hasp,fcfs",
                "scales": [1, 2],
            }
            job = wait_for(client, client.post("/v1/sweeps", json=body).json()["id"], timeout_s=180)
        assert job["state"] == "done", job["error"]
        assert set(job["result"]["policies"]) == {"hasp", "fcfs"}
    finally:
        for p in reversed(procs):
            _stop(p)
