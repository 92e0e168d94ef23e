"""Work on Ray: sweep points fanned out one per task, and service jobs as Ray tasks.

Ray is optional (``pip install -e '.[ray]'``); nothing else imports this module unless Ray is
asked for (``isosched sweep --ray``, ``ISOSCHED_RAY_ADDRESS``). Sweep points are deterministic
functions of (scenario, hardware, policy, scale, seed), so results do not depend on where they
run; the profiles the driver computed are shipped to the workers once through the object store,
so no worker plans a model again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from isosched.errors import IsoschedError
from isosched.sim.sweep import Point, PointMap, export_books, import_books
from service.store import Store

__all__ = ["RayRunner", "connect", "ray_map"]

INSTALL_HINT = (
    "Ray is not installed: pip install -e '.[ray]' (or run without --ray / "
    "ISOSCHED_RAY_ADDRESS to use the local process pool)"
)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise IsoschedError(INSTALL_HINT) from None
    return ray


def connect(address: str, workers: int | None = None) -> None:
    """Join the Ray cluster at ``address``, or start one on this machine for ``local``.

    ``workers`` caps the CPUs a local cluster uses (one task per CPU). Inside a Ray worker the
    existing connection is kept.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address == "local":  # always a new cluster, never one `ray start` left behind
        ray.init(address="local", num_cpus=workers, **kwargs)
    else:
        ray.init(address=address, **kwargs)


def _run_point(profiles: Any, fn: Callable[[Point], dict[str, Any]], task: Point) -> Any:
    import_books(profiles)
    return fn(task)


def ray_map(address: str = "local", workers: int | None = None) -> PointMap:
    """A sweep executor running one point per Ray task (results yielded in order)."""

    def run(fn: Callable[[Point], dict[str, Any]], tasks: list[Point]) -> Iterator[dict[str, Any]]:
        connect(address, workers)
        ray = _ray()
        profiles = ray.put(export_books())
        remote = ray.remote(num_cpus=1)(_run_point)
        refs = [remote.remote(profiles, fn, t) for t in tasks]
        done = 0
        try:
            for ref in refs:
                yield ray.get(ref)
                done += 1
        finally:
            # stopped early (cancelled job, error): drop the points not yet collected. Only
            # unfinished ones: cancelling a finished task can abort the Ray driver.
            if done < len(refs):
                rest = refs[done:]
                _ready, unfinished = ray.wait(rest, num_returns=len(rest), timeout=0)
                for ref in unfinished:
                    ray.cancel(ref)

    return run


class RayRunner:
    """The service's Runner on a Ray cluster: each job is a Ray task; sweeps fan out further.

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

    def submit(self, kind: str, fn: Callable[..., Any], params: dict[str, Any]) -> str:
        """Run ``fn(**params)`` as a Ray task and watch it from a thread."""
        from service.runner import refuse_if_full
        from service.work import run_job

        ray = _ray()
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
        from service.runner import record_result

        ray = _ray()
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
        """Mark the job cancelled (its worker stops at the next progress report) and cancel it."""
        with self.lock:
            ref = self.refs.get(job_id)
        if ref is None:
            return False
        self.store.set_job(job_id, "cancelled", error="cancelled by request")
        ray = _ray()
        _ready, unfinished = ray.wait([ref], timeout=0)
        if unfinished:  # never cancel a finished task (it can abort the driver)
            ray.cancel(ref)
        return True

    def warm(self) -> None:
        """Nothing to start: the cluster's workers are already running."""

    def shutdown(self) -> None:
        """Fail this instance's pending jobs; leave the cluster running."""
        with self.lock:
            pending = list(self.refs)
        for jid in pending:
            self.store.set_job(jid, "failed", error="interrupted: the service stopped")
