"""Exceptions raised by isosched.

Every error a user can cause derives from :class:`IsoschedError`; the CLI turns it into exit
status 2 with a one-line reason and the service into an HTTP 4xx answer.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "GraphError",
    "HardwareError",
    "IsoschedError",
    "UnknownModelError",
]


class IsoschedError(ValueError):
    """Base class of every error caused by bad input."""


class GraphError(IsoschedError):
    """A DNN graph is malformed: bad reference, cycle, inconsistent shape or absurd size."""


class HardwareError(IsoschedError):
    """A hardware description is malformed or names an unknown preset."""


class UnknownModelError(IsoschedError):
    """A model name is neither in the zoo nor a readable graph file."""


class BudgetExceededError(IsoschedError):
    """A long operation reached its wall-time safety net before it finished.

    Raised instead of returning a cut-short result that would depend on the machine's speed;
    the work can be retried with a larger budget or on a less loaded machine.
    """
