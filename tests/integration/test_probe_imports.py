"""The probe runs inside other people's processes: it and the wire protocol it speaks may import
the standard library and msgpack, nothing else (a third-party import would fail in a host that
lacks it, or change what the host's own imports find).

Checked two ways: every ``import`` statement in the installed files of ``tasktop.probe`` and
``tasktop.wire`` (also those inside functions, which run only on some paths), and, in a real
process, every import those modules execute while they are imported, started and asked every
request of the protocol (also what ``importlib`` might bring in behind a statement's back).
"""
from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import psutil
import tasktop.probe
import tasktop.wire

OURS = ("tasktop.probe", "tasktop.wire")
ALLOWED_THIRD_PARTY = {"msgpack"}


def _stdlib_by_location(name: str) -> bool:
    """Python 3.9 has no ``sys.stdlib_module_names``: a module is the standard library's when
    it is built in or frozen, or lives under the standard library's directories but not in
    site-packages."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    return in_stdlib_dir(spec.origin or next(iter(spec.submodule_search_locations or ()), ""))


def in_stdlib_dir(path: str) -> bool:
    """Whether ``path`` is under the standard library's directories but not in site-packages."""
    paths = sysconfig.get_paths()
    stdlib = tuple(os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib"))
    packages = tuple(os.path.realpath(paths[k]) + os.sep for k in ("purelib", "platlib"))
    where = os.path.realpath(path)
    return where.startswith(stdlib) and not where.startswith(packages)


def is_stdlib(top: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)
    return top in names if names is not None else _stdlib_by_location(top)


def refused(absolute: str, fromlist: tuple) -> list[str]:
    """What an import of ``absolute`` (``from absolute import *fromlist``) brings in beyond the
    standard library, msgpack and the probe's and protocol's own packages."""
    top = absolute.split(".")[0]
    if top == "tasktop":
        if absolute == "tasktop":
            return [f"tasktop.{name}" for name in fromlist if f"tasktop.{name}" not in OURS]
        return [] if absolute.startswith(tuple(o + "." for o in OURS)) or absolute in OURS else [absolute]
    if top in ALLOWED_THIRD_PARTY or is_stdlib(top):
        return []
    return [absolute]


def absolute_name(name: str, level: int, package: str) -> str:
    """The module a (possibly relative) import names, seen from ``package``."""
    if not level:
        return name
    base = package.split(".")
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_in(source: str, package: str) -> list[tuple[str, tuple, int]]:
    """``(module, fromlist, line)`` of every import statement in ``source``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((alias.name, (), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = absolute_name(node.module or "", node.level, package)
            out.append((module, tuple(alias.name for alias in node.names), node.lineno))
    return out


def _package_files():
    for package in (tasktop.probe, tasktop.wire):
        directory = os.path.dirname(package.__file__)
        for name in sorted(os.listdir(directory)):
            if name.endswith(".py"):
                yield package.__name__, os.path.join(directory, name)


def test_the_check_refuses_what_is_not_the_standard_library():
    # The rules themselves: a test that could not fail would prove nothing.
    assert refused("textual.app", ()) == ["textual.app"]
    assert refused("tasktop", ("client",)) == ["tasktop.client"]
    assert refused("tasktop.render.text", ()) == ["tasktop.render.text"]
    assert refused("psutil", ()) == ["psutil"]
    assert _stdlib_by_location("psutil") is False  # installed in site-packages with the tests
    assert _stdlib_by_location("asyncio") and _stdlib_by_location("_asyncio") and _stdlib_by_location("sys")
    assert not in_stdlib_dir(psutil.__file__) and in_stdlib_dir(asyncio.__file__)
    for name, fromlist in [("asyncio.base_events", ()), ("msgpack", ()), ("tasktop", ("wire",)),
                           ("tasktop.wire", ("paths",)), ("tasktop.probe.hooks", ())]:
        assert refused(name, fromlist) == [], name
    found = imports_in("def f():\n    from . import x\n    import textual\n", "tasktop.probe")
    assert found == [("tasktop.probe", ("x",), 2), ("textual", (), 3)]
    assert absolute_name("", 2, "tasktop.probe") == "tasktop"


def test_every_import_statement_in_the_probe_and_the_wire_is_stdlib_or_msgpack():
    files = list(_package_files())
    assert {os.path.basename(path) for _pkg, path in files} >= {"hooks.py", "server.py", "protocol.py"}
    bad = []
    for package, path in files:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        for module, fromlist, line in imports_in(source, package):
            bad.extend(f"{os.path.basename(path)}:{line}: {name}" for name in refused(module, fromlist))
    assert not bad, "the probe imports beyond the standard library and msgpack:\n" + "\n".join(bad)


# Imports every module of the two packages (boot.py starts the probe, with tracemalloc), asks
# the probe every request of the protocol from another thread, and prints what was imported.
RUN = r'''
import builtins, json, sys
before = set(sys.modules)
seen = []
_import = builtins.__import__

def recording(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if importer.startswith(("tasktop.probe", "tasktop.wire")):
        seen.append([importer, (globals or {}).get("__package__") or "", name, list(fromlist or ()), level])
    return _import(name, globals, locals, fromlist, level)

builtins.__import__ = recording

import asyncio, importlib, pkgutil, queue, socket, threading
import tasktop.probe, tasktop.wire

for package in (tasktop.probe, tasktop.wire):
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)  # tasktop.probe.boot starts the probe
from tasktop import wire
assert tasktop.probe.is_running(), tasktop.probe.last_error()

def ask_everything():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(tasktop.probe.socket_path())
    def ask(request):
        wire.write_frame(sock, request, 30)
        reply = wire.read_frame(sock, 30)
        assert reply.get("ok"), (request, reply)
        return reply.get("data")
    ask({"op": "hello", "version": wire.VERSION})
    full = ask({"op": "full", "chunked": True})
    while not any(g["state"] == "Queue.get" for g in full["groups"]):
        full = ask({"op": "full"})
    args = {"group": {"id": full["groups"][0]["id"]}, "task": {"id": full["tasks"][0]["id"]},
            "thread": {"ident": full["threads"][0]["ident"]}, "verdicts": {"budget_s": 5.0}}
    for op in wire.OPS:
        ask(dict({"op": op}, **args.get(op, {})))
    sock.close()

async def main():
    orphans = [asyncio.create_task(asyncio.Queue().get()) for _ in range(3)]
    blocked = threading.Thread(target=queue.Queue().get, daemon=True)
    blocked.start()
    await asyncio.get_running_loop().run_in_executor(None, ask_everything)

asyncio.run(main())
builtins.__import__ = _import
new = {name: getattr(sys.modules.get(name), "__file__", None) for name in set(sys.modules) - before}
print(json.dumps({"new": new, "seen": seen}))
'''


def test_the_probe_at_work_imports_only_stdlib_and_msgpack(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env.update(TASKTOP_DIR=str(tmp_path), TASKTOP_TRACEMALLOC="1")
    # -S: no site-packages .pth files run (the TASKTOP=1 hook would start the probe before the
    # recording begins); the installed packages are found through PYTHONPATH instead.
    env["PYTHONPATH"] = os.pathsep.join(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    proc = subprocess.run([sys.executable, "-S", "-c", textwrap.dedent(RUN)], env=env, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    importers = {importer for importer, *_ in found["seen"]}
    assert {"tasktop.probe.server", "tasktop.probe.replies", "tasktop.wire.protocol"} <= importers
    bad = []
    for importer, package, name, fromlist, level in found["seen"]:
        bad.extend(f"{importer}: {module}" for module in refused(absolute_name(name, level, package), tuple(fromlist)))
    for name, path in sorted(found["new"].items()):
        top = name.split(".")[0]
        if top == "tasktop":
            ok = name == "tasktop" or name in OURS or name.startswith(tuple(o + "." for o in OURS))
        else:
            # The standard library's modules by name, or by place (``_sysconfigdata_*`` is
            # named for the platform); Cython's runtime modules, which msgpack's compiled
            # extension registers, have neither.
            ok = (top in ALLOWED_THIRD_PARTY or is_stdlib(top) or bool(path and in_stdlib_dir(path))
                  or (path is None and (name == "cython_runtime" or name.startswith("_cython_"))))
        if not ok:
            bad.append(f"sys.modules: {name} ({path})")
    assert not bad, "the probe imported beyond the standard library and msgpack:\n" + "\n".join(bad)

