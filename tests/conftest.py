"""Test-wide settings and fixtures.

* Plans are cached under a temporary directory, never in the home cache.
* ``make test`` runs pytest-xdist with two workers and ``--dist loadfile``: a module's tests run
  on one worker, so module fixtures are built once. Tests that start a Ray cluster hold
  :func:`ray_exclusive`, so two clusters never run at once (an unaddressed ``ray.init`` would
  join the other's).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any test imports the library or starts a subprocess (they inherit it), so that the
# suite neither reads plans a developer cached nor writes into ~/.cache. xdist's workers inherit
# the controller's value and share one cache (its writes are atomic renames). The process that
# made the directory removes it at exit (a run leaves nothing in the temporary directory); a
# directory given by the caller stays.
if "ISOSCHED_CACHE_DIR" not in os.environ:
    os.environ["ISOSCHED_CACHE_DIR"] = tempfile.mkdtemp(prefix="isosched-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ISOSCHED_CACHE_DIR"], ignore_errors=True)

RAY_LOCK = Path(tempfile.gettempdir()) / f"isosched-tests-ray-{os.getuid()}.lock"


@pytest.fixture(scope="module")
def ray_exclusive() -> Iterator[None]:
    """Hold the machine-wide lock of the tests' Ray clusters for a module's tests."""
    with RAY_LOCK.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield
