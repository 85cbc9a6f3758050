"""Integrity of the blind held-out judge sets (the files only; no judge runs here).

`judge_realstyle_heldout.jsonl` (ids `h2-…`), `judge_realstyle_heldout3.jsonl` (ids `h3-…`),
`judge_realstyle_heldout4.jsonl` (ids `h4-…`), `judge_realstyle_heldout5.jsonl` (ids `h5-…`) and
`judge_realstyle_heldout6.jsonl` (ids `h6-…`) were each written and labelled by reading, without seeing the
judge's rules. These tests check their shape, not
the judge.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# file name -> (id prefix, minimum vulnerable and secure snippets per CWE, minimum look-alikes)
SETS = {
    "judge_realstyle_heldout.jsonl": ("h2", 6, 10),
    "judge_realstyle_heldout3.jsonl": ("h3", 7, 10),
    "judge_realstyle_heldout4.jsonl": ("h4", 7, 15),
    "judge_realstyle_heldout5.jsonl": ("h5", 9, 20),
    "judge_realstyle_heldout6.jsonl": ("h6", 10, 25),
}
# the sets written after the earlier ones existed: none of their code may occur in another judge_*.jsonl
FRESH = ["judge_realstyle_heldout3.jsonl", "judge_realstyle_heldout4.jsonl", "judge_realstyle_heldout5.jsonl",
         "judge_realstyle_heldout6.jsonl"]
KEYS = {"id", "cwe", "label", "style", "split", "twin", "code"}
CWES = {"CWE-89", "CWE-78", "CWE-79", "CWE-502", "CWE-22", "CWE-94", "CWE-295", "CWE-327", "CWE-732",
        "CWE-798", "CWE-377"}


def _load(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, f"{path} is empty"
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module", params=sorted(SETS))
def heldout(request) -> tuple[str, list[dict]]:
    return request.param, _load(HERE / request.param)


def test_schema(heldout):
    name, rows = heldout
    prefix = SETS[name][0]
    pattern = re.compile(rf"{prefix}-(\d{{3}})-(\d{{2}}-[vs]|d\d{{2}}-s)")
    for r in rows:
        assert set(r) == KEYS, f"{r.get('id')}: keys {sorted(r)}"
        assert r["cwe"] in CWES, r["id"]
        assert r["label"] in ("vulnerable", "secure"), r["id"]
        assert r["split"] == "heldout", r["id"]
        assert isinstance(r["style"], str) and r["style"], r["id"]
        assert isinstance(r["code"], str) and r["code"].strip(), r["id"]
        m = pattern.fullmatch(r["id"])
        assert m, f"id {r['id']!r} is not {prefix}-CCC-NN-v/s or {prefix}-CCC-dNN-s"
        assert f"CWE-{int(m.group(1))}" == r["cwe"], r["id"]
        assert r["id"].endswith("-v") == (r["label"] == "vulnerable"), r["id"]


def test_ids_unique(heldout):
    _, rows = heldout
    dupes = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    assert not dupes


def test_twins_point_at_each_other_with_the_opposite_label(heldout):
    _, rows = heldout
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        if r["twin"] is None:  # a look-alike: secure code that only looks risky
            assert r["label"] == "secure" and "-d" in r["id"], r["id"]
            continue
        twin = by_id.get(r["twin"])
        assert twin is not None, f"{r['id']}: twin {r['twin']} missing"
        assert twin["twin"] == r["id"], r["id"]
        assert {twin["label"], r["label"]} == {"vulnerable", "secure"}, r["id"]
        assert twin["cwe"] == r["cwe"] and twin["style"] == r["style"], r["id"]
        assert twin["code"] != r["code"], r["id"]


def test_every_snippet_parses(heldout):
    _, rows = heldout
    for r in rows:
        try:
            ast.parse(r["code"])
        except SyntaxError as exc:
            pytest.fail(f"{r['id']} does not parse: line {exc.lineno}: {exc.msg}")


def test_counts_per_cwe(heldout):
    name, rows = heldout
    _, least, lookalikes = SETS[name]
    counts = Counter((r["cwe"], r["label"]) for r in rows)
    for cwe in CWES:
        assert counts[cwe, "vulnerable"] >= least, cwe
        assert counts[cwe, "secure"] >= least, cwe
    assert sum(r["twin"] is None for r in rows) >= lookalikes  # false-alarm probes


def _normalized(code: str) -> str:
    return " ".join(code.split())


@pytest.mark.parametrize("name", FRESH)
def test_fresh_set_copies_no_snippet_of_another_set(name):
    """No `code` of a fresh held-out set may occur, even re-spaced, in any other judge_*.jsonl.

    The messages name ids only, so that a failure shows none of the other sets' snippets.
    """
    mine = _load(HERE / name)
    others = sorted(p for p in HERE.glob("judge_*.jsonl") if p.name != name)
    assert others, "no other judge_*.jsonl to compare with"
    mine_flat = [(r["id"], r["code"], _normalized(r["code"])) for r in mine]  # normalized once, not per pair
    clashes = []
    for path in others:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            theirs = json.loads(line).get("code", "")
            flat = _normalized(theirs)
            for rid, code, code_flat in mine_flat:
                if code in theirs or code_flat in flat or flat and flat in code_flat:
                    clashes.append(f"{rid} ~ {path.name}:{line_no}")
    assert not clashes, f"snippets copied from other sets: {clashes}"
