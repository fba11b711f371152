"""The probe runs inside other people's processes: it and the wire protocol it speaks may import
the standard library and msgpack, nothing else (a third-party import would fail in a host that
lacks it, or change what the host's own imports find).

Here: every ``import`` statement in the installed files of ``tasktop.probe`` and
``tasktop.wire`` (also those inside functions, which run only on some paths), and the rule
itself.  What a real probe imports at work is in integration/test_probe_imports.py.
"""
from __future__ import annotations

import asyncio
import os

import psutil
import tasktop.probe
import tasktop.wire
from support.import_rule import absolute_name, imports_in, in_stdlib_dir, refused, stdlib_by_location


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
    assert stdlib_by_location("psutil") is False  # installed in site-packages with the tests
    assert stdlib_by_location("asyncio") and stdlib_by_location("_asyncio") and stdlib_by_location("sys")
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
