"""The service's Runner on a Ray cluster: each job is a Ray task; sweeps fan out further.

Ray is optional; nothing imports this module unless ``ISOSCHED_RAY_ADDRESS`` asks for it.
``connect`` and ``ray_map`` (the cluster plumbing, :mod:`service.ray_cluster`) are re-exported
here for the command line and the benchmarks.
"""

from __future__ import annotations

import threading
from typing import Any

from service.ray_cluster import connect, ray_map, ray_module
from service.runner import Work, record_result, refuse_if_full
from service.store import Store
from service.work import run_job

__all__ = ["RayRunner", "connect", "ray_map"]


class RayRunner:
    """Jobs as Ray tasks, watched from threads.

    Job state lives in the database as with the local runner, so workers must reach the same
    database (PostgreSQL for a cluster; a SQLite file only on one machine).
    """

    def __init__(self, store: Store, address: str, max_pending: int = 256) -> None:
        self.store = store
        self.address = address
        self.max_pending = max_pending
        self.refs: dict[str, Any] = {}
        self.lock = threading.Lock()
        connect(address)

    def submit(self, kind: str, fn: Work, params: dict[str, Any]) -> str:
        """Run ``fn(**params)`` as a Ray task and watch it from a thread."""
        ray = ray_module()
        with self.lock:
            refuse_if_full(len(self.refs), self.max_pending)
        jid = self.store.add_job(kind, params)
        if kind == "sweep":
            params = {**params, "executor": "ray"}
        ref = ray.remote(num_cpus=1)(run_job).remote(self.store.url, jid, fn, params)
        with self.lock:
            self.refs[jid] = ref
        threading.Thread(target=self._watch, args=(jid, ref), daemon=True).start()
        return jid

    def _watch(self, jid: str, ref: Any) -> None:
        ray = ray_module()
        try:
            out = ray.get(ref)
        except Exception as exc:  # a task error or a lost worker: the job fails with the reason
            cause = getattr(exc, "cause", None) or exc
            self.store.set_job(jid, "failed", error=f"{type(cause).__name__}: {cause}")
        else:
            record_result(self.store, jid, out)
        finally:
            with self.lock:
                self.refs.pop(jid, None)

    def cancel(self, job_id: str) -> bool:
        """Mark the job cancelled and stop its task (a running task's worker is killed)."""
        with self.lock:
            ref = self.refs.get(job_id)
        if ref is None:
            return False
        self.store.set_job(job_id, "cancelled", error="cancelled by request")
        ray = ray_module()
        _ready, unfinished = ray.wait([ref], timeout=0)
        if unfinished:  # never cancel a finished task (it can abort the driver)
            ray.cancel(ref, force=True)
        return True

    def warm(self) -> None:
        """Nothing to start: the cluster's workers are already running."""

    def shutdown(self) -> None:
        """Fail this instance's pending jobs; leave the cluster running."""
        with self.lock:
            pending = list(self.refs)
        for jid in pending:
            self.store.set_job(jid, "failed", error="interrupted: the service stopped")
