"""Real servers for tests: free loopback ports and ``isosched serve`` subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "serve", "wait_healthy"]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(
    base: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 60
) -> None:
    """Return once ``base/healthz`` answers; fail if ``proc`` exits or time runs out."""
    t0 = time.time()
    while True:
        try:
            httpx.get(base + "/healthz", timeout=2)
            return
        except httpx.HTTPError:
            assert proc is None or proc.poll() is None, "server exited"
            assert time.time() - t0 < timeout_s, f"{base} did not start"
            time.sleep(0.2)


def serve(
    data_dir: Path, env: dict[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``isosched serve`` on 127.0.0.1 with its data in ``data_dir``; returns (process, base URL).

    Workers start on the first job; the database is the SQLite file in ``data_dir`` unless
    ``env`` names another.
    """
    port = port or free_port()
    full = {k: v for k, v in os.environ.items() if k != "ISOSCHED_DATABASE_URL"}
    full |= {"ISOSCHED_DATA_DIR": str(data_dir), "ISOSCHED_WARM_WORKERS": "0", **(env or {})}
    cmd = [sys.executable, "-m", "isosched", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
    except AssertionError:
        proc.kill()
        raise
    return proc, base
