"""Per-stream readings of a replay's per-job records (``isosched replay --jobs-out``).

The "why, from the per-job records" of docs/results.md: for every stream, how many jobs met their
deadline, were dropped or finished late, how long they waited and ran, on how many tiles, and how
often they were preempted. Works on the record format of CONTRACTS.md (replay, ``--jobs-out``),
so it reads what any run wrote, not the simulator's internals.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from isosched.errors import IsoschedError
from isosched.io.bounded_json import no_json_constant

__all__ = ["read_job_records", "stream_readings"]


def read_job_records(path: Path) -> list[dict[str, Any]]:
    """The job records of one ``<policy>.jobs.jsonl`` file.

    Raises
    ------
    IsoschedError
        If a line is not a JSON object with the fields the readings use, of their types:
        times non-negative finite numbers with release <= start <= finish (start and finish
        may be null), ``met`` a boolean, ``intervals`` a list of objects with a ``tiles`` list.
    """
    need = ("job", "stream", "release_us", "start_us", "finish_us", "met", "intervals")
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line, parse_constant=no_json_constant)
            except ValueError as exc:
                raise IsoschedError(f"{path}:{n}: not JSON ({exc})") from None
            if not isinstance(rec, dict) or any(k not in rec for k in need):
                raise IsoschedError(
                    f"{path}:{n}: not a job record (needs {', '.join(need)}; "
                    "write them with isosched replay --jobs-out)"
                )
            bad = _record_problem(rec)
            if bad:
                raise IsoschedError(f"{path}:{n}: {bad}")
            out.append(rec)
    return out


def _time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf


def _record_problem(rec: Mapping[str, Any]) -> str:
    """What is wrong with a job record's types (empty when nothing)."""
    if not isinstance(rec["job"], str) or not isinstance(rec["stream"], str):
        return "'job' and 'stream' must be strings"
    if not _time(rec["release_us"]):
        return "'release_us' must be a number >= 0"
    start, finish = rec["start_us"], rec["finish_us"]
    if start is not None and not (_time(start) and start >= rec["release_us"]):
        return "'start_us' must be null or a number >= release_us"
    if finish is not None and not (start is not None and _time(finish) and finish >= start):
        return "'finish_us' must be null or a number >= start_us"
    if not isinstance(rec["met"], bool):
        return "'met' must be true or false"
    ivs = rec["intervals"]
    if not isinstance(ivs, list) or not all(
        isinstance(iv, dict) and isinstance(iv.get("tiles"), list) for iv in ivs
    ):
        return "'intervals' must be a list of objects with a 'tiles' list"
    energy = rec.get("energy_uj")
    if energy is not None and not _time(energy):
        return "'energy_uj' must be null or a number >= 0"
    pre = rec.get("preemptions", 0)
    if not isinstance(pre, int) or isinstance(pre, bool) or pre < 0:
        return "'preemptions' must be an integer >= 0"
    return ""


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (the ⌈q·n⌉-th smallest), ``None`` when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def _run_tiles(rec: Mapping[str, Any]) -> int | None:
    """Tiles of the job's first ``run`` interval (its first placement), ``None`` if it never ran."""
    for iv in rec["intervals"]:
        if iv.get("kind", "run") == "run":
            return len(iv["tiles"])
    return None


def stream_readings(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-stream figures of one policy's job records, streams sorted by name.

    Per stream: ``jobs``, ``met``, ``dropped`` (never started), ``late`` (started, then finished
    after its deadline or not at all), ``wait_p50_ms`` (release to first start, started jobs),
    ``run_p50_ms`` and ``run_p90_ms`` (first start to finish, finished jobs: waits after a
    preemption included), ``tiles`` (jobs by the tile count of their first placement),
    ``preempted`` (jobs preempted at least once) and ``energy_per_finished_mj`` (``None``
    when the records carry no energy or none finished).
    """
    by: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        by[str(rec["stream"])].append(rec)
    out: dict[str, dict[str, Any]] = {}
    for stream in sorted(by):
        recs = by[stream]
        started = [r for r in recs if r["start_us"] is not None]
        finished = [r for r in started if r["finish_us"] is not None]
        tiles = Counter(t for r in started if (t := _run_tiles(r)) is not None)
        energy = [r["energy_uj"] for r in finished if r.get("energy_uj") is not None]
        out[stream] = {
            "jobs": len(recs),
            "met": sum(bool(r["met"]) for r in recs),
            "dropped": len(recs) - len(started),
            "late": sum(not r["met"] for r in started),
            "wait_p50_ms": _ms(_quantile([r["start_us"] - r["release_us"] for r in started], 0.5)),
            "run_p50_ms": _ms(_quantile([r["finish_us"] - r["start_us"] for r in finished], 0.5)),
            "run_p90_ms": _ms(_quantile([r["finish_us"] - r["start_us"] for r in finished], 0.9)),
            "tiles": {str(k): v for k, v in sorted(tiles.items())},
            "preempted": sum(int(r.get("preemptions", 0)) > 0 for r in recs),
            "energy_per_finished_mj": (
                sum(energy) / len(energy) / 1e3 if energy and len(energy) == len(finished) else None
            ),
        }
    return out


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1e3
