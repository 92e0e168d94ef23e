"""The attacks of issue 14 against a real API process, with its memory and health latency.

Run by hand (numbers in docs/reliability.md)::

    .venv/bin/python -m tests.attacks            # every attack, a Markdown table on stdout

Each attack runs while a thread asks ``/healthz`` every 50 ms and another samples the API
process's resident memory every 50 ms; the table gives the answer, the attack's wall time, the
largest RSS growth over the value before it and the worst and median health-check latency
during it. The cancel rows give the time from ``DELETE /v1/jobs/{id}`` until the worker process
that ran the job is gone.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.servers import serve
from tests.test_hardening import _bomb
from tests.test_service import TINY
from tests.test_workers import CHAIN


def _big_graph(n: int) -> dict[str, Any]:
    """``n`` light layers in a chain (a large upload)."""
    layers: list[dict[str, Any]] = [{"id": "x", "op": "input", "shape": [64]}]
    layers += [{"id": f"a{i}", "op": "activation", "inputs": [layers[-1]["id"]]} for i in range(n)]
    return {"name": f"big{n}", "layers": layers}


class Probe:
    """Health-check latency and RSS of one process, sampled in background threads."""

    def __init__(self, base: str, pid: int) -> None:
        self.base = base
        self.proc = psutil.Process(pid)
        self.latencies: list[float] = []
        self.rss: list[int] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._health, daemon=True),
            threading.Thread(target=self._memory, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _health(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):  # a timeout counts as its time
                    c.get("/healthz")
                self.latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)

    def _memory(self) -> None:
        while not self.stop.is_set():
            try:
                self.rss.append(self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    def window(self) -> tuple[int, int]:
        """Marks to measure from."""
        return len(self.latencies), len(self.rss)

    def since(self, mark: tuple[int, int], before_rss: int) -> tuple[float, float, float]:
        """(RSS growth MiB, worst and median health latency ms) since ``mark``."""
        lat = self.latencies[mark[0] :] or [0.0]
        rss = self.rss[mark[1] :] or [before_rss]
        return (
            (max(rss) - before_rss) / 2**20,
            max(lat) * 1e3,
            statistics.median(lat) * 1e3,
        )

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=70)


def _post(c: httpx.Client, path: str, body: bytes | str, ctype: str) -> int:
    return c.post(path, content=body, headers={"content-type": ctype}).status_code


def _wait_running(c: httpx.Client, jid: str) -> None:
    t0 = time.time()
    while c.get(f"/v1/jobs/{jid}").json()["state"] != "running":
        assert time.time() - t0 < 120
        time.sleep(0.05)


def _workers(pid: int) -> set[int]:
    """Live worker processes of the API (a killed one awaiting its reaping is not live)."""
    out = set()
    for p in psutil.Process(pid).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            continue
    return out


def _cancel(c: httpx.Client, api_pid: int, submit: Callable[[], str]) -> str:
    """Submit, wait until running, cancel; how long until a worker process was gone."""
    before = _workers(api_pid)
    jid = submit()
    _wait_running(c, jid)
    time.sleep(0.5)  # deep in its work
    t0 = time.perf_counter()
    c.delete(f"/v1/jobs/{jid}")
    while before <= _workers(api_pid):
        time.sleep(0.005)
        if time.perf_counter() - t0 > 30:
            return "not freed in 30 s"
    return f"worker gone {1e3 * (time.perf_counter() - t0):.0f} ms after DELETE"


def main() -> None:
    """Run every attack and print the table."""
    data = Path(tempfile.mkdtemp(prefix="isosched-attacks-"))
    proc, base = serve(data, env={"ISOSCHED_WARM_WORKERS": "1"})
    rows: list[str] = []
    try:
        with httpx.Client(base_url=base, timeout=300) as c:
            probe = Probe(base, proc.pid)
            time.sleep(1.0)
            gid = c.post("/v1/graphs", json=TINY).json()["id"]
            chain = c.post("/v1/graphs", json=CHAIN).json()["id"]
            big = json.dumps(_big_graph(200_000))
            attacks: list[tuple[str, Callable[[], Any]]] = [
                (
                    "100,000 nested [ to POST /v1/graphs",
                    lambda: _post(c, "/v1/graphs", "[" * 100_000, "application/json"),
                ),
                (
                    "990-level meta in a graph",
                    lambda: _post(
                        c,
                        "/v1/graphs",
                        json.dumps({**TINY, "meta": 0}).replace(
                            '"meta": 0', '"meta": ' + '{"a": ' * 990 + "1" + "}" * 990
                        ),
                        "application/json",
                    ),
                ),
                (
                    "5,000-digit integer to POST /v1/hardware",
                    lambda: _post(
                        c, "/v1/hardware", '{"name": ' + "7" * 5000 + "}", "application/json"
                    ),
                ),
                (
                    "5,000-digit integer in a JSON Lines trace",
                    lambda: _post(
                        c,
                        "/v1/traces",
                        '{"schema": "isosched.trace/v1", "n": ' + "7" * 5000 + "}\n",
                        "application/x-ndjson",
                    ),
                ),
                (
                    "POST /v1/traces ad_stress scale 1000",
                    lambda: (
                        c.post(
                            "/v1/traces", json={"scenario": "ad_stress", "scale": 1000}
                        ).status_code
                    ),
                ),
                (
                    "POST /v1/sweeps model /etc/passwd",
                    lambda: (
                        c.post(
                            "/v1/sweeps",
                            json={
                                "scenario": {
                                    "name": "p",
                                    "horizon_ms": 100,
                                    "streams": [
                                        {
                                            "id": "a",
                                            "model": "/etc/passwd",
                                            "period_ms": 50,
                                            "deadline_ms": 50,
                                            "priority": 1,
                                        }
                                    ],
                                }
                            },
                        ).status_code
                    ),
                ),
                (
                    "ONNX ConstantOfShape [20000, 20000]",
                    lambda: _post(c, "/v1/graphs", _bomb("constant_of_shape"), "application/onnx"),
                ),
                (
                    "ONNX Range(0, 1e8)",
                    lambda: _post(c, "/v1/graphs", _bomb("range"), "application/onnx"),
                ),
                (
                    "ONNX Tile to 30000x30000",
                    lambda: _post(c, "/v1/graphs", _bomb("tile"), "application/onnx"),
                ),
                (
                    f"200,000-layer graph upload ({len(big) / 2**20:.1f} MiB)",
                    lambda: _post(c, "/v1/graphs", big, "application/json"),
                ),
                (
                    "POST /v1/traces ad_stress scale 100 (205k jobs)",
                    lambda: (
                        c.post(
                            "/v1/traces", json={"scenario": "ad_stress", "scale": 100}
                        ).status_code
                    ),
                ),
            ]
            for name, attack in attacks:
                before = probe.rss[-1]
                mark = probe.window()
                t0 = time.perf_counter()
                status = attack()
                wall = time.perf_counter() - t0
                time.sleep(0.3)
                grow, worst, median = probe.since(mark, before)
                rows.append(
                    f"| {name} | {status} | {wall:.2f} | {grow:.1f} | {worst:.0f} | {median:.0f} |"
                )
            tid = c.get("/v1/traces").json()[0]["id"]
            before = probe.rss[-1]
            mark = probe.window()
            t0 = time.perf_counter()
            status = c.get(f"/v1/traces/{tid}").status_code
            wall = time.perf_counter() - t0
            grow, worst, median = probe.since(mark, before)
            rows.append(
                f"| GET that 205k-job trace | {status} | {wall:.2f} | {grow:.1f} | {worst:.0f} "
                f"| {median:.0f} |"
            )
            cancels = [
                (
                    "cancel a sweep (ad_stress, 6 scales, all policies)",
                    lambda: c.post(
                        "/v1/sweeps",
                        json={"scenario": "ad_stress", "scales": [1, 2, 3, 4, 6, 8], "seeds": 1},
                    ).json()["id"],
                ),
                (
                    "cancel a plan in its first phase (1,000-layer chain)",
                    lambda: c.post(
                        "/v1/plans", json={"graph_id": chain, "hw": "wafer-64x64"}
                    ).json()["id"],
                ),
                (
                    "cancel a plan in CP-SAT (gpt2_xl on edge-8x8)",
                    lambda: c.post("/v1/plans", json={"model": "gpt2_xl"}).json()["id"],
                ),
            ]
            for name, submit in cancels:
                rows.append(f"| {name} | {_cancel(c, proc.pid, submit)} | | | | |")
            job = c.post("/v1/plans", json={"graph_id": gid, "hw": "edge-4x4"}).json()["id"]
            while c.get(f"/v1/jobs/{job}").json()["state"] not in ("done", "failed"):
                time.sleep(0.1)
            probe.close()
            rss = (probe.rss[0] / 2**20, max(probe.rss) / 2**20, probe.rss[-1] / 2**20)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(
        "| attack | answer | wall s | API RSS growth MiB | worst /healthz ms | median /healthz ms |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"\nAPI RSS: {rss[0]:.0f} MiB at start, {rss[1]:.0f} MiB at most, "
        f"{rss[2]:.0f} MiB at the end"
    )


if __name__ == "__main__":
    main()
