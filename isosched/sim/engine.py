"""Discrete-event replay of a trace on the chip, in integer microseconds.

The engine owns time, the event queue, job states and tile ownership; a policy decides at every
scheduling point (a release, a finish, tiles coming free) which jobs run where. Job work is fluid:
a job on a region progresses at ``1 / latency`` of an inference per microsecond, so a preempted
job resumes elsewhere with the fraction it had left. Preemption checkpoints the job's live state
to DRAM while it still holds its tiles (kind ``checkpoint``); a resumed job restores it first
(kind ``restore``). Every span in which a job holds tiles is recorded, and no tile is ever held by
two jobs at once (the region map refuses it).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from isosched.hw.model import Hardware
from isosched.sim.regions import Region, RegionMap
from isosched.trace.generate import Job, Trace

__all__ = ["JobState", "Policy", "Run", "Simulator"]


class Policy(Protocol):
    """A scheduling policy: ``schedule`` is called at every scheduling point."""

    name: str

    def schedule(self, sim: Simulator) -> None:
        """Start, preempt or resize jobs through the simulator's methods."""


@dataclass
class JobState:
    """A job's progress and holdings."""

    job: Job
    released: bool = False
    state: str = "pending"  # pending, waiting, running, checkpointing, done, dropped
    remaining: float = 1.0
    region: Region | None = None
    latency_us: float = math.inf
    energy_pj_per_inference: float = 0.0
    progress_from_us: float = 0.0
    started_us: int | None = None
    finish_us: int | None = None
    preemptions: int = 0
    needs_restore: bool = False
    energy_pj: float = 0.0
    checkpoint_pj: float = 0.0
    intervals: list[dict[str, Any]] = field(default_factory=list)
    hold_since: int | None = None
    hold_kind: str = "run"
    version: int = 0
    tokens: float = 0.0  # for token-based policies (PREMA)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Job id."""
        return self.job.job

    def remaining_us(self, latency_us: float | None = None) -> float:
        """Time left on an allocation with ``latency_us`` per inference (default: current)."""
        return self.remaining * (self.latency_us if latency_us is None else latency_us)


@dataclass
class Run:
    """Result of one replay."""

    policy: str
    jobs: list[JobState]
    duration_s: float
    wall_ms: float
    decisions_ms: list[float]
    end_us: int
    tiles: int


