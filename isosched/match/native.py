"""The switch between the compiled (numba) kernels and their pure-Python references.

Every compiled kernel of the matcher (``cp``'s core, repair's kernel, the target's links) has a
pure-Python reference that gives the same answers and that the tests compare against.
``ISOSCHED_CP=py`` makes every one of them run the reference.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["ENV_SWITCH", "compiled", "compiled_default"]

#: Environment switch: ``ISOSCHED_CP=py`` makes the matcher run its pure-Python references.
ENV_SWITCH = "ISOSCHED_CP"


def compiled_default() -> bool:
    """Whether the matcher runs its compiled kernels (unless ``ISOSCHED_CP=py``)."""
    return os.environ.get(ENV_SWITCH, "").lower() not in ("py", "python")


_compiled: dict[Callable[..., Any], Callable[..., Any]] = {}


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` compiled by numba (cached on disk; compiled or loaded once per process)."""
    out = _compiled.get(fn)
    if out is None:
        from numba import njit

        out = _compiled[fn] = njit(cache=True)(fn)
    return out
