"""Jobs in worker processes on this machine: a bounded queue, and cancel that stops the work.

Each worker is a spawned process that takes one job at a time through its pipe, runs it with
:func:`service.work.execute_job` (progress and the result go straight to the database, never
through the API process) and answers when it is finished. Cancelling a running job — here or
through another API instance — or running past ``job_timeout_s`` kills its worker and starts a
replacement at once: the work stops within a second whatever it was doing (a CP-SAT solve, the
planner's first phase), and the next job does not queue behind it.

Workers die with the API process, SIGKILL included: the kernel signals them when the thread
that started them ends (Linux ``PR_SET_PDEATHSIG``), and a watchdog thread in each worker exits
once its parent is gone (any POSIX system). One thread of the API process (the dispatcher) owns
the workers: it starts them, hands out jobs, notices deaths, timeouts and remote cancels.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from service.niceness import lower_priority
from service.runner import Work, refuse_if_full
from service.store import Store
from service.work import execute_job

__all__ = ["LocalRunner", "die_with_parent"]

#: How often the dispatcher checks timeouts and cancels made through other instances, s.
POLL_S = 0.25

#: Workers in a row that may die before they are ready before queued jobs are failed.
_START_ATTEMPTS = 3

#: Linux prctl option: signal this process when its parent thread exits.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, pdeathsig: bool = True) -> None:
    """Exit when the API process is gone, however it ended (runs in the worker).

    ``pdeathsig`` also arms Linux's parent-death signal, which fires when the *thread* that
    started this process ends: only for processes started by a thread that lives as long as
    the API (the dispatcher); the watchdog alone notices the parent's end within 0.5 s.
    """
    if pdeathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # gone before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="isosched-parent-watch", daemon=True).start()


def _worker_main(conn: mpc.Connection, parent_pid: int) -> None:
    """A worker: announce readiness, then run jobs until told to stop or orphaned."""
    die_with_parent(parent_pid)
    lower_priority()
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        url, jid, fn, params = msg
        execute_job(url, jid, fn, params)
        conn.send(("finished", jid))


def _kill_all(slots: list[_Slot]) -> None:
    for slot in list(slots):
        with contextlib.suppress(OSError, ValueError):
            slot.proc.kill()


def _dispatch(ref: weakref.ReferenceType[LocalRunner]) -> None:
    """The dispatcher thread: rounds of :meth:`LocalRunner._step` while the runner lives."""
    last_check = 0.0
    failures = 0
    while True:
        runner = ref()
        if runner is None:
            return
        try:
            if not runner._step():
                return
            if time.monotonic() - last_check >= POLL_S:
                last_check = time.monotonic()
                runner._stop_unwanted()
            failures = 0
        except Exception as exc:  # keep dispatching, backing off; say what went wrong
            failures += 1
            reason = " ".join(str(exc).split())[:300]
            sys.stderr.write(f"isosched: dispatcher: {type(exc).__name__}: {reason}\n")
            time.sleep(min(10.0, POLL_S * 2**failures))
        finally:
            del runner


@dataclass
class _Slot:
    """One worker process and what it is doing."""

    proc: BaseProcess
    conn: mpc.Connection
    ready: bool = False
    job: str | None = None
    since: float = 0.0
    stopped: bool = False  # killed on purpose: its death is not a crash
    gone: bool = False


@dataclass
class _Queued:
    jid: str
    fn: Work
    params: dict[str, Any] = field(default_factory=dict)


class LocalRunner:
    """Worker processes on this machine (spawned: no state inherited from the API)."""

    def __init__(
        self,
        store: Store,
        workers: int = 2,
        max_pending: int = 256,
        job_timeout_s: float = 3600.0,
    ) -> None:
        self.store = store
        self.workers = workers
        self.max_pending = max_pending
        self.job_timeout_s = job_timeout_s
        self.lock = threading.Lock()
        self.queue: deque[_Queued] = deque()
        self.slots: list[_Slot] = []
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.start_failures = 0  # workers in a row that died before they were ready
        self.next_spawn = 0.0  # monotonic time before which no worker is started
        self._ctx = mp.get_context("spawn")
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        # a runner dropped without shutdown() (a test's app) takes its workers with it
        weakref.finalize(self, _kill_all, self.slots)

    # --- the API's side -------------------------------------------------------------------

    def _ensure_started(self) -> None:
        """Start the dispatcher (which starts the workers); call under the lock."""
        if self.thread is None or not self.thread.is_alive():
            self.stopping = False
            self.thread = threading.Thread(
                target=_dispatch, args=(weakref.ref(self),), name="isosched-dispatcher", daemon=True
            )
            self.thread.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b".")

    def warm(self) -> None:
        """Start every worker now and wait until they are ready (imports done)."""
        with self.lock:
            self._ensure_started()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.lock:
                if sum(s.ready for s in self.slots) >= self.workers:
                    return
            time.sleep(0.05)

    def pending(self) -> int:
        """Jobs queued or running here."""
        with self.lock:
            return len(self.queue) + sum(s.job is not None for s in self.slots)

    def submit(self, kind: str, fn: Work, params: dict[str, Any]) -> str:
        """Queue ``fn(**params)``; returns the job id.

        Raises
        ------
        RunnerBusy
            When ``max_pending`` jobs are queued or running already (the queue is bounded, so
            load beyond the workers' pace is refused instead of held in memory).
        """
        refuse_if_full(self.pending(), self.max_pending)
        jid = self.store.add_job(kind, params)
        with self.lock:
            self.queue.append(_Queued(jid, fn, params))
            self._ensure_started()
        self._wake()
        return jid

    def cancel(self, job_id: str) -> bool:
        """Cancel: a queued job never runs; a running one's worker is killed and replaced."""
        with self.lock:
            for item in self.queue:
                if item.jid == job_id:
                    self.queue.remove(item)
                    break
            else:
                slot = next((s for s in self.slots if s.job == job_id), None)
                if slot is None:
                    return False
                slot.stopped = True
                slot.proc.kill()
        self.store.set_job(job_id, "cancelled", error="cancelled by request")
        self._wake()
        return True

    def shutdown(self) -> None:
        """Fail pending jobs, stop every worker and the dispatcher."""
        with self.lock:
            self.stopping = True
            pending = [q.jid for q in self.queue] + [s.job for s in self.slots if s.job]
            self.queue.clear()
            slots = list(self.slots)
            thread = self.thread
        for jid in pending:
            self.store.set_job(jid, "failed", error="interrupted: the service stopped")
        for s in slots:
            s.stopped = True
            s.proc.kill()
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        for s in slots:
            s.proc.join(timeout=5)

    # --- the dispatcher thread -------------------------------------------------------------

    def _spawn(self) -> None:
        """Start one worker (only the dispatcher thread does: PR_SET_PDEATHSIG is per thread)."""
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main, args=(child, os.getpid()), name="isosched-worker", daemon=True
        )
        proc.start()
        child.close()
        self.slots.append(_Slot(proc, parent))

    def _step(self) -> bool:
        """Start missing workers, hand out jobs, wait for news; ``False`` once stopping."""
        self._replace_and_assign()
        with self.lock:
            if self.stopping:
                self.slots.clear()
                return False
            waitables: list[Any] = [self._wake_r]
            for s in self.slots:
                waitables += [s.conn, s.proc.sentinel]
        for obj in mpc.wait(waitables, timeout=POLL_S):
            if obj is self._wake_r:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            else:
                self._handle(obj)
        return True

    def _handle(self, obj: Any) -> None:
        """A message from a worker, or its death."""
        with self.lock:
            slot = next((s for s in self.slots if obj in (s.conn, s.proc.sentinel)), None)
        if slot is None or slot.gone:
            return
        if obj is slot.conn:
            try:
                kind, jid = slot.conn.recv()
            except (EOFError, OSError):
                kind, jid = "dead", None
            with self.lock:
                if kind == "ready":
                    slot.ready = True
                    self.start_failures = 0
                elif kind == "finished" and slot.job == jid:
                    slot.job = None
            if kind != "dead":
                return
        slot.proc.join(timeout=1)
        with self.lock:
            slot.gone = True
            self.slots.remove(slot)
            crashed = slot.job if not slot.stopped else None
            stillborn = not slot.ready and not slot.stopped
            if stillborn:  # died before it could take a job: back off before the next start
                self.start_failures += 1
                self.next_spawn = time.monotonic() + min(30.0, 0.5 * 2**self.start_failures)
                doomed = list(self.queue) if self.start_failures >= _START_ATTEMPTS else []
                if doomed:
                    self.queue.clear()
        if stillborn:
            for item in doomed:  # workers cannot start (a broken install): say so, not hang
                self.store.set_job(
                    item.jid,
                    "failed",
                    error=f"worker processes fail to start (exit code {slot.proc.exitcode}); "
                    "see the service's log",
                )
        if crashed is not None:
            # killed from outside (OOM killer, an operator): the job fails with the reason
            self.store.set_job(
                crashed,
                "failed",
                error=f"worker process died while running the job (exit code {slot.proc.exitcode})",
            )
        slot.conn.close()

    def _stop_unwanted(self) -> None:
        """Kill workers whose job timed out or was cancelled through another API instance."""
        now = time.monotonic()
        with self.lock:
            running = {s.job: s for s in self.slots if s.job is not None and not s.stopped}
        if not running:
            return
        try:
            states = self.store.job_states(list(running))
        except Exception:  # the database is away for a moment: check again next time
            return
        for jid, slot in running.items():
            if states.get(jid) == "cancelled":
                with self.lock:
                    slot.stopped = True
                slot.proc.kill()
            elif now - slot.since > self.job_timeout_s:
                with self.lock:
                    slot.stopped = True
                slot.proc.kill()
                self.store.set_job(
                    jid,
                    "failed",
                    error=f"timed out after {self.job_timeout_s:g} s "
                    "(ISOSCHED_JOB_TIMEOUT_S); its worker was stopped",
                )

    def _replace_and_assign(self) -> None:
        """Start workers for the dead ones; hand queued jobs to idle, ready workers."""
        with self.lock:
            if self.stopping:
                return
            if time.monotonic() >= self.next_spawn:
                for _ in range(self.workers - len(self.slots)):
                    self._spawn()
            for slot in self.slots:
                if not self.queue:
                    break
                if slot.ready and slot.job is None and not slot.stopped:
                    item = self.queue.popleft()
                    slot.job, slot.since = item.jid, time.monotonic()
                    # a worker that died meanwhile is reported by its sentinel
                    with contextlib.suppress(OSError, ValueError):
                        slot.conn.send((self.store.url, item.jid, item.fn, item.params))
