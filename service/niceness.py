"""Worker-process initialiser, kept free of heavy imports (it runs before them)."""

from __future__ import annotations

import os

__all__ = ["lower_priority"]


def lower_priority() -> None:
    """Give solves a lower CPU priority than the API process (POSIX ``nice`` +10)."""
    if hasattr(os, "nice"):
        os.nice(10)
