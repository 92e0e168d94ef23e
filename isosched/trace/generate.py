"""Turn a scenario into a trace: seeded, reproducible job releases in integer microseconds."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Any

from isosched.trace.scenario import MAX_JOBS, Scenario, ScenarioError

__all__ = [
    "MAX_SCALE",
    "TRACE_SCHEMA",
    "Job",
    "Trace",
    "check_scale",
    "expected_jobs",
    "generate_trace",
    "parse_scales",
]

TRACE_SCHEMA = "isosched.trace/v1"


@dataclass(frozen=True, slots=True)
class Job:
    """One inference job.

    Attributes
    ----------
    job, stream, model : str
        Job id (``<stream>#<n>``), its stream and model.
    release_us, deadline_us : int
        Release time and absolute deadline, microseconds.
    priority : int
        Higher is more urgent.
    critical : bool
        Whether the job is critical (counted in critical satisfaction).
    depends_on : str or None
        Job that must finish before this one may start.
    """

    job: str
    stream: str
    model: str
    release_us: int
    deadline_us: int
    priority: int
    critical: bool
    depends_on: str | None = None

    def to_doc(self) -> dict[str, Any]:
        """The trace line of this job."""
        doc: dict[str, Any] = {
            "job": self.job,
            "stream": self.stream,
            "model": self.model,
            "release_us": self.release_us,
            "deadline_us": self.deadline_us,
            "priority": self.priority,
            "critical": self.critical,
        }
        if self.depends_on is not None:
            doc["depends_on"] = self.depends_on
        return doc


@dataclass(frozen=True)
class Trace:
    """A header and the jobs, sorted by release time (upstream streams first at ties)."""

    header: dict[str, Any]
    jobs: tuple[Job, ...] = field(default_factory=tuple)


def _stream_rng(seed: int, stream: str) -> random.Random:
    # String seeds hash with SHA-512: the same on every run and platform.
    return random.Random(f"{seed}:{stream}")


#: Largest load scale: periods are divided by it (at 1e308 the job count overflowed).
MAX_SCALE = 1e6


def check_scale(scale: float) -> float:
    """``scale`` if it is a number in (0, :data:`MAX_SCALE`].

    Raises
    ------
    ScenarioError
        For zero, negative, NaN or larger scales (an infinite one would never end).
    """
    if not (isinstance(scale, int | float) and 0 < scale <= MAX_SCALE):
        raise ScenarioError(f"scale must be a number in (0, {MAX_SCALE:g}], got {scale!r}")
    return float(scale)


def parse_scales(text: str) -> list[float]:
    """Comma-separated load scales (``0.5,1,2``), each checked by :func:`check_scale`.

    Raises
    ------
    ScenarioError
        Naming the text, when a part is not a number or not a valid scale.
    """
    try:
        factors = [float(x) for x in text.split(",")]
    except ValueError:
        raise ScenarioError(f"scales must be numbers separated by commas, got {text!r}") from None
    for f in factors:
        check_scale(f)
    return factors


def expected_jobs(scenario: Scenario, scale: float = 1.0) -> int:
    """Upper bound on the jobs :func:`generate_trace` releases at ``scale`` (counted, not run).

    Raises
    ------
    ScenarioError
        As :func:`check_scale`.
    """
    check_scale(scale)
    horizon_us = round(scenario.horizon_ms * 1000)
    total = 0
    for s in scenario.streams:
        span = horizon_us - s.phase_ms * 1000
        if span > 0:
            total += math.ceil(span / (s.period_ms * 1000 / scale)) + 1
    return total


def generate_trace(
    scenario: Scenario, seed: int = 0, scale: float = 1.0, max_jobs: int = MAX_JOBS
) -> Trace:
    """Releases of every stream over the horizon.

    Parameters
    ----------
    scenario : Scenario
        The streams.
    seed : int
        Seed of jitter and of the probability draws (one generator per stream, so adding a
        stream does not change the others' releases).
    scale : float
        Load scale factor: every period is divided by it (sweeps of latency-bound throughput).
    max_jobs : int
        Largest trace allowed; the bound of :func:`expected_jobs` is checked before any job
        is made.

    Raises
    ------
    ScenarioError
        For a scale :func:`check_scale` refuses, or more than ``max_jobs`` jobs.

    Notes
    -----
    Release k of a stream is at ``phase + k · period / scale`` plus a uniform jitter in
    ``±jitter / 2`` (never before 0), kept with its probability. A stream that depends on
    another releases a job only when the other stream released one in the same period (its
    latest release at or before this one, within one period of the dependent stream) and names
    it in ``depends_on``; the simulator starts it only after that job finished.
    """
    jobs_bound = expected_jobs(scenario, scale)
    if jobs_bound > max_jobs:
        raise ScenarioError(
            f"scenario {scenario.name!r} at scale {scale:g} releases up to {jobs_bound:,} jobs; "
            f"the limit is {max_jobs:,}"
        )
    horizon_us = round(scenario.horizon_ms * 1000)
    raw: dict[str, list[tuple[int, int]]] = {}  # stream -> [(release_us, index)]
    by_id = {s.id: s for s in scenario.streams}
    order = _dependency_order(scenario)
    jobs: list[Job] = []
    for sid in order:
        s = by_id[sid]
        rng = _stream_rng(seed, s.id)
        period_us = s.period_ms * 1000 / scale
        releases: list[tuple[int, int]] = []
        k, n = 0, 0
        while True:
            nominal = s.phase_ms * 1000 + k * period_us
            if nominal >= horizon_us:
                break
            jitter = (rng.random() - 0.5) * s.jitter_ms * 1000
            keep = rng.random() < s.probability
            k += 1
            t = max(0, round(nominal + jitter))
            if not keep or t >= horizon_us:
                continue
            upstream = None
            if s.depends_on is not None:
                ups = raw[s.depends_on]
                i = bisect.bisect_right(ups, (t, 1 << 62)) - 1
                if i < 0 or t - ups[i][0] > period_us:
                    continue
                upstream = f"{s.depends_on}#{ups[i][1]}"
            releases.append((t, n))
            jobs.append(
                Job(
                    job=f"{s.id}#{n}",
                    stream=s.id,
                    model=s.model,
                    release_us=t,
                    deadline_us=t + round(s.deadline_ms * 1000),
                    priority=s.priority,
                    critical=s.critical,
                    depends_on=upstream,
                )
            )
            n += 1
        releases.sort()
        raw[s.id] = releases
    # Same instant: upstream streams first, so every depends_on names an earlier line.
    rank = {sid: i for i, sid in enumerate(order)}
    jobs.sort(key=lambda j: (j.release_us, rank[j.stream], j.job))
    header = {
        "schema": TRACE_SCHEMA,
        "scenario": scenario.name,
        "seed": seed,
        "scale": scale,
        "time_unit": "us",
        "horizon_us": horizon_us,
        "jobs": len(jobs),
        "max_relative_deadline_us": max(round(s.deadline_ms * 1000) for s in scenario.streams),
    }
    return Trace(header, tuple(jobs))


def _dependency_order(scenario: Scenario) -> list[str]:
    done: list[str] = []
    pending = list(scenario.streams)
    while pending:
        rest = []
        for s in pending:
            if s.depends_on is None or s.depends_on in done:
                done.append(s.id)
            else:
                rest.append(s)
        pending = rest
    return done
