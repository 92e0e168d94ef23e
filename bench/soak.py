"""Soak test on loopback: mixed traffic for a while, the server's memory sampled over time.

Run by hand (not in CI): ``python bench/soak.py [--minutes 10] [--concurrency 16]
[--sample-s 30] [--bound-mib 64]``.

Starts ``isosched serve`` with a fresh data folder and sends, from ``--concurrency`` clients,
the mix of ``bench/service_load.py`` plus trace generation, small replays and job cancellations,
until the time is up. Every ``--sample-s`` seconds it prints the API process's resident memory
(and that of its worker processes), requests so far, errors and 5xx. At the end it compares the
API's memory in the last sample with the first sample after warm-up (the end of the first
minute) and exits 1 if it grew by more than ``--bound-mib`` MiB or any 5xx was answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.service_load import free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
SMALL = {
    "name": "soak",
    "horizon_ms": 60,
    "streams": [
        {"id": "cam", "model": "mobilenetv2", "period_ms": 20, "deadline_ms": 15, "critical": True},
        {"id": "bg", "model": "resnet50", "period_ms": 30, "deadline_ms": 60},
    ],
}


async def soak(base: str, minutes: float, concurrency: int, sample_s: float, pid: int) -> int:
    """Drive traffic; print samples; return the API's RSS growth after warm-up, bytes."""
    graph = (ROOT / "models" / "resnet50.json").read_bytes()
    hdr = {"content-type": "application/json"}
    rng = random.Random(0)
    counts = {"requests": 0, "errors": 0, "5xx": 0}
    end = time.monotonic() + minutes * 60
    ids: dict[str, list[str]] = {"graph": [], "job": [], "trace": []}
    async with aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=60)) as s:

        async def call(method: str, path: str, **kw: Any) -> Any:
            async with s.request(method, path, **kw) as r:
                data = await r.read()
                counts["requests"] += 1
                counts["errors"] += not 200 <= r.status < 300
                counts["5xx"] += r.status >= 500
                return json.loads(data) if r.content_type == "application/json" and data else None

        async def client() -> None:
            while time.monotonic() < end:
                k = rng.random()
                try:
                    if k < 0.30 and ids["graph"]:
                        await call("GET", f"/v1/graphs/{rng.choice(ids['graph'])}")
                    elif k < 0.45:
                        got = await call("POST", "/v1/graphs", data=graph, headers=hdr)
                        if got and "id" in got:
                            ids["graph"].append(got["id"])
                            if len(ids["graph"]) > 50:
                                await call("DELETE", f"/v1/graphs/{ids['graph'].pop(0)}")
                    elif k < 0.65 and ids["job"]:
                        await call("GET", f"/v1/jobs/{rng.choice(ids['job'])}")
                    elif k < 0.75:
                        await call("GET", "/v1/jobs", params={"limit": 20})
                    elif k < 0.80:
                        got = await call("POST", "/v1/traces", json={"scenario": SMALL, "seed": 1})
                        if got and "id" in got:
                            ids["trace"].append(got["id"])
                    elif k < 0.84 and ids["trace"]:
                        body = {
                            "trace_id": ids["trace"][-1],
                            "hw": "edge-4x4",
                            "policies": "hasp,fcfs",
                        }
                        got = await call("POST", "/v1/replays", json=body)
                        if got and "id" in got:
                            ids["job"].append(got["id"])
                    elif k < 0.88:
                        got = await call(
                            "POST", "/v1/plans", json={"model": "resnet50", "hw": "edge-4x4"}
                        )
                        if got and "id" in got:
                            ids["job"].append(got["id"])
                    elif k < 0.90 and ids["job"]:
                        await call("DELETE", f"/v1/jobs/{rng.choice(ids['job'])}")
                    else:
                        await call("GET", "/")
                except (aiohttp.ClientError, TimeoutError):
                    counts["errors"] += 1
                await asyncio.sleep(0.01)

        async def sampler() -> int:
            proc = psutil.Process(pid)
            t0 = time.monotonic()
            warm: int | None = None
            rss = 0
            print("| t (s) | API RSS (MiB) | workers RSS (MiB) | requests | errors | 5xx |")
            print("|---|---|---|---|---|---|")
            while time.monotonic() < end:
                await asyncio.sleep(sample_s)
                rss = proc.memory_info().rss
                kids = sum(c.memory_info().rss for c in proc.children(recursive=True))
                t = time.monotonic() - t0
                if warm is None and t >= 60:
                    warm = rss
                print(
                    f"| {t:.0f} | {rss / 2**20:.1f} | {kids / 2**20:.1f} | {counts['requests']} "
                    f"| {counts['errors']} | {counts['5xx']} |",
                    flush=True,
                )
            return rss - (warm if warm is not None else rss)

        growth, *_ = await asyncio.gather(sampler(), *(client() for _ in range(concurrency)))
    assert isinstance(growth, int)
    print(
        f"requests {counts['requests']}, errors {counts['errors']} (4xx by design included), "
        f"5xx {counts['5xx']}; API RSS growth after warm-up {growth / 2**20:.1f} MiB"
    )
    return growth if counts["5xx"] == 0 else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--bound-mib", type=float, default=64.0)
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="isosched-soak-") as tmp:
        proc = start_server(Path(tmp), port)
        try:
            growth = asyncio.run(
                soak(
                    f"http://127.0.0.1:{port}",
                    args.minutes,
                    args.concurrency,
                    args.sample_s,
                    proc.pid,
                )
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if growth < 0 or growth > args.bound_mib * 2**20:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
