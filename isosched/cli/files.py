"""Output files that are whole or absent: an interrupted command never leaves half a file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["written_whole"]


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, which replaces ``path`` when the block succeeds.

    An error or an interrupt inside the block leaves ``path`` as it was (an earlier good file
    stays good) and removes the temporary file. A ``path`` that exists and is not a regular file
    (``/dev/stdout``, a pipe) is written directly.
    """
    if path.exists() and not path.is_file():
        yield path
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
