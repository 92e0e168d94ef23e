"""Discrete-event replay of a trace on the chip, in integer microseconds (DESIGN §6).

The engine owns time, the event queue, job states and per-tile occupancy; a policy decides at
every scheduling point (a release, a finish, tiles coming free) which jobs run on which tiles.
A job holds an arbitrary set of tiles. Work is fluid: a job progresses at ``1 / latency`` of an
inference per microsecond on its placement.

Preemption is physical. The victim stops at its next data-tile boundary (the drain), writes its
live state to DRAM while still holding its tiles (kind ``checkpoint``), then lets them go. On
resume it reads that state back (``restore``) and reloads its current segment's weights
(``reload``) on whatever tiles it was placed on, then runs. Moving state and weights uses the
job's own share of DRAM bandwidth, so the chip's bandwidth is never exceeded. Tiles a preempting
job needs are reserved for it while their owners checkpoint, and pass to it when freed.

Scheduling decisions are charged in simulated time from the work they counted (stored
placements tested, matcher nodes, CP-SAT deterministic time) with the per-unit costs of the
hardware file's ``scheduler`` section: a job placed by a decision starts that much later. Host
wall time is measured and reported beside it, never fed back.

Every span in which a job holds tiles is recorded; no tile is ever held by two jobs at once (the
occupancy map refuses it).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from isosched.hw.model import Hardware
from isosched.sim.jobplan import JobPlan, PlacedTiming
from isosched.sim.occupancy import Occupancy
from isosched.sim.planbook import PlanBook
from isosched.trace.generate import Job, Trace

__all__ = ["Decision", "JobState", "Policy", "Run", "Simulator"]


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
    tiles: tuple[int, ...] = ()
    plan: JobPlan | None = None
    timing: PlacedTiming | None = None
    dram_share: float = 1.0
    dram_weight: float = 1.0
    pieces: tuple[tuple[float, float], ...] = ()
    demand: float = 0.0
    piece: int = 0
    piece_left: float = 1.0
    latency_us: float = math.inf
    energy_pj_per_inference: float = 0.0
    progress_from_us: float = 0.0
    started_us: int | None = None
    finish_us: int | None = None
    preemptions: int = 0
    restarts: int = 0
    resume_state_bytes: int = 0
    resume_weight_bytes: int = 0
    energy_pj: float = 0.0
    checkpoint_pj: float = 0.0
    intervals: list[dict[str, Any]] = field(default_factory=list)
    phases: list[tuple[float, str]] = field(default_factory=list)
    hold_since: int | None = None
    hold_kind: str = "run"
    version: int = 0
    reservation: dict[str, Any] | None = None
    pos: float = 0.0  # µs done along the pieces' full-bandwidth timeline
    rate: float = 1.0  # progress along it per µs (the DRAM share's effect)
    demand_used: float = 0.0  # weighted demand counted in the last bandwidth split
    vc: bool = False  # progresses on the shared clock (weight 1, in a piece moving DRAM data)
    off: float = 0.0  # on the shared clock: pos = clock - off
    tokens: float = 0.0  # for token-based policies (PREMA)
    extra: dict[str, Any] = field(default_factory=dict)
    #: What the scheduler did to the job and why: ``(t_us, kind, why)`` with ``kind`` one of
    #: ``start``, ``resume``, ``preempt``, ``kill``, ``finish``, ``drop``.
    events: list[tuple[int, str, str]] = field(default_factory=list)
    #: Job id (``job.job``; a plain attribute: read on every hot path).
    id: str = field(init=False, repr=False, compare=False)
    #: Position of the job's id among the trace's ids sorted (a stable tie-break; -1 unset).
    rank: int = field(default=-1, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.id = self.job.job

    def remaining_us(self, latency_us: float | None = None) -> float:
        """Time left on an allocation with ``latency_us`` per inference (default: current)."""
        return self.remaining * (self.latency_us if latency_us is None else latency_us)

    def current_segment(self) -> int:
        """Index of the TSS segment the job is in (0 for LTS jobs).

        Read from the piece it is in (a weight load counts as the segment it loads), so
        ``piece`` and ``remaining`` must be current (``Simulator.sync``).
        """
        t = self.timing
        if t is None:
            return 0
        if self.pieces and self.pieces is t.pieces:
            return t.segment_of_piece(self.piece)
        return t.segment_at(1.0 - self.remaining)


@dataclass(frozen=True, slots=True)
class Decision:
    """One scheduling point at which a policy looked for tiles.

    Attributes
    ----------
    at_us : int
        When.
    charged_us : float
        Simulated time charged for the work counted.
    wall_ms : float
        Host time the policy took (reported only).
    """

    at_us: int
    charged_us: float
    wall_ms: float

    def __reduce__(self) -> tuple[type[Decision], tuple[int, float, float]]:
        # pickle and copy rebuild it from its fields: a compiled (mypyc) frozen class cannot be
        # rebuilt attribute by attribute, so a Run could not be unpickled or copied
        return (Decision, (self.at_us, self.charged_us, self.wall_ms))


@dataclass
class Run:
    """Result of one replay."""

    policy: str
    jobs: list[JobState]
    duration_s: float
    wall_ms: float
    decisions: list[Decision]
    end_us: int
    tiles: int
    counters: dict[str, int] = field(default_factory=dict)
    budget_exhausted: bool = False

    @property
    def decisions_ms(self) -> list[float]:
        """Host time of each decision, ms."""
        return [d.wall_ms for d in self.decisions]


#: Positions within this many µs of a piece's end count as past it (float rounding).
_EPS = 1e-7
#: A drain's credit stops this far short of a job's end, µs: the job still has work to resume.
_CREDIT_GAP_US = 1e-3


@dataclass(frozen=True, slots=True)
class _Pieces:
    """A job's pieces, timed with all of the DRAM bandwidth.

    ``times[i]`` µs per piece, ``cum[i]`` the start of piece ``i`` (``cum[n]`` = ``total``),
    ``dem[i]`` the share of the bandwidth piece ``i`` uses alone, ``free[i]`` the time of the
    pieces before ``i`` that move no DRAM data.
    """

    times: list[float]
    cum: list[float]
    dem: list[float]
    free: list[float]
    total: float
    moved_us: float  # moving all of its DRAM bytes with all of the bandwidth

    @classmethod
    def of(cls, pieces: tuple[tuple[float, float], ...], bw: float, div: float) -> _Pieces:
        """Time ``pieces`` at ``bw`` bytes per cycle, ``div`` cycles per µs."""
        times, cum, dem, free = [], [0.0], [], [0.0]
        for c, b in pieces:
            moved = b / bw
            t = max(c, moved)
            d = moved / t if t > 0 else 0.0
            times.append(t / div)
            dem.append(d)
            cum.append(cum[-1] + times[-1])
            free.append(free[-1] + (times[-1] if d <= 0.0 else 0.0))
        moved_us = sum(b for _, b in pieces) / bw / div
        return cls(times, cum, dem, free, max(cum[-1], 1e-12), moved_us)


#: Tests only (read when a Simulator is made, so they can be set on a compiled engine):
#: check every incremental re-split of the bandwidth against a full one; allow incremental
#: re-splits at all; call ``AFTER_SPLIT(sim, incremental)`` after every re-split.
CHECK_SPLIT = False
INCREMENTAL_SPLITS = True
AFTER_SPLIT: Callable[[Simulator, bool], None] | None = None

#: Counters every run reports (DESIGN §7; CONTRACTS: replay v2).
COUNTERS = ("placements", "library_hits", "online_matches", "placement_failures", "preempted_tiles")


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
    plans : PlanBook
        Plans and profiles of every model the trace names.
    drain_us_after : float
        Simulated time allowed after the last release plus the largest relative deadline,
        microseconds; jobs unfinished by then count as missed.
    wall_budget_s : float
        Wall-time budget of the replay; past it, the replay stops, the remaining jobs count as
        missed and the run says so (``Run.budget_exhausted``).
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
        plans: PlanBook,
        drain_us_after: float = 1e6,
        wall_budget_s: float = 600.0,
        progress: Callable[[str], None] | None = None,
        drop_late: bool = True,
    ) -> None:
        self.trace = trace
        self.drop_late = drop_late
        self._check_split = CHECK_SPLIT
        self._incremental_ok = INCREMENTAL_SPLITS
        self._after_split = AFTER_SPLIT
        self.hw = hw
        self.plans = plans
        self.policy = policy
        self.now = 0
        self.occupancy = Occupancy(hw.width, hw.height)
        self.jobs: dict[str, JobState] = {j.job: JobState(j) for j in trace.jobs}
        for i, jid in enumerate(sorted(self.jobs)):
            self.jobs[jid].rank = i
        self._events: list[tuple[int, int, str, str, int]] = []
        self._seq = 0
        self._waiting: dict[str, JobState] = {}  # released, holding no tiles, not done
        self._holding: dict[str, JobState] = {}  # holding tiles
        self.decisions: list[Decision] = []
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._charged_us = 0.0
        self._worked = False
        self._killed_tiles: dict[int, str] = {}  # tiles freed by kills in this decision
        self.wall_limited = False
        self._tables: dict[int, _Pieces] = {}
        self._bw = hw.dram_bytes_per_cycle
        self._us_per_cycle = hw.clock_ghz * 1e3  # cycles / this = µs (Hardware.cycles_to_us)
        self._mut = 0  # bumped by every change of a job's DRAM demand (a cache key)
        self._total_demand = 0.0  # as of the last re-split
        # The last re-split's holding jobs, their demands and positions, valid while nobody
        # takes or lets go of tiles (``_hold_ver``); ``_dirty``: jobs whose piece changed or
        # that had a piece event since (their demand may differ). See _rebalance.
        self._split: tuple[list[JobState], list[float], dict[str, int]] | None = None
        self._split_ver = -1
        self._hold_ver = 0
        self._dirty: list[JobState] = []
        self._others: tuple[tuple[int, int], float] = ((-1, -1), 0.0)
        # The shared clock: every job of weight 1 in a piece that moves DRAM data progresses at
        # the same rate min(1, 1 / total demand), so they are timed together: position
        # ``_vc_v`` at ``_vc_t``, rate ``_vc_r``; a heap of (clock value, seq, job, version) of
        # the ends of their current pieces, and one queued "vclock" event for the earliest.
        self._vc_v = 0.0
        self._vc_t = 0.0
        self._vc_r = 1.0
        self._vc_heap: list[tuple[float, int, str, int]] = []
        self._vc_version = 0
        self._vc_armed = math.inf
        self._estimate_cache: dict[tuple[int, float], float] = {}
        self._rate_keep: list[tuple[tuple[float, float], ...]] = []
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
        heapq.heappush(self._events, (math.ceil(t - 1e-9), self._seq, kind, job, version))

    # ---- queries for policies ----------------------------------------------------------
    def ready(self) -> list[JobState]:
        """Released jobs that may start (dependency finished), hold no tiles, reserve none."""
        out = []
        for js in self._waiting.values():
            if js.reservation is not None:
                continue
            dep = js.job.depends_on
            if dep is not None and self.jobs[dep].state != "done":
                continue
            out.append(js)
        return out

    def running(self) -> list[JobState]:
        """Jobs holding tiles and progressing (or restoring), in the order they started."""
        return [js for js in self._holding.values() if js.state == "running"]

    def holding(self) -> list[JobState]:
        """Jobs holding tiles: running, restoring or checkpointing."""
        return list(self._holding.values())

    def finish_estimate_us(self, js: JobState) -> float:
        """When a running or checkpointing job lets its tiles go, if nothing changes."""
        if js.state == "checkpointing":
            return float(js.extra.get("checkpoint_end_us", self.now))
        return max(js.progress_from_us, self.now) + self._time_left_us(js)

    def dram_us(self, nbytes: float, share: float) -> float:
        """Time to move ``nbytes`` through a ``share`` of the DRAM bandwidth, µs."""
        if nbytes <= 0:
            return 0.0
        return self.cycles_to_us(nbytes / (self._bw * max(share, 1e-9)))

    @property
    def dram_bytes_per_cycle(self) -> float:
        """``hw.dram_bytes_per_cycle``, read once (the policies' hot paths ask it often)."""
        return self._bw

    def cycles_to_us(self, cycles: float) -> float:
        """``hw.cycles_to_us``, the same division, without the call into the model, µs."""
        return cycles / self._us_per_cycle

    def wake_at(self, t_us: float) -> None:
        """Make ``t_us`` a scheduling point (a policy's timer)."""
        self._push(max(t_us, self.now), "wake", "", 0)

    # ---- decision cost -----------------------------------------------------------------
    def charge(self, lookups: int = 0, nodes: int = 0, dtime: float = 0.0) -> float:
        """Charge the current decision for counted work; returns its total so far, µs."""
        s = self.hw.scheduler
        us = (lookups * s.lookup_ns + nodes * s.match_node_ns + dtime * s.cpsat_ns_per_dtime) / 1e3
        if not self._worked:
            us += s.decision_ns / 1e3
            self._worked = True
        self._charged_us += us
        return self._charged_us

    def charge_lookups(self, counts: Iterable[int]) -> float:
        """``charge(lookups=k)`` for every ``k`` of ``counts`` in turn (the same sum, faster).

        Returns the decision's total so far, µs.
        """
        s = self.hw.scheduler
        ns = s.lookup_ns
        zero = 0 * s.match_node_ns + 0.0 * s.cpsat_ns_per_dtime  # as charge() adds them
        total = self._charged_us
        for k in counts:
            us = (k * ns + zero) / 1e3
            if not self._worked:
                us += s.decision_ns / 1e3
                self._worked = True
            total += us
        self._charged_us = total
        return total

    def count(self, name: str, n: int = 1) -> None:
        """Add to one of the run's counters (``placements``, ``library_hits``, ...)."""
        self.counters[name] = self.counters.get(name, 0) + n

    # ---- actions for policies ----------------------------------------------------------
    def sync(self, js: JobState) -> None:
        """Bring a running job's ``remaining`` up to now (policies read it between events)."""
        self._sync(js)

    def _sync(self, js: JobState) -> None:
        """Bring a running job's remaining work up to now and charge its energy."""
        if js.state != "running":
            return
        if js.vc:
            pos = self._clock() - js.off
            if pos > js.pos:
                self._move_to(js, pos)
        elif js.pieces:
            dt = self.now - js.progress_from_us
            if dt > 0:
                self._move_to(js, js.pos + dt * js.rate)
        else:
            done = max(0.0, self.now - js.progress_from_us) / js.latency_us
            done = min(done, js.remaining)
            js.remaining -= done
            js.energy_pj += done * js.energy_pj_per_inference
        js.progress_from_us = max(self.now, js.progress_from_us)

    # ---- progress through pieces (jobs sharing DRAM bandwidth) ------------------------------
    #
    # A job's pieces are ``(cycles, DRAM bytes)`` steps; alone with all of the bandwidth, piece
    # ``i`` takes ``t_i = max(cycles, bytes / bandwidth)``. Bandwidth is split in proportion to
    # demand (``d_i = w_i · (bytes / bandwidth) / t_i``, weight ``w_i``), so with total demand
    # ``D`` a piece with DRAM traffic takes ``max(cycles, bytes / (bandwidth · d_i / D))`` =
    # ``t_i · max(1, D / w_i)``: the job moves through its full-bandwidth timeline at the rate
    # ``min(1, w_i / D)`` (1 in a piece without DRAM traffic). A job is therefore kept as a
    # position on that timeline (µs at full bandwidth) and a rate; when ``D`` changes only the
    # jobs whose rate changes are re-timed, and each job has one pending event: the end of its
    # current piece.
    def _table(self, pieces: tuple[tuple[float, float], ...]) -> _Pieces:
        """Per-piece times, demands and cumulative sums of ``pieces`` (cached)."""
        key = id(pieces)
        got = self._tables.get(key)
        if got is None:
            got = self._tables[key] = _Pieces.of(pieces, self._bw, self._us_per_cycle)
            self._rate_keep.append(pieces)  # keeps id(pieces) unique while cached
        return got

    def _locate(self, js: JobState, tb: _Pieces) -> None:
        """Set ``piece``, ``piece_left`` and ``remaining`` from the job's position."""
        n = len(tb.times)
        pos = js.pos
        i = js.piece if js.piece < n else n
        if i < n and pos < tb.cum[i]:
            i = 0  # moved back (a new plan): search from the start
        cum = tb.cum
        while i < n and pos >= cum[i + 1] - _EPS:
            i += 1
        if i != js.piece:
            self._mut += 1
            self._dirty.append(js)
        js.piece = i
        if i >= n:
            js.piece_left = 1.0
        else:
            t = tb.times[i]
            js.piece_left = min(1.0, max(0.0, (cum[i + 1] - pos) / t)) if t > 0 else 0.0
        js.remaining = max(0.0, (tb.total - pos) / tb.total)

    def _set_progress(self, js: JobState, remaining: float) -> None:
        """Place a job's progress (``remaining`` of the inference) on its pieces."""
        tb = self._table(js.pieces)
        js.pos = (1.0 - remaining) * tb.total
        js.piece = 0
        self._locate(js, tb)
        js.remaining = remaining

    def _move_to(self, js: JobState, pos: float) -> None:
        """Move the job to ``pos`` on its timeline and charge the energy of the work done."""
        tb = self._table(js.pieces)
        before = js.remaining
        js.pos = min(tb.total, pos)
        self._locate(js, tb)
        js.energy_pj += max(0.0, before - js.remaining) * js.energy_pj_per_inference

    def _clock(self) -> float:
        """The shared clock's value now."""
        return self._vc_v + self._vc_r * (self.now - self._vc_t)

    def _rate_now(self, js: JobState) -> float:
        """The job's progress rate now (the shared clock's, if it runs on it)."""
        return self._vc_r if js.vc else js.rate

    def _rate_of(self, js: JobState, total_demand: float) -> float:
        """Progress rate on the full-bandwidth timeline of the job's current piece."""
        tb = self._table(js.pieces)
        if js.piece >= len(tb.times) or tb.dem[js.piece] <= 0.0 or total_demand <= 0.0:
            return 1.0
        return min(1.0, js.dram_weight / total_demand)

    def _time_left_us(self, js: JobState) -> float:
        """Time to finish at the job's current rate, µs."""
        if not js.pieces:
            return js.remaining_us()
        tb = self._table(js.pieces)
        i = js.piece
        if i >= len(tb.times):
            return 0.0
        left = tb.total - js.pos
        # Pieces without DRAM traffic run at full speed whatever the share.
        free = tb.free[-1] - tb.free[i + 1]
        if tb.dem[i] <= 0.0:
            free += max(0.0, tb.cum[i + 1] - js.pos)
        rate = max(self._rate_now(js), 1e-12)
        return max(0.0, left - free) / rate + free

    def _piece_demand(self, js: JobState) -> float:
        """Share of the bandwidth the job's current piece would use alone."""
        if not js.pieces:
            return 0.0
        tb = self._table(js.pieces)
        return tb.dem[js.piece] if js.piece < len(tb.dem) else 0.0

    def _schedule(self, js: JobState) -> None:
        """Push the job's next event: the end of its current piece, or its finish."""
        js.version += 1
        self._mut += 1
        js.vc = False
        if js.pieces:
            tb = self._table(js.pieces)
            n = len(tb.times)
            if js.piece >= n:
                self._push(js.progress_from_us, "finish", js.id, js.version)
            elif js.preemptions and js.progress_from_us > self.now:
                # Moving state or weights back in: its demand changes when that ends.
                self._push(js.progress_from_us, "piece", js.id, js.version)
            elif js.progress_from_us > self.now:
                # A decision's charged time before it starts: time it from then.
                self._push(js.progress_from_us, "piece", js.id, js.version)
            elif js.dram_weight == 1.0 and tb.dem[js.piece] > 0.0:
                js.vc = True
                js.off = self._clock() - js.pos
                end_v = js.off + tb.cum[js.piece + 1]
                self._seq += 1
                heapq.heappush(self._vc_heap, (end_v, self._seq, js.id, js.version))
                if end_v < self._vc_armed:
                    self._vc_arm()
            else:
                rate = 1.0 if tb.dem[js.piece] <= 0.0 else max(js.rate, 1e-12)
                end = js.progress_from_us + max(tb.cum[js.piece + 1] - js.pos, 0.0) / rate
                last = js.piece == n - 1
                self._push(end, "finish" if last else "piece", js.id, js.version)
            js.latency_us = self._inference_us(tb, self._rate_now(js))
        else:
            self._push(js.progress_from_us + js.remaining_us(), "finish", js.id, js.version)

    def _vc_valid(self, entry: tuple[float, int, str, int]) -> bool:
        js = self.jobs[entry[2]]
        return js.vc and js.version == entry[3] and js.state == "running"

    def _vc_arm(self) -> None:
        """Queue a "vclock" event for the earliest piece end on the shared clock."""
        heap = self._vc_heap
        while heap and not self._vc_valid(heap[0]):
            heapq.heappop(heap)
        self._vc_version += 1
        if not heap:
            self._vc_armed = math.inf
            return
        end_v = heap[0][0]
        self._vc_armed = end_v
        t = self._vc_t + max(end_v - self._vc_v, 0.0) / self._vc_r
        self._push(max(t, float(self.now)), "vclock", "", self._vc_version)

    def _vc_fire(self) -> None:
        """Turn the piece ends reached on the shared clock into the jobs' own events, now."""
        clock = self._clock()
        heap = self._vc_heap
        while heap:
            end_v, _, jid, version = heap[0]
            if not self._vc_valid(heap[0]):
                heapq.heappop(heap)
                continue
            t = self._vc_t + max(end_v - self._vc_v, 0.0) / self._vc_r
            if end_v > clock + _EPS and math.ceil(t - 1e-9) > self.now:
                break
            heapq.heappop(heap)
            js = self.jobs[jid]
            last = js.piece >= len(js.pieces) - 1
            self._push(self.now, "finish" if last else "piece", jid, version)
        self._vc_arm()

    def _vc_set_rate(self, rate: float) -> None:
        """Change the shared clock's rate from now on."""
        self._vc_v += self._vc_r * (self.now - self._vc_t)
        self._vc_t = float(self.now)
        self._vc_r = rate
        self._vc_arm()

    @staticmethod
    def _inference_us(tb: _Pieces, rate: float) -> float:
        """A whole inference at ``rate`` (what ``latency_us`` reports), µs."""
        free = tb.free[-1]
        return max((tb.total - free) / max(rate, 1e-12) + free, 1e-6)

    def _coords(self, tiles: Sequence[int]) -> list[list[int]]:
        w = self.hw.width
        return [[t % w, t // w] for t in tiles]

    def _close_hold(self, js: JobState, end: int) -> None:
        # Phases that ended before ``end`` become intervals of their own kind.
        while js.phases and js.hold_since is not None and js.phases[0][0] <= end:
            until, kind = js.phases.pop(0)
            t = math.ceil(until - 1e-9)
            if t > js.hold_since:
                js.intervals.append(
                    {
                        "tiles": self._coords(js.tiles),
                        "start_us": js.hold_since,
                        "end_us": t,
                        "kind": js.hold_kind,
                    }
                )
                js.hold_since = t
            js.hold_kind = kind
        if js.hold_since is not None and js.tiles and end > js.hold_since:
            js.intervals.append(
                {
                    "tiles": self._coords(js.tiles),
                    "start_us": js.hold_since,
                    "end_us": end,
                    "kind": js.hold_kind,
                }
            )
        js.hold_since = end

    def start(
        self,
        js: JobState,
        tiles: Sequence[int],
        latency_us: float,
        energy_pj: float,
        *,
        plan: JobPlan | None = None,
        timing: PlacedTiming | None = None,
        dram_share: float | None = None,
        pieces: tuple[tuple[float, float], ...] | None = None,
    ) -> None:
        """Run ``js`` on ``tiles`` at ``latency_us`` per inference.

        With ``pieces`` (``(cycles, DRAM bytes)`` steps, from its plan's timing or its LTS
        profile) the job shares DRAM bandwidth with the other running jobs and is re-timed at
        every scheduling point for the share it gets; ``latency_us`` is then only its time with
        all of the bandwidth. Without them it runs at ``latency_us`` whatever the others do.

        A job resumed after a preemption first restores its live state and reloads its current
        segment's weights (if its plan is the same); resumed under a different plan it restarts
        its current segment. Either way it starts after the time charged for this decision.
        """
        if js.state != "waiting":
            raise RuntimeError(f"{js.id} cannot start from state {js.state}")
        victims = self._victims_of(js, tiles)
        self._mut += 1
        self.occupancy.take(tiles, js.id)
        self._holding[js.id] = js
        self._hold_ver += 1
        if pieces is None and timing is not None:
            pieces = timing.pieces
        restarted = False
        changed = js.plan is not None and plan is not None and plan.budget != js.plan.budget
        if js.preemptions and js.remaining < 1.0 and changed:
            assert plan is not None
            self._restart_segment(js, plan, timing)
            restarted = True
        js.pieces = pieces or ()
        if js.pieces:
            self._set_progress(js, js.remaining)
            js.demand = self._piece_demand(js)
            share = self._share_if_started(js)
            js.rate = self._rate_of(js, self._demand_now() + js.dram_weight * js.demand)
        else:
            share = len(tiles) / self.hw.tiles if dram_share is None else dram_share
        restore_us = reload_us = 0.0
        moving = js.resume_state_bytes or js.resume_weight_bytes
        if js.preemptions and js.remaining < 1.0 and not restarted and moving:
            # Moving state and weights back in, it demands all of the bandwidth it can get (its
            # weight), as a checkpoint does (preempt) and as _demand_of counts it meanwhile;
            # not the share of the piece it resumes in.
            move = share
            if js.pieces:
                move = js.dram_weight / (self._demand_now() + js.dram_weight)
            restore_us = self.dram_us(js.resume_state_bytes, move)
            if js.resume_state_bytes > 0:  # then the pipeline restarts on the restored state
                restore_us += self.cycles_to_us(self.hw.preemption.restore_cycles)
            reload_us = self.dram_us(js.resume_weight_bytes, move)
            e_dram = self.hw.energy.dram_pj_per_bit * 8
            extra = (js.resume_state_bytes + js.resume_weight_bytes) * e_dram
            js.energy_pj += extra
            js.checkpoint_pj += extra
        js.resume_state_bytes = js.resume_weight_bytes = 0
        js.tiles = tuple(tiles)
        js.plan, js.timing, js.dram_share = plan, timing, share
        js.state = "running"
        js.reservation = None
        self._waiting.pop(js.id, None)
        js.latency_us = max(latency_us, 1e-6)
        js.energy_pj_per_inference = energy_pj
        delay = self._charged_us
        if js.started_us is None:
            js.started_us = self.now
        js.hold_since = self.now
        js.phases = []
        t = float(self.now)
        first = "run"
        if restore_us > 0 or reload_us > 0:
            first = "restore" if restore_us > 0 else "reload"
            t += delay + restore_us
            if restore_us > 0 and reload_us > 0:
                js.phases.append((t, "reload"))
            t += reload_us
            js.phases.append((t, "run"))
        else:
            t += delay
        js.hold_kind = first
        js.progress_from_us = t
        js.dram_share = share
        self._schedule(js)
        self._note_start(js, len(tiles), victims, restarted, restore_us + reload_us, delay)

    def _pending_why(self, victim: JobState, what: str) -> str:
        """Why ``victim`` stops, before the job taking its tiles is known: the most urgent wait."""
        ready = [j for j in self.ready() if j.id != victim.id]
        if not ready:
            return f"{what} by {self.policy.name} with no job waiting (repartition)"
        top = min(
            ready, key=lambda j: (not j.job.critical, -j.job.priority, j.job.deadline_us, j.id)
        )
        crit = "critical, " if top.job.critical else ""
        return (
            f"{what} by {self.policy.name} while {top.id} waits ({crit}priority "
            f"{top.job.priority}, {(top.job.deadline_us - self.now) / 1e3:.3f} ms to its deadline)"
        )

    def _victims_of(self, js: JobState, tiles: Sequence[int]) -> list[str]:
        """Jobs whose tiles ``js`` takes: preempted (reserved) or killed in this decision."""
        out: list[str] = []
        for t in tiles:
            v = self._killed_tiles.get(t)
            if v is not None and v not in out:
                out.append(v)
        if js.reservation is not None:
            for v in js.reservation.get("victims", ()):
                if v not in out:
                    out.append(v)
        return out

    def _note_start(
        self,
        js: JobState,
        n_tiles: int,
        victims: list[str],
        restarted: bool,
        moving_us: float,
        charged_us: float,
    ) -> None:
        """Record why ``js`` started now (its scheduler event)."""
        resumed = js.preemptions > 0
        waited_ms = (self.now - js.job.release_us) / 1e3
        where = f"{n_tiles} tiles"
        if js.plan is not None:
            where += f" (plan for {js.plan.budget} tiles)"
        if victims:
            where += " taken from preempted " + ", ".join(victims)
        else:
            where += " that were free"
        if not resumed:
            why = f"{self.policy.name} placed it on {where} after {waited_ms:.3f} ms waiting"
        elif js.remaining >= 1.0:
            why = f"started again from its first layer on {where} (its progress was lost)"
        elif restarted:
            why = f"resumed on {where} under another plan: restarts its current segment"
        else:
            why = f"resumed on {where}: restores its state and weights ({moving_us / 1e3:.3f} ms)"
        if charged_us > 0:
            why += f"; decision charged {charged_us:.1f} us"
        js.events.append((self.now, "resume" if resumed else "start", why))
        for v in victims:  # a kill's victim learns now whom its tiles went to
            vs = self.jobs[v]
            if vs.events and vs.events[-1][1] in ("preempt", "kill"):
                t, kind, why = vs.events[-1]
                if t == self.now and f" for {js.id} " not in why:
                    vs.events[-1] = (t, kind, self._preempt_why(vs, js))

    def _preempt_why(self, victim: JobState, by: JobState) -> str:
        crit = "critical, " if by.job.critical else ""
        slack_ms = (by.job.deadline_us - self.now) / 1e3
        what = "killed (progress lost)" if victim.events[-1][1] == "kill" else "checkpointed"
        a, b = by.job.priority, victim.job.priority
        rel = ">" if a > b else "=" if a == b else "<"  # not every policy preempts by priority
        return (
            f"{what} for {by.id} ({crit}priority {a} {rel} {b}, "
            f"{slack_ms:.3f} ms to its deadline), which needed its tiles"
        )

    def _restart_segment(self, js: JobState, plan: JobPlan, timing: PlacedTiming | None) -> None:
        """Map a job's progress onto a new plan: it restarts the segment it was in."""
        assert js.plan is not None and js.timing is not None
        seg = js.current_segment()
        layers_done = js.plan.segments[seg - 1].layers if seg > 0 else 0
        new = timing or plan.base_timing
        j = 0
        for i, s in enumerate(plan.segments):
            if s.layers <= layers_done:
                j = i + 1
        j = min(j, len(plan.segments) - 1)
        js.remaining = 1.0 - new.segment_start(j)
        js.restarts += 1

    # ---- DRAM bandwidth, shared by the running jobs -----------------------------------------
    def set_dram_weight(self, js: JobState, weight: float) -> None:
        """Weight of ``js`` in the DRAM bandwidth split (default 1; MoCA throttles with it)."""
        weight = max(weight, 1e-6)
        if weight == js.dram_weight:
            return
        self._mut += 1
        if js.vc:
            self._sync(js)  # leaves the shared clock: timed on its own from now
            js.dram_weight = weight
            js.rate = self._rate_of(js, self._total_demand)
            self._schedule(js)
        js.dram_weight = weight

    def estimate_us(self, pieces: tuple[tuple[float, float], ...]) -> float:
        """Time of a whole inference of ``pieces`` if it started now, µs.

        Priced at the DRAM share it would get beside the jobs using DRAM now (its average
        demand against theirs), held for the whole inference: what a policy can predict.
        """
        if not pieces:
            return 0.0
        tb = self._table(pieces)
        bw = self._bw
        u = min(1.0, tb.moved_us / tb.total)
        others = self._demand_now()
        share = u / (u + others) if u > 0 else 1.0
        q = max(1, round(share * 256)) / 256  # a coarse grid: a cache key
        key = (id(pieces), q)
        got = self._estimate_cache.get(key)
        if got is None:
            cycles = sum(max(c, b / (bw * q)) for c, b in pieces)
            got = self._estimate_cache[key] = self.cycles_to_us(cycles)
        return got

    def _demand_of(self, js: JobState) -> float:
        """The job's weighted demand for DRAM bandwidth now (0 when it uses none)."""
        state = js.state
        if state == "running":
            pieces = js.pieces
            if not pieces:
                return 0.0
            if js.preemptions and js.progress_from_us > self.now:
                return js.dram_weight  # moving state or weights back in: all it can
            dem = (self._tables.get(id(pieces)) or self._table(pieces)).dem  # the hot path
            i = js.piece
            return js.dram_weight * dem[i] if i < len(dem) else 0.0
        if state == "checkpointing":
            return js.dram_weight  # moving state: all it can
        return 0.0

    def state_key(self) -> tuple[int, int]:
        """Changes whenever anything a policy's estimate depends on may have changed.

        ``(now, n)`` with ``n`` counting changes of jobs' progress or DRAM demand: a policy may
        cache estimates (:meth:`estimate_us`, deadlines) under it for one scheduling point.
        """
        return (self.now, self._mut)

    def _demand_now(self) -> float:
        """Total weighted demand of the jobs holding tiles now (cached until one changes)."""
        key = (self.now, self._mut)
        if self._others[0] != key:
            self._others = (key, sum(self._demand_of(js) for js in self._holding.values()))
        return self._others[1]

    def _share_if_started(self, js: JobState) -> float:
        total = self._demand_now() + js.dram_weight * js.demand
        return (js.dram_weight * js.demand) / total if total > 0 else 1.0

    def _split_demands(self) -> tuple[list[JobState], list[float]]:
        """The jobs holding tiles and their weighted DRAM demands (:meth:`_demand_of`)."""
        holding = list(self._holding.values())
        ds = [self._demand_of(js) for js in holding]
        return holding, ds

    def _rebalance(self, incremental: bool = False) -> None:
        """Split DRAM bandwidth among the running jobs in proportion to their demand.

        A job's demand is the fraction of the bandwidth it would use alone (its DRAM bytes over
        its time with all of it), times its weight; jobs moving state or weights demand all of
        it. Shares sum to one, so the bandwidth is never exceeded and never left idle while a
        job could use it (a lone job gets all of it). Jobs whose progress rate changes are
        re-timed. ``incremental``: between scheduling points, only the demands that may have
        changed are recomputed (the same answer; ``CHECK_SPLIT`` makes it compare).
        """
        incremental = incremental and self._incremental_ok
        dirty, self._dirty = self._dirty, []
        split = self._split
        if incremental and split is not None and self._split_ver == self._hold_ver:
            # Only the jobs whose piece changed, or that had a piece event, since the last
            # re-split can demand something else (everything else changes only at a scheduling
            # point, which re-splits in full): the same demands, in the same order.
            holding, ds, pos = split
            for js in dirty:
                i = pos.get(js.id)
                if i is not None:
                    ds[i] = self._demand_of(js)
            if self._check_split:
                assert ds == [self._demand_of(js) for js in self._holding.values()]
        else:
            holding, ds = self._split_demands()
            self._split = (holding, ds, {js.id: i for i, js in enumerate(holding)})
            self._split_ver = self._hold_ver
        total = sum(ds)
        self._total_demand = total
        common = min(1.0, 1.0 / total) if total > 0 else 1.0
        if common != self._vc_r:
            self._vc_set_rate(common)
        for js, d in zip(holding, ds, strict=True):
            js.demand_used = d
            if js.state != "running":
                js.dram_share = d / total if total > 0 else 1.0
                continue
            if not js.pieces:
                continue  # runs at its own latency whatever the others do
            js.dram_share = d / total if total > 0 else 1.0
            if js.vc:
                continue
            rate = self._rate_of(js, total)
            if rate != js.rate:
                self._sync(js)  # progress so far at the old rate
                js.rate = rate
                self._schedule(js)
        if self._after_split is not None:
            self._after_split(self, incremental)

    def _refresh(self) -> None:
        """Bring every holding job's progress, share and speed up to now (what policies read)."""
        total = self._total_demand
        for js in self._holding.values():
            self._sync(js)
            if js.state == "running" and not js.pieces:
                continue  # runs at its own latency; its share is its own
            if js.state == "running":
                js.latency_us = self._inference_us(self._table(js.pieces), self._rate_now(js))
            js.dram_share = js.demand_used / total if total > 0 else 1.0

    def reserve(self, js: JobState, tiles: Sequence[int], **start_args: Any) -> None:
        """Start ``js`` on ``tiles`` as soon as their owners (checkpointing now) let them go.

        ``start_args`` are those of :meth:`start` (``latency_us``, ``energy_pj``, ...).
        """
        victims: list[str] = []
        for t in tiles:
            owner = self.occupancy.owner[t]
            if owner is not None and owner != js.id and owner not in victims:
                victims.append(owner)
        self.occupancy.reserve(tiles, js.id)
        js.reservation = {
            "tiles": tuple(tiles),
            "charged_us": self._charged_us,
            "victims": tuple(victims),
            **start_args,
        }
        for v in victims:
            vs = self.jobs[v]
            if vs.events and vs.events[-1][1] == "preempt" and vs.events[-1][0] == self.now:
                vs.events[-1] = (self.now, "preempt", self._preempt_why(vs, js))

    def set_rate(self, js: JobState, latency_us: float, energy_pj: float) -> None:
        """Change a running job's speed in place.

        Jobs with pieces are re-timed by their DRAM share instead; only ``energy_pj`` applies.
        """
        self._sync(js)
        if not js.pieces:
            js.latency_us = max(latency_us, 1e-6)
        js.energy_pj_per_inference = energy_pj
        self._schedule(js)

    def done_after(self, js: JobState, run_us: float) -> float:
        """Fraction of the inference ``js`` will have done after ``run_us`` more µs, 0..1.

        At its current rate, from when its progress resumes (a running job only), and never
        past the end: what a drain of that length credits (``preempt``'s ``credit_us``).
        """
        self._sync(js)
        pos, total = self._credited(js, run_us)
        return 1.0 - max(0.0, (total - pos) / total) if total > 0 else 1.0 - js.remaining

    def until_mark_us(self, js: JobState, marks: int) -> float:
        """Time until a running job reaches the next of ``marks`` even marks of its piece, µs.

        The piece's data-tile boundaries, for a TSS pipeline of ``marks`` data tiles; 0 in a
        piece that computes nothing (a weight load stops at once), before its progress resumes
        (a restore or a charged decision), and for a job without pieces.
        """
        self._sync(js)
        if js.state != "running" or not js.pieces or marks < 1:
            return 0.0
        tb = self._table(js.pieces)
        i = js.piece
        if i >= len(tb.times) or js.pieces[i][0] <= 0.0 or js.progress_from_us > self.now:
            return 0.0
        t = tb.times[i]
        off = min(max(0.0, js.pos - tb.cum[i]), t)
        step = t / marks
        dist = min(math.ceil(off / step - 1e-9) * step, t) - off
        rate = 1.0 if tb.dem[i] <= 0.0 else max(self._rate_now(js), 1e-12)
        return max(0.0, dist) / rate

    def _credited(self, js: JobState, run_us: float) -> tuple[float, float]:
        """The job's position after ``run_us`` more µs of running, and its timeline's total."""
        dt = max(0.0, self.now + run_us - max(self.now, js.progress_from_us))
        if js.state != "running" or dt <= 0.0:
            dt = 0.0
        if js.pieces:
            tb = self._table(js.pieces)
            stop = max(js.pos, tb.total - _CREDIT_GAP_US)
            if js.plan is not None and js.piece < len(tb.times) - 1:
                # A TSS job stops inside its segment's piece or at its end, between segments.
                stop = min(stop, max(js.pos, tb.cum[js.piece + 1]))
            i = js.piece
            rate = 1.0 if i >= len(tb.dem) or tb.dem[i] <= 0.0 else self._rate_now(js)
            return min(js.pos + dt * rate, stop), tb.total
        total = max(js.latency_us, 1e-9)
        pos = (1.0 - js.remaining) * total
        stop = max(pos, total - _CREDIT_GAP_US)
        return min(pos + dt, stop), total

    def _loading(self, js: JobState) -> bool:
        """Whether a TSS job is in (or at the start of) a weight load: a piece without compute."""
        i = js.piece
        return js.plan is not None and i < len(js.pieces) and js.pieces[i][0] <= 0.0

    def nothing_live(self, js: JobState, credit_us: float = 0.0) -> bool:
        """Whether a TSS job preempted now, running on ``credit_us`` first, has nothing live.

        True when it loads a segment's weights, or when the run takes it to the end of its
        pipeline (between two segments); then :meth:`preempt` writes and reloads nothing.
        """
        if js.plan is None or not js.pieces or js.state != "running":
            return False
        self._sync(js)
        if self._loading(js):
            return True
        tb = self._table(js.pieces)
        i = js.piece
        if credit_us <= 0.0 or i >= len(tb.times) - 1:
            return False
        pos, _ = self._credited(js, credit_us)
        return pos >= tb.cum[i + 1] - _EPS  # as _locate moves it on

    def preempt(
        self,
        js: JobState,
        drain_us: float,
        state_bytes: int = 0,
        weight_bytes: int = 0,
        credit_us: float = 0.0,
    ) -> float:
        """Stop ``js``: drain, write ``state_bytes`` to DRAM holding its tiles, then wait.

        The first ``credit_us`` of the drain (at most ``drain_us``) is the job running on to its
        stopping point: that work is credited at its current rate, never past its end. On
        resume (same plan) it reads the state back and reloads ``weight_bytes``. A TSS job that
        stops between two segments or while it loads a segment's weights has nothing live
        (:meth:`nothing_live`): it writes and reloads nothing; one stopped in a weight load
        stops at once (no credit) and loads those weights again, from the start, on resume.
        Returns when its tiles come free, µs.
        """
        if js.state != "running":
            raise RuntimeError(f"{js.id} cannot be preempted from state {js.state}")
        if not 0.0 <= credit_us <= drain_us + 1e-9:
            raise ValueError(f"credit_us {credit_us} must lie in 0..drain_us ({drain_us})")
        self._sync(js)
        credit_us = 0.0 if self._loading(js) else max(0.0, credit_us)  # a load stops at once
        if credit_us > 0.0:
            pos, total = self._credited(js, credit_us)
            if js.pieces:
                piece = js.piece
                self._move_to(js, pos)
                if js.plan is not None and js.piece > piece:
                    # Stopped at its pipeline's end, between two segments: nothing is live, and
                    # the next segment loads (or streams) its own weights.
                    state_bytes = weight_bytes = 0
            elif total > 0:
                before = js.remaining
                js.remaining = max(0.0, (total - pos) / total)
                js.energy_pj += max(0.0, before - js.remaining) * js.energy_pj_per_inference
        if self._loading(js):
            # Loading a segment's weights (or about to): no pipeline is live, and what was loaded
            # goes with the tiles; the load starts over on resume, as the job's own piece.
            state_bytes = weight_bytes = 0
            self._move_to(js, self._table(js.pieces).cum[js.piece])
        self._close_hold(js, self.now)
        if credit_us > 0.0 and js.intervals:
            last = js.intervals[-1]
            same = last["tiles"] == self._coords(js.tiles)
            if last["kind"] == "run" and last["end_us"] == self.now and same:
                js.intervals.pop()  # it runs on: one interval up to its stopping point
                js.hold_since = last["start_us"]
        # The credited part of the drain is the job running (as Planaria's run to its boundary).
        js.phases = [(self.now + credit_us, "checkpoint")] if credit_us > 0.0 else []
        js.state = "checkpointing"
        self._mut += 1
        js.hold_kind = "run" if credit_us > 0.0 else "checkpoint"
        js.preemptions += 1
        js.resume_state_bytes = state_bytes
        js.resume_weight_bytes = weight_bytes
        energy = state_bytes * 8 * self.hw.energy.dram_pj_per_bit
        js.energy_pj += energy
        js.checkpoint_pj += energy
        js.version += 1
        # While it writes its state it demands all of the bandwidth it can get (its weight).
        others = max(self._demand_now() - self._demand_of(js), 0.0)
        share = js.dram_weight / (others + js.dram_weight)
        end = self.now + drain_us + self.dram_us(state_bytes, share)
        js.extra["checkpoint_end_us"] = math.ceil(end - 1e-9)
        self.count("preempted_tiles", len(js.tiles))
        js.events.append((self.now, "preempt", self._pending_why(js, "checkpointed")))
        self._push(end, "checkpointed", js.id, js.version)
        return float(js.extra["checkpoint_end_us"])

    def kill(self, js: JobState) -> None:
        """Stop ``js`` at once and discard its progress: it waits to start again from scratch.

        Its tiles come free immediately (nothing is saved); the work done so far is lost (its
        energy stays spent). Counts as a preemption and a restart.
        """
        if js.state != "running":
            raise RuntimeError(f"{js.id} cannot be killed from state {js.state}")
        self._sync(js)
        self._close_hold(js, self.now)
        js.phases = []
        self.count("preempted_tiles", len(js.tiles))
        for t in js.tiles:
            self._killed_tiles[t] = js.id
        js.events.append((self.now, "kill", self._pending_why(js, "killed (progress lost)")))
        self.occupancy.release(js.id)
        self._holding.pop(js.id, None)
        self._hold_ver += 1
        js.tiles = ()
        js.remaining = 1.0
        js.piece, js.piece_left, js.pos = 0, 1.0, 0.0
        self._mut += 1
        js.preemptions += 1
        js.restarts += 1
        js.resume_state_bytes = js.resume_weight_bytes = 0
        js.plan = None
        js.timing = None
        js.state = "waiting"
        js.version += 1
        self._waiting[js.id] = js

    def resize(
        self,
        js: JobState,
        tiles: Sequence[int],
        latency_us: float,
        energy_pj: float,
        *,
        pause_us: float = 0.0,
        pieces: tuple[tuple[float, float], ...] | None = None,
    ) -> None:
        """Grow or shrink a running LTS job to ``tiles`` in place (keeping its progress).

        Tiles it gives up come free now; tiles it gains must be free (or reserved for it). It
        pauses ``pause_us`` (e.g. to reach a layer boundary and reconfigure) and continues at
        ``latency_us`` per inference (re-timed for its DRAM share when ``pieces`` are given).
        """
        if js.state != "running" or js.plan is not None:
            raise RuntimeError(f"{js.id} cannot be resized from state {js.state}")
        self._sync(js)
        self._close_hold(js, self.now)
        js.phases = []
        new = set(tiles)
        old = set(js.tiles)
        self.occupancy.release(js.id)
        keep = [t for t in js.tiles if t in new]
        gain = [t for t in tiles if t not in old]
        self.occupancy.take(keep + gain, js.id)
        js.tiles = tuple(tiles)
        js.hold_since = self.now
        js.hold_kind = "run"
        if pieces is not None:
            js.pieces = pieces
            self._set_progress(js, js.remaining)
        js.latency_us = max(latency_us, 1e-6)
        js.energy_pj_per_inference = energy_pj
        js.progress_from_us = self.now + pause_us
        self._schedule(js)

    # ---- the loop ----------------------------------------------------------------------
    def _finish(self, js: JobState) -> None:
        self._sync(js)
        # The event is at the whole µs after the end: whatever rounding left is done too.
        js.energy_pj += max(0.0, js.remaining) * js.energy_pj_per_inference
        js.remaining = 0.0
        self._let_go(js)
        js.state = "done"
        js.finish_us = self.now
        late_ms = (self.now - js.job.deadline_us) / 1e3
        if late_ms <= 0:
            why = f"finished {-late_ms:.3f} ms before its deadline"
        else:
            why = f"finished {late_ms:.3f} ms after its deadline (missed)"
        js.events.append((self.now, "finish", why))

    def _start_reserved(self) -> None:
        """Start every job whose reserved tiles have all come free."""
        for js in list(self._waiting.values()):
            r = js.reservation
            if r is None:
                continue
            tiles = r["tiles"]
            if all(self.occupancy.owner[t] is None for t in tiles):
                args = {k: v for k, v in r.items() if k not in ("tiles", "charged_us", "victims")}
                saved = self._charged_us
                self._charged_us = 0.0  # the decision was charged when it was made
                self.start(js, tiles, **args)
                self._charged_us = saved

    def _drop_why(self, js: JobState) -> str:
        """Why a waiting job is dropped (its deadline passed, or the replay ended)."""
        if js.preemptions:
            return (
                f"its deadline passed while it waited to resume after {js.preemptions} "
                "preemption(s)"
            )
        dep = js.job.depends_on
        if dep is not None and self.jobs[dep].state != "done":
            return f"its deadline passed while it waited for {dep} to finish"
        return f"its deadline passed before {self.policy.name} found tiles for it"

    def _decide(self) -> None:
        t0 = time.perf_counter()
        if self.drop_late:
            # A job not running whose deadline has passed is dropped (it counts as missed),
            # for every policy alike: it could only delay others.
            for js in [j for j in self._waiting.values() if j.job.deadline_us <= self.now]:
                del self._waiting[js.id]
                if js.reservation is not None:
                    self.occupancy.unreserve(js.id)
                    js.reservation = None
                js.state = "dropped"
                js.events.append((self.now, "drop", self._drop_why(js)))
        self._start_reserved()
        self._charged_us = 0.0
        self._worked = False
        self._refresh()
        self.policy.schedule(self)
        self._killed_tiles.clear()
        self._rebalance()
        if self._worked:
            wall = (time.perf_counter() - t0) * 1e3
            self.decisions.append(Decision(self.now, self._charged_us, wall))
        self._charged_us = 0.0
        self._worked = False

    def _let_go(self, js: JobState) -> None:
        """``js`` stops holding its tiles now (they come free)."""
        self._close_hold(js, self.now)
        self.occupancy.release(js.id)
        self._holding.pop(js.id, None)
        self._hold_ver += 1
        self._mut += 1
        js.tiles = ()

    def _checkpointed(self, js: JobState) -> None:
        """``js`` has written its state: its tiles come free and it waits to resume."""
        self._let_go(js)
        js.state = "waiting"
        self._waiting[js.id] = js

    def run(self) -> Run:
        """Replay the trace to the end (or the limits) and return the per-job records."""
        t_wall = time.perf_counter()
        total = len(self.jobs)
        released = 0
        next_report = 0.1
        exhausted = False
        policy_due = pieces_moved = False
        while self._events:
            t, _, kind, jid, version = self._events[0]
            if t > self.end_limit:
                break
            if time.perf_counter() - t_wall > self.wall_budget_s:
                exhausted = True
                break
            heapq.heappop(self._events)
            self.now = t
            if kind == "vclock":
                if version == self._vc_version:
                    self._vc_fire()
                kind = "piece"  # then as the end of a piece: nothing else changed
            # None for the shared clock's event and a policy's wake (which only asks that the
            # instant be decided, as every event but a piece's does, after its last event)
            js = self.jobs.get(jid)
            if js is None:
                pass
            elif kind == "release":
                js.released = True
                js.state = "waiting"
                self._waiting[js.id] = js
                released += 1
                if self.progress is not None and released / max(total, 1) >= next_report:
                    self.progress(f"{self.policy.name}: {released}/{total} jobs released")
                    next_report += 0.1
            elif kind == "piece":
                # A job moved to its next piece: its demand for DRAM may change, nothing else did.
                if version == js.version and js.state == "running":
                    self._sync(js)
                    self._dirty.append(js)  # its demand may change even in the same piece
                    js.rate = self._rate_of(js, self._total_demand)
                    self._schedule(js)
                    if self._demand_of(js) != js.demand_used:
                        pieces_moved = True
            elif kind == "finish":
                if version != js.version or js.state != "running":
                    # out of date: nothing happened, but the instant may still owe a decision
                    kind = "piece"
                else:
                    self._finish(js)
            elif kind == "checkpointed":
                if version != js.version or js.state != "checkpointing":
                    kind = "piece"  # out of date, as above
                else:
                    self._checkpointed(js)
            if kind == "piece":
                if self._events and self._events[0][0] == t:
                    continue
                if not policy_due:
                    if pieces_moved:
                        self._rebalance(incremental=True)
                    pieces_moved = False
                    continue
            # Several events at one instant: decide once, after the last of them.
            if kind != "piece":
                policy_due = True
            if self._events and self._events[0][0] == t:
                continue
            self._decide()
            policy_due = pieces_moved = False
        end = self.now
        for js in self.jobs.values():
            if js.state in ("running", "checkpointing"):
                self._sync(js)
                self._close_hold(js, end)
                js.events.append((end, "drop", f"still {js.state} when the replay ended"))
            elif js.state in ("waiting", "pending"):
                if js.released:
                    js.events.append(
                        (end, "drop", "unfinished when the replay ended: " + (self._drop_why(js)))
                    )
                js.state = "dropped"  # never ran to completion: a miss
        wall_ms = (time.perf_counter() - t_wall) * 1e3
        jobs = list(self.jobs.values())
        horizon = self.trace.header.get("horizon_us")
        if isinstance(horizon, int | float) and not isinstance(horizon, bool) and horizon > 0:
            duration_s = float(horizon) / 1e6
        elif jobs:
            first = min(j.job.release_us for j in jobs)
            last = max(j.job.release_us for j in jobs)
            span = last - first + max(j.job.deadline_us - j.job.release_us for j in jobs)
            duration_s = span / 1e6
        else:
            duration_s = 0.0
        counters = dict(self.counters)
        counters["restarts"] = sum(j.restarts for j in jobs)
        return Run(
            self.policy.name,
            jobs,
            duration_s,
            wall_ms,
            self.decisions,
            end,
            self.hw.tiles,
            counters,
            exhausted or self.wall_limited or self.plans.wall_limited,
        )
