"""The Runner interface: what the API asks of whatever runs its jobs, and what runners share.

Two runners implement it: :class:`service.local_runner.LocalRunner` (worker processes on this
machine) and :class:`service.ray_runner.RayRunner` (tasks on a Ray cluster). Both run the job
functions of :mod:`service.work` and keep each job's state in the :class:`~service.store.Store`;
nothing here imports either of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from service.work import record_result

__all__ = ["Runner", "RunnerBusy", "Work", "record_result", "refuse_if_full"]

Work = Callable[..., Any]


class RunnerBusy(Exception):
    """The runner's queue is full: the request should be retried later (HTTP 429)."""


def refuse_if_full(pending: int, limit: int) -> None:
    """Raise :class:`RunnerBusy` when ``pending`` jobs already fill a queue of ``limit``."""
    if pending >= limit:
        raise RunnerBusy(f"{pending} jobs are pending; try again later")


class Runner(Protocol):
    """Runs jobs; the store holds their state."""

    def submit(self, kind: str, fn: Work, params: dict[str, Any]) -> str:
        """Queue ``fn(**params)``; returns the job id."""

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished and stop its work; whether it was pending here."""

    def warm(self) -> None:
        """Start workers ahead of the first job (where that means anything)."""

    def shutdown(self) -> None:
        """Stop accepting work, fail pending jobs and stop the workers."""
