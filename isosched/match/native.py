"""The switch between the compiled (numba) kernels and their pure-Python references.

Every compiled kernel of the matcher (``cp``'s core, repair's kernel, the target's links) has a
pure-Python reference that gives the same answers and that the tests compare against.
``ISOSCHED_CP=py`` makes every one of them run the reference.
"""

from __future__ import annotations

import os

__all__ = ["ENV_SWITCH", "compiled_default"]

#: Environment switch: ``ISOSCHED_CP=py`` makes the matcher run its pure-Python references.
ENV_SWITCH = "ISOSCHED_CP"


def compiled_default() -> bool:
    """Whether the matcher runs its compiled kernels (unless ``ISOSCHED_CP=py``)."""
    return os.environ.get(ENV_SWITCH, "").lower() not in ("py", "python")
