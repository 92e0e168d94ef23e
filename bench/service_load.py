"""Bounded load test of the REST service on loopback.

Run: ``python bench/service_load.py [--requests 2000] [--concurrency 32] [--background 4]``.

Starts ``isosched serve`` on a free 127.0.0.1 port with a fresh data folder, queues
``--background`` plans of large zoo models so the worker processes are solving throughout, then
sends ``--requests`` requests from ``--concurrency`` concurrent clients, mixed as

* 30 % ``GET /v1/graphs/{id}`` (a stored ResNet-50),
* 25 % ``GET /v1/jobs/{id}`` (a job poll),
* 15 % ``GET /v1/graphs`` (list),
* 25 % ``POST /v1/graphs`` (the ResNet-50 graph file, about 60 kB),
* 5 % ``POST /v1/plans`` (ResNet-50 on edge-4x4),

and prints, per kind and overall: count, p50 and p99 latency (ms), errors (non-2xx) and 5xx
count, with throughput in requests per second. The server is stopped at the end; nothing is left
behind. Exit status 1 when any 5xx was answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("get_graph", "get_job", "list_graphs", "upload_graph", "submit_plan")
WEIGHTS = (30, 25, 15, 25, 5)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data: Path, port: int, api_workers: int = 1, timeout_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """``isosched serve`` in a subprocess; returns once ``/healthz`` answers."""
    env = {**os.environ, "ISOSCHED_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "isosched", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--api-workers", str(api_workers)] if api_workers > 1 else []
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not answer /healthz within {timeout_s:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) by nearest rank; NaN for no samples."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


async def run_load(
    base: str, graph: dict[str, Any], n: int, concurrency: int, background: int, seed: int
) -> tuple[dict[str, list[tuple[float, int]]], float, int]:
    """Send the mix; returns per-kind (latency ms, status) samples, wall s and plans running.

    The client is aiohttp: on two cores the load generator shares the CPU with the server, and
    httpx's client costs several times more CPU per request (it, not the server, was the
    bottleneck in the first measurements).
    """
    rng = random.Random(seed)
    body = json.dumps(graph).encode()
    hdr = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:

        async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
            async with client.request(method, path, **kw) as r:
                data = await r.read()
                return r.status, data

        _, data = await call("POST", "/v1/graphs", data=body, headers=hdr)
        gid = json.loads(data)["id"]
        heavy = ["gpt2_xl", "yolov3", "unet", "googlenet"]
        jobs = []
        for i in range(background):
            spec = {"model": heavy[i % len(heavy)], "hw": "datacenter-16x16"}
            _, data = await call("POST", "/v1/plans", json=spec)
            jobs.append(json.loads(data)["id"])
        if not jobs:  # something to poll
            _, data = await call("POST", "/v1/plans", json={"model": "resnet50", "hw": "edge-4x4"})
            jobs.append(json.loads(data)["id"])
        plan = {"model": "resnet50", "hw": "edge-4x4"}
        samples: dict[str, list[tuple[float, int]]] = {k: [] for k in KINDS}
        todo = rng.choices(KINDS, WEIGHTS, k=n)
        todo.reverse()

        async def one(kind: str) -> int:
            if kind == "get_graph":
                return (await call("GET", f"/v1/graphs/{gid}"))[0]
            if kind == "get_job":
                return (await call("GET", f"/v1/jobs/{rng.choice(jobs)}"))[0]
            if kind == "list_graphs":
                return (await call("GET", "/v1/graphs", params={"limit": 20}))[0]
            if kind == "upload_graph":
                return (await call("POST", "/v1/graphs", data=body, headers=hdr))[0]
            status, data = await call("POST", "/v1/plans", json=plan)
            if status == 202:
                jobs.append(json.loads(data)["id"])
            return status

        async def worker() -> None:
            while todo:
                kind = todo.pop()
                t0 = time.perf_counter()
                try:
                    status = await one(kind)
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                samples[kind].append(((time.perf_counter() - t0) * 1e3, status))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        running = 0
        for jid in jobs[:background]:
            _, data = await call("GET", f"/v1/jobs/{jid}")
            running += json.loads(data)["state"] == "running"
    return samples, wall, running


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--background", type=int, default=4, help="Large plans queued first.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--api-workers", type=int, default=1, help="API processes of the server.")
    ap.add_argument("--json", type=Path, help="Also write the numbers to this file.")
    args = ap.parse_args()
    graph = json.loads((ROOT / "models" / "resnet50.json").read_text())
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="isosched-load-") as tmp:
        proc = start_server(Path(tmp), port, args.api_workers)
        cpu0 = cpu_seconds(proc.pid)
        try:
            samples, wall, running = asyncio.run(
                run_load(
                    f"http://127.0.0.1:{port}",
                    graph,
                    args.requests,
                    args.concurrency,
                    args.background,
                    args.seed,
                )
            )
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    rows: dict[str, dict[str, float]] = {}
    everything: list[tuple[float, int]] = []
    for kind, xs in [*samples.items(), ("all", [])]:
        xs = everything if kind == "all" else xs
        if kind != "all":
            everything.extend(xs)
        lat = [x[0] for x in xs]
        rows[kind] = {
            "count": len(xs),
            "p50_ms": pct(lat, 0.50),
            "p99_ms": pct(lat, 0.99),
            "errors": sum(not 200 <= s < 300 for _, s in xs),
            "5xx": sum(s >= 500 for _, s in xs),
        }
    print(
        f"{args.requests} requests, {args.concurrency} concurrent, {args.background} background "
        f"plans ({running} still solving at the end): {wall:.1f} s, "
        f"{args.requests / wall:.0f} requests/s; API process CPU "
        f"{cpu * 1e3 / args.requests:.2f} ms per request"
    )
    if args.api_workers > 1:
        print(f"({args.api_workers} API processes; the CPU figure counts the supervisor only)")
    print("| kind | count | p50 ms | p99 ms | errors | 5xx |")
    print("|---|---|---|---|---|---|")
    for kind, r in rows.items():
        print(
            f"| {kind} | {r['count']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']:.0f} | {r['5xx']:.0f} |"
        )
    if args.json is not None:
        out = {"wall_s": wall, "requests_per_s": args.requests / wall, "kinds": rows}
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if rows["all"]["5xx"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
