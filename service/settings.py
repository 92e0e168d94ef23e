"""Service settings from the environment (``ISOSCHED_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "default_results_dir"]


@dataclass(frozen=True)
class Settings:
    """Where data lives and how much a request may carry.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL; default a SQLite file in ``data_dir`` (``ISOSCHED_DATABASE_URL``).
    data_dir : Path
        Folder of the embedded database (``ISOSCHED_DATA_DIR``, default ``~/.isosched``).
    max_body_bytes : int
        Largest request body accepted; larger ones get 413 (``ISOSCHED_MAX_BODY_BYTES``,
        default 32 MiB).
    workers : int
        Worker processes of the local runner (``ISOSCHED_WORKERS``, default 2).
    max_pending : int
        Jobs one instance holds queued or running before it answers 429
        (``ISOSCHED_MAX_PENDING_JOBS``, default 256).
    ray_address : str or None
        Run jobs on Ray instead of the local pool: ``local`` or a cluster address
        (``ISOSCHED_RAY_ADDRESS``; needs the ``ray`` extra).
    warm_workers : bool
        Start the workers, and load the placer's compiled kernels in the background, when the
        service starts rather than on the first job or match (``ISOSCHED_WARM_WORKERS``,
        default on for ``isosched serve``; tests leave it off).
    max_trace_jobs : int
        Most jobs in one trace, generated (counted after ``scale``, before generating) or
        uploaded (``ISOSCHED_MAX_TRACE_JOBS``, default 250,000).
    max_sweep_jobs : int
        Most jobs one sweep may replay over all its points (``ISOSCHED_MAX_SWEEP_JOBS``,
        default 2,000,000).
    job_timeout_s : float
        Wall time after which a running job is failed and its worker stopped
        (``ISOSCHED_JOB_TIMEOUT_S``, default 3600).
    max_stored_bytes : int
        Bytes the database may hold before uploads and job submissions are refused with 413
        (``ISOSCHED_MAX_STORED_BYTES``, default 4 GiB; 0: no limit).
    results_dir : Path or None
        The data of ``isosched results`` shown at ``/results`` (``ISOSCHED_RESULTS_DIR``, default
        the repository's ``docs/results-data`` when the package runs from a checkout).
    """

    database_url: str
    data_dir: Path
    max_body_bytes: int = 32 * 1024 * 1024
    workers: int = 2
    warm_workers: bool = False
    ray_address: str | None = None
    max_pending: int = 256
    max_trace_jobs: int = 250_000
    max_sweep_jobs: int = 2_000_000
    job_timeout_s: float = 3600.0
    max_stored_bytes: int = 4 * 1024**3
    results_dir: Path | None = None

    @classmethod
    def from_env(cls) -> Settings:
        """Read the ``ISOSCHED_*`` environment variables."""
        data_dir = Path(os.environ.get("ISOSCHED_DATA_DIR", Path.home() / ".isosched"))
        url = os.environ.get("ISOSCHED_DATABASE_URL", f"sqlite:///{data_dir / 'isosched.db'}")
        limit = int(os.environ.get("ISOSCHED_MAX_BODY_BYTES", 32 * 1024 * 1024))
        workers = int(os.environ.get("ISOSCHED_WORKERS", 2))
        warm = os.environ.get("ISOSCHED_WARM_WORKERS", "1") not in ("0", "false", "no")
        ray = os.environ.get("ISOSCHED_RAY_ADDRESS") or None
        pending = int(os.environ.get("ISOSCHED_MAX_PENDING_JOBS", 256))
        trace_jobs = int(os.environ.get("ISOSCHED_MAX_TRACE_JOBS", 250_000))
        sweep_jobs = int(os.environ.get("ISOSCHED_MAX_SWEEP_JOBS", 2_000_000))
        timeout = float(os.environ.get("ISOSCHED_JOB_TIMEOUT_S", 3600))
        stored = int(os.environ.get("ISOSCHED_MAX_STORED_BYTES", 4 * 1024**3))
        results = os.environ.get("ISOSCHED_RESULTS_DIR")
        return cls(
            url,
            data_dir,
            limit,
            workers,
            warm,
            ray,
            pending,
            trace_jobs,
            sweep_jobs,
            timeout,
            stored,
            Path(results) if results else default_results_dir(),
        )


def default_results_dir() -> Path | None:
    """``docs/results-data`` of the checkout the package runs from, if there is one."""
    import isosched

    path = Path(isosched.__file__).resolve().parents[1] / "docs" / "results-data"
    return path if (path / "index.json").is_file() else None
