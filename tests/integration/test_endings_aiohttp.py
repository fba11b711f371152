"""The issue's own case, for real: an aiohttp server whose handler starts a consumer of a queue
with ``asyncio.create_task`` and keeps no reference to it.  After 30 real HTTP requests (the
collector run once halfway, as it would at some point), every consumer that never finished is
either still live or counted as lost at the handler's line: none is missing."""
from __future__ import annotations

import os
import re
import urllib.request

import pytest

from conftest import tasktop, wait_until

pytest.importorskip("aiohttp")

try:
    import uvloop
except ImportError:  # pragma: no cover - in the test extra
    uvloop = None

SERVER = r'''
import asyncio, gc, sys
from aiohttp import web

async def read_replies(q):
    await q.get()

async def handle(request):
    asyncio.create_task(read_replies(asyncio.Queue()))  # CREATED
    return web.Response(text="ok")

async def collect(request):
    gc.collect()
    return web.Response(text="collected")

async def main():
    app = web.Application()
    app.router.add_get("/", handle)
    app.router.add_get("/collect", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    with open(sys.argv[2], "w") as fh:
        fh.write(str(port))
    print("ready", flush=True)
    await asyncio.Event().wait()

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
'''


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as reply:
        return reply.read().decode()


def _live(target) -> int:
    return sum(g["count"] for g in target.groups() if g["stack"] and g["stack"][-1]["func"] == "read_replies")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_every_consumer_an_aiohttp_handler_dropped_is_live_or_lost(spawn, sockdir, tmp_path, loop):
    if loop == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    port_file = tmp_path / "port"
    target = spawn(SERVER, args=(loop, str(port_file)))
    port = int(port_file.read_text())
    created = next(n for n, text in enumerate(SERVER.splitlines(), 1) if "# CREATED" in text)
    for _ in range(15):
        assert _get(port, "/") == "ok"
    target.summary()  # a pass looks at the first 15, as the background sample would in time
    assert _get(port, "/collect") == "collected"
    for _ in range(15):
        assert _get(port, "/") == "ok"

    def accounted():
        endings = target.summary()["endings"]
        lost = sum(row["count"] for row in endings["lost"] if row["site"] and row["site"][0]["line"] == created)
        live = _live(target)
        return (live, lost, endings) if live + lost == 30 else None

    live, lost, endings = wait_until(accounted, message="30 consumers live or lost")
    assert lost >= 15  # the collector ran after the first 15: those were destroyed while pending
    (row,) = [r for r in endings["lost"] if r["site"][0]["line"] == created]
    assert row["site"][0]["func"] == "handle" and row["last_state"] == "Queue.get"
    assert row["last_stack"][-1]["func"] == "read_replies"

    dump = tasktop("dump", str(target.pid), sockdir=sockdir)
    assert dump.returncode == 0, dump.stderr
    script = os.path.basename(target.script)
    said = re.search(rf"(\d+) tasks created by handle \({script}:{created}\) were destroyed while pending", dump.stdout)
    assert said and int(said.group(1)) >= lost, dump.stdout  # (more may have been collected since)