class Simulator:
    """Replay ``trace`` on ``hw`` under ``policy``.

    Parameters
    ----------
    trace : Trace
        Jobs in release order.
    hw : Hardware
        The chip.
    policy : Policy
        Who runs where.
    drain_us_after : float
        Simulated time allowed after the last release plus the largest relative deadline,
        microseconds; jobs unfinished by then count as missed.
    wall_budget_s : float
        Wall-time budget of the replay; past it, the replay stops and the remaining jobs count
        as missed (``Run.end_us`` tells where it stopped).
    progress : callable, optional
        Called with a one-line message every 10 % of the trace.
    drop_late : bool
        Drop jobs that are not running when their deadline passes (they count as missed).
    """

    def __init__(
        self,
        trace: Trace,
        hw: Hardware,
        policy: Policy,
        drain_us_after: float = 1e6,
        wall_budget_s: float = 600.0,
        progress: Callable[[str], None] | None = None,
        drop_late: bool = True,
    ) -> None:
        self.trace = trace
        self.drop_late = drop_late
        self.hw = hw
        self.policy = policy
        self.now = 0
        self.regions = RegionMap(hw.width, hw.height)
        self.jobs: dict[str, JobState] = {j.job: JobState(j) for j in trace.jobs}
        self._events: list[tuple[int, int, str, str, int]] = []
        self._seq = 0
        self._waiting: dict[str, JobState] = {}  # released, holding no tiles, not done
        self.decisions_ms: list[float] = []
        max_rel = max((j.deadline_us - j.release_us for j in trace.jobs), default=0)
        last = max((j.release_us for j in trace.jobs), default=0)
        self.end_limit = int(last + max_rel + drain_us_after)
        self.wall_budget_s = wall_budget_s
        self.progress = progress
        for j in trace.jobs:
            self._push(j.release_us, "release", j.job, 0)

    # ---- event queue -------------------------------------------------------------------
    def _push(self, t: float, kind: str, job: str, version: int) -> None:
        self._seq += 1
        heapq.heappush(self._events, (math.ceil(t), self._seq, kind, job, version))

    # ---- queries for policies ----------------------------------------------------------
    def ready(self) -> list[JobState]:
        """Released jobs that may start (dependency finished) and hold no tiles."""
        out = []
        for js in self._waiting.values():
            dep = js.job.depends_on
            if dep is not None and self.jobs[dep].state != "done":
                continue
            out.append(js)
        return out

    def running(self) -> list[JobState]:
        """Jobs holding tiles and progressing (or restoring)."""
        return [js for js in self.jobs.values() if js.state == "running"]

    # ---- actions for policies ----------------------------------------------------------
    def _sync(self, js: JobState) -> None:
        """Bring a running job's remaining work up to now and charge its energy."""
        if js.state != "running":
            return
        done = max(0.0, self.now - js.progress_from_us) / js.latency_us if js.latency_us else 1.0
        done = min(done, js.remaining)
        js.remaining -= done
        js.energy_pj += done * js.energy_pj_per_inference
        js.progress_from_us = max(self.now, js.progress_from_us)

    def _close_hold(self, js: JobState, end: int) -> None:
        if js.hold_since is not None and js.region is not None and end > js.hold_since:
            js.intervals.append(
                {
                    "tiles": [list(t) for t in js.region.tiles],
                    "start_us": js.hold_since,
                    "end_us": end,
                    "kind": js.hold_kind,
                }
            )
        js.hold_since = end

    def start(
        self,
        js: JobState,
        region: Region,
        latency_us: float,
        energy_pj: float,
        restore_us: float = 0.0,
    ) -> None:
        """Run ``js`` on ``region`` at ``latency_us`` per inference (after a restore if needed)."""
        if js.state != "waiting":
            raise RuntimeError(f"{js.id} cannot start from state {js.state}")
        self.regions.take(region, js.id)
        js.region = region
        js.state = "running"
        self._waiting.pop(js.id, None)
        js.latency_us = max(latency_us, 1e-6)
        js.energy_pj_per_inference = energy_pj
        if js.started_us is None:
            js.started_us = self.now
        restore = restore_us if js.needs_restore else 0.0
        js.needs_restore = False
        js.hold_since = self.now
        js.hold_kind = "restore" if restore > 0 else "run"
        js.progress_from_us = self.now + restore
        if restore > 0:
            js.extra["restored_at"] = math.ceil(self.now + restore)
            self._push(self.now + restore, "restored", js.id, 0)
        js.version += 1
        self._push(js.progress_from_us + js.remaining_us(), "finish", js.id, js.version)

    def set_rate(self, js: JobState, latency_us: float, energy_pj: float) -> None:
        """Change a running job's speed in place (e.g. a new DRAM bandwidth share)."""
        self._sync(js)
        js.latency_us = max(latency_us, 1e-6)
        js.energy_pj_per_inference = energy_pj
        js.version += 1
        self._push(js.progress_from_us + js.remaining_us(), "finish", js.id, js.version)

    def preempt(self, js: JobState, checkpoint_us: float, checkpoint_pj: float) -> None:
        """Stop ``js``: it checkpoints for ``checkpoint_us`` holding its tiles, then waits."""
        if js.state != "running":
            raise RuntimeError(f"{js.id} cannot be preempted from state {js.state}")
        self._sync(js)
        self._close_hold(js, self.now)
        js.state = "checkpointing"
        js.hold_kind = "checkpoint"
        js.preemptions += 1
        js.needs_restore = True
        js.energy_pj += checkpoint_pj
        js.checkpoint_pj += checkpoint_pj
        js.version += 1
        self._push(self.now + checkpoint_us, "checkpointed", js.id, js.version)

    # ---- the loop ----------------------------------------------------------------------
    def _finish(self, js: JobState) -> None:
        self._sync(js)
        js.remaining = 0.0
        self._close_hold(js, self.now)
        assert js.region is not None
        self.regions.release(js.region, js.id)
        js.region = None
        js.state = "done"
        js.finish_us = self.now

    def _decide(self) -> None:
        t0 = time.perf_counter()
        if self.drop_late:
            # A job not running whose deadline has passed is dropped (it counts as missed),
            # for every policy alike: it could only delay others.
            for js in [j for j in self._waiting.values() if j.job.deadline_us <= self.now]:
                del self._waiting[js.id]
                js.state = "dropped"
        self.policy.schedule(self)
        self.decisions_ms.append((time.perf_counter() - t0) * 1e3)

    def run(self) -> Run:
        """Replay the trace to the end (or the limits) and return the per-job records."""
        t_wall = time.perf_counter()
        total = len(self.jobs)
        released = 0
        next_report = 0.1
        while self._events:
            t, _, kind, jid, version = heapq.heappop(self._events)
            if t > self.end_limit or time.perf_counter() - t_wall > self.wall_budget_s:
                break
            self.now = t
            js = self.jobs[jid]
            if kind == "release":
                js.released = True
                js.state = "waiting"
                self._waiting[js.id] = js
                released += 1
                if self.progress is not None and released / max(total, 1) >= next_report:
                    self.progress(f"{self.policy.name}: {released}/{total} jobs released")
                    next_report += 0.1
            elif kind == "finish":
                if version != js.version or js.state != "running":
                    continue
                self._finish(js)
            elif kind == "restored":
                if js.state != "running" or js.extra.get("restored_at") != t:
                    continue
                self._close_hold(js, self.now)
                js.hold_kind = "run"
                continue
            elif kind == "checkpointed":
                if version != js.version or js.state != "checkpointing":
                    continue
                self._close_hold(js, self.now)
                assert js.region is not None
                self.regions.release(js.region, js.id)
                js.region = None
                js.state = "waiting"
                self._waiting[js.id] = js
            # Several events at one instant: decide once, after the last of them.
            if self._events and self._events[0][0] == t:
                continue
            self._decide()
        end = self.now
        for js in self.jobs.values():
            if js.state in ("running", "checkpointing"):
                self._sync(js)
                self._close_hold(js, end)
            elif js.state == "waiting":
                js.state = "dropped"  # never ran to completion: a miss
        wall_ms = (time.perf_counter() - t_wall) * 1e3
        jobs = list(self.jobs.values())
        if jobs:
            first = min(j.job.release_us for j in jobs)
            last = max(j.job.release_us for j in jobs)
            span = last - first + max(j.job.deadline_us - j.job.release_us for j in jobs)
        else:
            span = 0
        return Run(
            self.policy.name, jobs, span / 1e6, wall_ms, self.decisions_ms, end, self.hw.tiles
        )
