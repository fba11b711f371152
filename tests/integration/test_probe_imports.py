"""The probe runs inside other people's processes: it and the wire protocol it speaks may import
the standard library and msgpack, nothing else (a third-party import would fail in a host that
lacks it, or change what the host's own imports find).

Here: in a real process, every import those modules execute while they are imported, started
and asked every request of the protocol (also what ``importlib`` might bring in behind a
statement's back).  The import statements in their files are checked in
unit/test_probe_import_statements.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

from support.import_rule import ALLOWED_THIRD_PARTY, OURS, absolute_name, in_stdlib_dir, is_stdlib, refused


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
    while not any(g["kind"] == "task" and g["state"] == "Queue.get" for g in full["groups"]):
        full = ask({"op": "full"})
    # The queue's waiters stay put: their group and tasks are there for the requests below.
    waiting = next(g["id"] for g in full["groups"] if g["kind"] == "task" and g["state"] == "Queue.get")
    parked = next(t["id"] for t in full["tasks"] if t["group"] == waiting)
    args = {"group": {"id": waiting}, "task": {"id": parked},
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
