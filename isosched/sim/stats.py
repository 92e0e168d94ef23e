"""Statistics over seeds: means and Student-t 95 % intervals (DESIGN §7)."""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

__all__ = ["CI_LEVEL", "mean_ci95", "t_quantile"]

#: Two-sided confidence level of every ``*_ci95`` interval.
CI_LEVEL = 0.95


@functools.cache
def t_quantile(dof: int) -> float:
    """The two-sided 95 % Student-t quantile t(0.975, ``dof``), rounded to 9 decimals.

    Rounding keeps results byte-identical across platforms whose libm differs in the last bit.
    """
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    from scipy.stats import t as student_t  # slow to import: only when an interval is made

    return round(float(student_t.ppf(0.5 + CI_LEVEL / 2, dof)), 9)


def mean_ci95(
    values: Sequence[float], low: float | None = None, high: float | None = None
) -> tuple[float, list[float] | None]:
    """Mean of ``values`` and its 95 % t-interval over the samples.

    Parameters
    ----------
    values : sequence of float
        One value per seed (at least one; all finite).
    low, high : float, optional
        Bounds of the quantity (satisfaction lies in [0, 1]); the interval is clipped to them.

    Returns
    -------
    (float, list of two floats or None)
        The mean, and ``[low, high]`` = mean ± t(0.975, n − 1) · s / √n with ``s`` the sample
        standard deviation; ``None`` for a single sample (one seed gives no interval).
    """
    if not values:
        raise ValueError("mean of no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    lo, hi = mean - half, mean + half
    if low is not None:
        lo = max(lo, low)
    if high is not None:
        hi = min(hi, high)
    return mean, [lo, hi]
