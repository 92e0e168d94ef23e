"""PREMA (Choi and Rhu, HPCA 2020): predictive multi-task scheduling on a preemptible NPU.

Y. Choi and M. Rhu, "PREMA: A Predictive Multi-task Scheduling Algorithm For Preemptible Neural
Processing Units", HPCA 2020, pp. 220-233, doi:10.1109/HPCA47549.2020.00027 (arXiv:1909.04548).

Layer-temporal (LTS): one job at a time holds the whole chip and all of the DRAM bandwidth. The
paper's three algorithms map onto the simulator as follows.

* **Algorithm 1, inference-time prediction.** A job's isolated time is its LTS profile alone on
  the whole chip with all of the bandwidth (the cost model is the predictor); its estimated job
  time is the fraction of the inference it has left times that.
* **Algorithm 2, token-based scheduling.** A job's tokens start at its priority when it enters
  the queue and grow, while it waits, by its priority times its normalised waiting time
  (waiting time over isolated time): ``tokens = priority × (1 + waited / isolated)``. The
  threshold is the highest priority *level* (the priority classes of the workload, the paper's
  low / medium / high) that the largest token reaches; the candidates are the jobs, the running
  one included, whose tokens reach the threshold; the candidate with the shortest estimated time
  left is chosen. A job starved long enough reaches a higher level and competes with the jobs
  there.
* **Algorithm 3, dynamic preemption mechanism.** When the chosen candidate is not the running
  job, PREMA weighs the slowdown each would suffer: the runner's if preempted (the candidate's
  estimated time over the runner's isolated time) against the candidate's if the runner drains
  (the runner's time left over the candidate's isolated time). It **drains** (the runner finishes
  its inference, no preemption) when the runner would suffer more, and preempts otherwise.

A preemption is a **checkpoint** at the runner's next layer boundary (``common.drain_us``): it
writes the activations it holds on-chip there to DRAM and reads them back on resume (its layers
re-read their weights from DRAM as they run, so no separate reload); the candidate is given the
chip when the checkpoint ends. Beyond the paper's Algorithm 3, which chooses only between DRAIN
and CHECKPOINT, a preemption **kills** the runner instead (``kill=True``, the default) when the
work it would lose is no more than the checkpoint would cost it (drain, write and read-back):
the paper's KILL mechanism used only where it dominates CHECKPOINT, so "kill when it has made
little progress, drain when it is nearly done, checkpoint otherwise". ``Prema(kill=False)`` is
the paper's rule alone.

The paper re-runs its scheduler every 0.25 ms; here decisions are taken at every event and at
the instants a waiting job's tokens reach a level that can change the choice (a wake-up), which
are the only times the outcome can change between events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from isosched.sim.engine import JobState, Simulator
from isosched.sim.policies.common import boundary_us, drain_us, lts, lts_state_bytes

__all__ = ["Prema", "Preemption", "choose_mechanism"]

#: Tolerance on token comparisons (tokens accrue in whole microseconds).
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Preemption:
    """What PREMA does to a running job for a candidate, and why.

    Attributes
    ----------
    mechanism : str
        ``drain``, ``checkpoint`` or ``kill``.
    runner_slowdown : float
        The runner's slowdown if preempted: candidate's estimated time / runner's isolated time.
    candidate_slowdown : float
        The candidate's slowdown if the runner drains: runner's time left / candidate's isolated
        time.
    lost_us : float
        Work the runner would lose if killed, µs.
    checkpoint_us : float
        What a checkpoint would cost the runner (drain, write and read-back of its state), µs.
    """

    mechanism: str
    runner_slowdown: float
    candidate_slowdown: float
    lost_us: float
    checkpoint_us: float


def choose_mechanism(
    runner_isolated_us: float,
    runner_left_us: float,
    candidate_isolated_us: float,
    candidate_left_us: float,
    checkpoint_us: float,
    kill: bool = True,
) -> Preemption:
    """PREMA's Algorithm 3, plus KILL where it costs the runner less than a checkpoint.

    Parameters
    ----------
    runner_isolated_us, runner_left_us : float
        The running job's isolated time and estimated time left, µs.
    candidate_isolated_us, candidate_left_us : float
        The candidate's isolated time and estimated time left, µs.
    checkpoint_us : float
        Drain plus writing and reading back the runner's state, µs.
    kill : bool
        Allow KILL (else only the paper's DRAIN / CHECKPOINT).
    """
    runner = candidate_left_us / max(runner_isolated_us, 1e-9)
    candidate = runner_left_us / max(candidate_isolated_us, 1e-9)
    lost = max(0.0, runner_isolated_us - runner_left_us)
    if runner > candidate:
        mechanism = "drain"
    elif kill and lost <= checkpoint_us:
        mechanism = "kill"
    else:
        mechanism = "checkpoint"
    return Preemption(mechanism, runner, candidate, lost, checkpoint_us)


class Prema:
    """Token-based predictive scheduling with DRAIN, CHECKPOINT (and KILL) at layer boundaries.

    Parameters
    ----------
    kill : bool
        Kill a runner instead of checkpointing it when the work it loses is no more than the
        checkpoint would cost (an extension of the paper's Algorithm 3; see the module notes).
    """

    name = "prema"
    kind = "lts"

    def __init__(self, kill: bool = True) -> None:
        self.kill = kill
        self.waited: dict[str, float] = {}  # µs each job has waited in the queue
        self.log: list[tuple[int, str, str, Preemption]] = []  # (when, runner, candidate, why)
        self._queued: set[str] = set()  # jobs waiting in the queue after the last decision
        self._reserved: JobState | None = None  # candidate waiting for a checkpoint to end
        self._last_us = 0
        self._levels: tuple[int, ...] | None = None
        self._iso: dict[str, float] = {}
        self._wakes: set[int] = set()

    # ---- Algorithm 1: estimates ----------------------------------------------------------
    def isolated_us(self, js: JobState, sim: Simulator) -> float:
        """The job alone on the whole chip with all of the DRAM bandwidth, µs."""
        got = self._iso.get(js.job.model)
        if got is None:
            got = self._iso[js.job.model] = lts(js, sim, sim.hw.tiles, 1.0).latency_us
        return got

    @staticmethod
    def remaining_fraction(js: JobState, sim: Simulator) -> float:
        """Fraction of the inference a job has left now (a running job's progress included)."""
        if js.state != "running":
            return js.remaining
        ran = max(0.0, sim.now - js.progress_from_us)
        return max(0.0, js.remaining - ran / js.latency_us)

    def left_us(self, js: JobState, sim: Simulator) -> float:
        """Estimated time the job has left, µs (a runner's restore still to do included)."""
        est = self.remaining_fraction(js, sim) * self.isolated_us(js, sim)
        if js.state == "running":
            est += max(0.0, js.progress_from_us - sim.now)
        return est

    # ---- Algorithm 2: tokens, threshold, candidates --------------------------------------
    def levels(self, sim: Simulator) -> tuple[int, ...]:
        """The workload's priority classes, ascending (the paper's low / medium / high)."""
        if self._levels is None:
            self._levels = tuple(sorted({j.priority for j in sim.trace.jobs}))
        return self._levels

    def tokens(self, js: JobState, sim: Simulator) -> float:
        """Priority × (1 + waiting time / isolated time)."""
        w = self.waited.get(js.id, 0.0)
        return js.job.priority * (1.0 + w / self.isolated_us(js, sim))

    def threshold(self, jobs: list[JobState], sim: Simulator) -> int:
        """The highest priority level the largest token reaches."""
        top = max(j.tokens for j in jobs)
        reached = [lv for lv in self.levels(sim) if lv <= top + _EPS]
        return reached[-1] if reached else min(j.job.priority for j in jobs)

    def _accrue(self, sim: Simulator) -> None:
        dt = sim.now - self._last_us
        self._last_us = sim.now
        if dt > 0:
            for jid in self._queued:
                self.waited[jid] = self.waited.get(jid, 0.0) + dt

    def _queue(self, sim: Simulator) -> list[JobState]:
        """Jobs waiting in PREMA's queue: ready, or holding the chip's reservation."""
        out = sim.ready()
        r = self._reserved
        if r is not None and r.state == "waiting" and r.reservation is not None:
            out.append(r)
        else:
            self._reserved = None
        return out

    # ---- the decision ----------------------------------------------------------------------
    def schedule(self, sim: Simulator) -> None:
        """Accrue tokens, pick the shortest candidate, then start, drain, checkpoint or kill."""
        self._accrue(sim)
        self._wakes = {t for t in self._wakes if t > sim.now}
        ready = sim.ready()
        running = sim.running()
        for js in ready:
            js.tokens = self.tokens(js, sim)
        for js in running:
            js.tokens = self.tokens(js, sim)
        tasks = ready + running
        if ready:
            threshold = self.threshold(tasks, sim)
            candidates = [j for j in tasks if j.tokens >= threshold - _EPS]
            pick = min(
                candidates,
                key=lambda j: (self.left_us(j, sim), j.state != "running", j.job.release_us, j.id),
            )
            if running:
                cur = running[0]
                if pick is not cur:
                    self._preempt_for(cur, pick, sim)
            elif sim.occupancy.free_tiles == sim.hw.tiles:
                self._start(pick, sim)
            self._wake_at_next_level(sim, threshold)
        self._queued = {js.id for js in self._queue(sim)}

    def _start(self, js: JobState, sim: Simulator) -> None:
        p = lts(js, sim, sim.hw.tiles, 1.0)
        sim.charge(lookups=1)
        sim.count("placements")
        sim.start(js, tuple(range(sim.hw.tiles)), p.latency_us, p.energy_pj, pieces=p.pieces)

    def _preempt_for(self, cur: JobState, cand: JobState, sim: Simulator) -> None:
        state = self.state_bytes(cur, sim)
        drain = drain_us(cur, sim)
        ran = boundary_us(cur, sim)  # the runner's own work, not a loss to it
        ckpt = drain - ran + sim.dram_us(state, cur.dram_share) + sim.dram_us(state, 1.0)
        why = choose_mechanism(
            self.isolated_us(cur, sim),
            self.left_us(cur, sim),
            self.isolated_us(cand, sim),
            self.left_us(cand, sim),
            ckpt,
            self.kill,
        )
        self.log.append((sim.now, cur.id, cand.id, why))
        if why.mechanism == "drain":
            return  # the runner finishes its inference; the queue is looked at again then
        if why.mechanism == "kill":
            sim.kill(cur)
            self._start(cand, sim)
            return
        sim.charge(lookups=1)
        sim.preempt(cur, drain, state, credit_us=ran)
        p = lts(cand, sim, sim.hw.tiles, 1.0)
        sim.count("placements")
        sim.reserve(
            cand,
            tuple(range(sim.hw.tiles)),
            latency_us=p.latency_us,
            energy_pj=p.energy_pj,
            pieces=p.pieces,
        )
        self._reserved = cand

    @staticmethod
    def state_bytes(js: JobState, sim: Simulator) -> int:
        """Activations the running job holds on-chip where a drain stops it, bytes."""
        return lts_state_bytes(js, sim)

    def _wake_at_next_level(self, sim: Simulator, threshold: int) -> None:
        """Wake when a waiting job's tokens first reach a level that can change the choice.

        A job becomes a candidate when its tokens reach the threshold, and raises the threshold
        when they reach a higher level; nothing else changes the choice between events (waiting
        jobs' estimates are fixed, the runner's only shrinks, which favours it).
        """
        running = sim.running()
        if not running:
            return  # the chip is idle or being handed over: the next event decides
        horizon = sim.finish_estimate_us(running[0])
        best = math.inf
        for js in sim.ready():
            p = js.job.priority
            if p <= 0:
                continue
            above = [lv for lv in self.levels(sim) if lv >= threshold and lv > js.tokens + _EPS]
            if not above:
                continue
            need = (above[0] / p - 1.0) * self.isolated_us(js, sim) - self.waited.get(js.id, 0.0)
            best = min(best, sim.now + max(need, 0.0))
        if best < horizon:
            t = math.ceil(best - 1e-9)
            if t > sim.now and t not in self._wakes:
                self._wakes.add(t)
                sim.wake_at(t)
