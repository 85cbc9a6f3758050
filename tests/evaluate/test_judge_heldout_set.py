"""Integrity of the blind held-out judge set `judge_realstyle_heldout.jsonl` (the file only; no judge runs here)."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

import pytest

HELDOUT = Path(__file__).parent / "judge_realstyle_heldout.jsonl"
KEYS = {"id", "cwe", "label", "style", "split", "twin", "code"}
CWES = {"CWE-89", "CWE-78", "CWE-79", "CWE-502", "CWE-22", "CWE-94", "CWE-295", "CWE-327", "CWE-732",
        "CWE-798", "CWE-377"}
ID = re.compile(r"h2-(\d{3})-(\d{2}-[vs]|d\d{2}-s)")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = HELDOUT.read_text(encoding="utf-8").splitlines()
    assert lines, f"{HELDOUT} is empty"
    return [json.loads(line) for line in lines]


def test_schema(rows):
    for r in rows:
        assert set(r) == KEYS, f"{r.get('id')}: keys {sorted(r)}"
        assert r["cwe"] in CWES, r["id"]
        assert r["label"] in ("vulnerable", "secure"), r["id"]
        assert r["split"] == "heldout", r["id"]
        assert isinstance(r["style"], str) and r["style"], r["id"]
        assert isinstance(r["code"], str) and r["code"].strip(), r["id"]
        m = ID.fullmatch(r["id"])
        assert m, f"id {r['id']!r} is not h2-CCC-NN-v/s or h2-CCC-dNN-s"
        assert f"CWE-{int(m.group(1))}" == r["cwe"], r["id"]
        assert r["id"].endswith("-v") == (r["label"] == "vulnerable"), r["id"]


def test_ids_unique(rows):
    dupes = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    assert not dupes


def test_twins_point_at_each_other_with_the_opposite_label(rows):
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


def test_every_snippet_parses(rows):
    for r in rows:
        try:
            ast.parse(r["code"])
        except SyntaxError as exc:
            pytest.fail(f"{r['id']} does not parse: line {exc.lineno}: {exc.msg}")


def test_counts_per_cwe(rows):
    counts = Counter((r["cwe"], r["label"]) for r in rows)
    for cwe in CWES:
        assert counts[cwe, "vulnerable"] >= 6, cwe
        assert counts[cwe, "secure"] >= 6, cwe
    assert sum(r["twin"] is None for r in rows) >= 10  # false-alarm probes
