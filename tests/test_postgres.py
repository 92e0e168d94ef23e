"""The service on a real PostgreSQL server: persistence, and two API processes on one database.

Needs ``ISOSCHED_TEST_POSTGRES_URL`` (an SQLAlchemy URL of a role that may create databases, e.g.
``postgresql+psycopg://isosched:isosched@127.0.0.1:5432/postgres``); ``.ci/run`` installs and
starts PostgreSQL from Debian packages and sets it. Without it the tests skip, saying so.
"""

import os
import signal
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.app import create_app
from service.settings import Settings
from tests.servers import serve
from tests.test_service import TINY, wait_for

ADMIN_URL = os.environ.get("ISOSCHED_TEST_POSTGRES_URL")

pytestmark = pytest.mark.skipif(
    not ADMIN_URL,
    reason="PostgreSQL tests need ISOSCHED_TEST_POSTGRES_URL (set by .ci/run, which starts "
    "Debian's PostgreSQL on 127.0.0.1)",
)


@pytest.fixture(scope="module")
def pg_url():
    assert ADMIN_URL is not None
    name = f"isosched_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_store_and_jobs_on_postgres(pg_url, tmp_path):
    app = create_app(Settings(pg_url, tmp_path))
    from fastapi.testclient import TestClient

    client = TestClient(app)
    gid = client.post("/v1/graphs", json=TINY).json()["id"]
    assert client.get(f"/v1/graphs/{gid}").json()["name"] == "tiny"
    job = wait_for(
        client, client.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
    )
    assert job["state"] == "done" and job["result"]["schema"] == "isosched.plan/v1"
    assert job["progress"] is not None
    app.state.runner.shutdown()
    # a new process on the same database sees everything
    again = create_app(Settings(pg_url, tmp_path))
    assert again.state.store.get_job(job["id"])["result"] == job["result"]
    again.state.runner.shutdown()


def test_two_api_processes_share_jobs(pg_url, tmp_path):
    a, base_a = serve(tmp_path / "a", {"ISOSCHED_DATABASE_URL": pg_url})
    b, base_b = serve(tmp_path / "b", {"ISOSCHED_DATABASE_URL": pg_url})
    try:
        with (
            httpx.Client(base_url=base_a, timeout=30) as ca,
            httpx.Client(base_url=base_b, timeout=30) as cb,
        ):
            gid = ca.post("/v1/graphs", json=TINY).json()["id"]
            assert cb.get(f"/v1/graphs/{gid}").status_code == 200  # uploaded on A, read on B
            jid = ca.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
            done = wait_for(cb, jid)  # submitted to A, followed on B
            assert done["state"] == "done"
            assert jid in [j["id"] for j in cb.get("/v1/jobs").json()]
            # a long job on A, cancelled through B: A's worker stops at its next report
            long = ca.post(
                "/v1/sweeps", json={"scenario": "ad_urban", "scales": [1, 2, 4, 8], "seeds": 1}
            )
            lid = long.json()["id"]
            assert cb.delete(f"/v1/jobs/{lid}").json()["state"] == "cancelled"
            assert wait_for(ca, lid)["state"] == "cancelled"
            # A dies without a clean stop while a job runs; B fails the job, never leaves it running
            stuck = ca.post(
                "/v1/sweeps", json={"scenario": "ad_urban", "scales": [1, 2, 4, 8], "seeds": 1}
            )
            sid = stuck.json()["id"]
            a.send_signal(signal.SIGKILL)
            a.wait(timeout=30)
            job = wait_for(cb, sid, timeout_s=60)  # B's keep-alive notices within ~10 s
            assert job["state"] == "failed" and "interrupted" in job["error"]
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
