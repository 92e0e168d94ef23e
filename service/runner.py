"""Work off the request path: a Runner runs jobs in worker processes and records their state.

``LocalRunner`` uses a process pool; a done-callback moves each job through running → done /
failed in the store. Workers write progress to the job's record (:func:`service.work.run_job`).
Cancelling a queued job removes it from the pool; a running job is marked cancelled and stops at
its next progress report (its result, if any, is discarded).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from service.niceness import lower_priority
from service.store import Store
from service.work import JobOutput, run_job, warm_worker

__all__ = ["LocalRunner", "Runner", "RunnerBusy", "record_result", "refuse_if_full"]

Work = Callable[..., Any]


class RunnerBusy(Exception):
    """The runner's queue is full: the request should be retried later (HTTP 429)."""


def refuse_if_full(pending: int, limit: int) -> None:
    """Raise :class:`RunnerBusy` when ``pending`` jobs already fill a queue of ``limit``."""
    if pending >= limit:
        raise RunnerBusy(f"{pending} jobs are pending; try again later")


def record_result(store: Store, job_id: str, out: dict[str, Any] | JobOutput) -> None:
    """Store a finished job's result (and its artefacts, when the job produced some)."""
    if isinstance(out, JobOutput):
        store.set_job(job_id, "done", result=out.result, artifacts=out.artifacts)
    else:
        store.set_job(job_id, "done", result=out)


class Runner(Protocol):
    """Runs jobs; the store holds their state."""

    def submit(self, kind: str, fn: Work, params: dict[str, Any]) -> str:
        """Queue ``fn(**params)``; returns the job id."""

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished; whether it was pending."""

    def warm(self) -> None:
        """Start workers ahead of the first job (where that means anything)."""

    def shutdown(self) -> None:
        """Stop accepting work and release the workers."""


class LocalRunner:
    """A process pool on this machine."""

    def __init__(self, store: Store, workers: int = 2, max_pending: int = 256) -> None:
        self.store = store
        self.workers = workers
        self.max_pending = max_pending
        self.pool: cf.ProcessPoolExecutor | None = None
        self.futures: dict[str, cf.Future[Any]] = {}
        self.lock = threading.Lock()

    def _pool(self) -> cf.ProcessPoolExecutor:
        """The pool, started on first use (and again after a shutdown); call under the lock."""
        if self.pool is None:
            self.pool = cf.ProcessPoolExecutor(
                self.workers, mp_context=mp.get_context("spawn"), initializer=lower_priority
            )
        return self.pool

    def warm(self) -> None:
        """Start every worker now, so the first jobs do not pay for interpreter start-up."""
        with self.lock:
            pool = self._pool()
            warming = [pool.submit(warm_worker) for _ in range(self.workers)]
        cf.wait(warming, timeout=120)

    def submit(self, kind: str, fn: Work, params: dict[str, Any]) -> str:
        """Queue ``fn(**params)`` and watch it.

        Raises
        ------
        RunnerBusy
            When ``max_pending`` jobs are queued or running already (the queue is bounded, so
            load beyond the workers' pace is refused instead of held in memory).
        """
        with self.lock:
            refuse_if_full(len(self.futures), self.max_pending)
        jid = self.store.add_job(kind, params)
        with self.lock:
            fut = self._pool().submit(run_job, self.store.url, jid, fn, params)
            self.futures[jid] = fut

        def finished(f: cf.Future[Any], jid: str = jid) -> None:
            self._done(jid, f)

        fut.add_done_callback(finished)
        return jid

    def _done(self, jid: str, fut: cf.Future[Any]) -> None:
        with self.lock:
            self.futures.pop(jid, None)
        if fut.cancelled():
            self.store.set_job(jid, "cancelled", error="cancelled")
            return
        exc = fut.exception()
        if isinstance(exc, BrokenProcessPool):
            # a worker died (killed, out of memory): fail the job with the reason, and start a
            # fresh pool for the next job (a broken pool refuses all work)
            with self.lock:
                if self.pool is not None and getattr(self.pool, "_broken", False):
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = None
            self.store.set_job(
                jid, "failed", error=f"worker process died while running the job ({exc})"
            )
            return
        if exc is not None:
            self.store.set_job(jid, "failed", error=f"{type(exc).__name__}: {exc}")
            return
        record_result(self.store, jid, fut.result())

    def cancel(self, job_id: str) -> bool:
        """Cancel: a queued job never runs; a running one's result is discarded."""
        with self.lock:
            fut = self.futures.get(job_id)
        if fut is None:
            return False
        fut.cancel()
        self.store.set_job(job_id, "cancelled", error="cancelled by request")
        return True

    def shutdown(self) -> None:
        """Fail pending jobs (their workers stop at their next progress report); release workers."""
        with self.lock:
            pending = list(self.futures)
            pool, self.pool = self.pool, None
        for jid in pending:
            self.store.set_job(jid, "failed", error="interrupted: the service stopped")
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
