"""The one machine-readable line each benchmark prints for `make bench` (benchmarks/collect.py reads it)."""

from __future__ import annotations

import json

PREFIX = "BENCH-SUMMARY "


def summary(bench: str, **figures) -> None:
    """Print `BENCH-SUMMARY {"bench": ..., "torch_threads": ..., **figures}` on one line."""
    import torch

    print(PREFIX + json.dumps({"bench": bench, "torch_threads": torch.get_num_threads(), **figures}), flush=True)


def parse(text: str) -> list[dict]:
    """Every summary in a benchmark's output, in order."""
    return [json.loads(line[len(PREFIX):]) for line in text.splitlines() if line.startswith(PREFIX)]
