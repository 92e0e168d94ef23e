"""Files that are whole or absent: an interrupted write never leaves half a file."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["written_whole"]


@contextlib.contextmanager
def written_whole(path: Path, *, durable: bool = False, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, which replaces ``path`` when the block succeeds.

    The temporary file's name is the writer's own (``.NAME.PID.THREAD.part``), so concurrent
    writers of one ``path``, in threads or processes, never share one; the last to finish wins,
    whole. The block creates the file (with the usual permissions). An error or an interrupt
    inside the block leaves ``path`` as it was (an earlier good file stays good) and removes the
    temporary file. A ``path`` that exists and is not a regular file (``/dev/stdout``, a pipe)
    is written directly.

    Parameters
    ----------
    path : Path
        The file to write; its directory must exist.
    durable : bool
        Flush the temporary file to the disk (``fsync``) before the rename, so that a crash of
        the machine leaves the old file or the new one, never an empty one.
    mode : int, optional
        Create the file with these permission bits (less the umask), e.g. ``0o600`` for a file
        only its owner may read; the block's own ``open`` then keeps them. Without it the
        block creates the file with the usual permissions.
    """
    if path.exists() and not path.is_file():
        yield path
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    if mode is not None:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode))
        os.chmod(tmp, mode)  # an earlier writer's leftover of this name keeps its own bits
    try:
        yield tmp
        if durable:
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
