"""Every way an application makes asyncio tasks: each task is seen, with the line that made it,
and the application cannot tell that the probe is there.

Each case is a small program whose ``main()`` makes tasks running ``leaf()`` on the lines
marked ``# SITE`` (``# SITE x2``: two tasks from that line), then prints ``ready`` followed by
the *facts* it observed itself: task names, ``loop.get_task_factory()``, how often its own
factory ran, and which tasks had started when ``create_task`` returned (eager tasks).  The
program runs twice, with and without the probe; the facts must be identical, and the probe's
dump must hold every ``leaf`` task created on a ``# SITE`` line, with that line as the
innermost frame of its creation stack.

Cases run on the default asyncio loop and on uvloop, on every interpreter; a case whose
feature the interpreter (or uvloop) lacks is skipped, saying so.  Features are detected, not
inferred from version numbers.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import json
import os
import re
import sys
import textwrap

import pytest

from conftest import Target, wait_until

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the test extra except on Windows
    uvloop = None

try:
    import anyio
except ImportError:  # pragma: no cover - anyio is in the test extra
    anyio = None

TEMPLATE = '''\
import asyncio, json, os, sys
STARTED = []
CALLS = []


async def leaf(tag=None):
    STARTED.append(tag)
    await asyncio.Event().wait()


async def other():
    await asyncio.Event().wait()


def app_factory(loop, coro, **kwargs):
    CALLS.append(1)
    return asyncio.Task(coro, loop=loop, **kwargs)


def factory_name(loop):
    known = {{None: "none", app_factory: "app"}}
    if hasattr(asyncio, "eager_task_factory"):
        known[asyncio.eager_task_factory] = "eager"
    factory = loop.get_task_factory()
    return known.get(factory, repr(factory))


async def report(facts):
    for _ in range(3):
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    facts.update(factory=factory_name(loop), calls=len(CALLS), started=sorted(map(str, STARTED)))
    print("ready", json.dumps(facts, sort_keys=True), flush=True)
    await asyncio.Event().wait()


async def main():
    loop = asyncio.get_running_loop()
    facts = {{"loop": type(loop).__module__.split(".")[0]}}
{body}
{tail}

{runner}
'''


def _has_eager_start() -> bool:
    try:
        params = inspect.signature(asyncio.create_task).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return "eager_start" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _has_loop_factory() -> bool:
    return "loop_factory" in inspect.signature(asyncio.run).parameters


NO_TASKGROUP = "asyncio.TaskGroup is new in Python 3.11"
NO_EAGER_FACTORY = "asyncio.eager_task_factory is new in Python 3.12"
NO_EAGER_START = "create_task(eager_start=...) is new in Python 3.14"

# name -> (body of main(), reason to skip or None, extra environment of the run with the probe)
CASES = {
    "asyncio.create_task": ('''
    t = asyncio.create_task(leaf())  # SITE
    facts["names"] = [t.get_name()]
''', None, {}),
    "loop.create_task": ('''
    t = loop.create_task(leaf(), name="mine")  # SITE
    u = loop.create_task(leaf())  # SITE
    facts["names"] = [t.get_name(), u.get_name()]
''', None, {}),
    "two lines in turn, in a loop": ('''
    kept = []
    for _ in range(3):  # the hook reuses the site of the task before when the line is the same
        kept.append(loop.create_task(leaf()))  # SITE x3
        kept.append(loop.create_task(leaf()))  # SITE x3
''', None, {}),
    "asyncio.ensure_future": ('''
    t = asyncio.ensure_future(leaf())  # SITE
    facts["names"] = [t.get_name()]
''', None, {}),
    "asyncio.gather": ('''
    gathered = asyncio.gather(leaf(), leaf())  # SITE x2
''', None, {}),
    "TaskGroup": ('''
    async with asyncio.TaskGroup() as tg:
        t = tg.create_task(leaf())  # SITE
        u = tg.create_task(leaf(), name="grouped")  # SITE
        facts["names"] = [t.get_name(), u.get_name()]
        await report(facts)
''', None if hasattr(asyncio, "TaskGroup") else NO_TASKGROUP, {}),
    "anyio task group": ('''
    import anyio
    async with anyio.create_task_group() as tg:
        tg.start_soon(leaf)  # SITE
        tg.start_soon(leaf, name="started soon")  # SITE
        await report(facts)
''', None if anyio is not None else "anyio is not installed", {}),
    "eager_task_factory set by the app": ('''
    loop.set_task_factory(asyncio.eager_task_factory)
    t = asyncio.create_task(leaf("eager"))  # SITE
    facts["started_at_return"] = list(STARTED)
    facts["names"] = [t.get_name()]
''', None if hasattr(asyncio, "eager_task_factory") else NO_EAGER_FACTORY, {}),
    "create_task(eager_start=True)": ('''
    t = asyncio.create_task(leaf("eager"), eager_start=True)  # SITE
    facts["started_at_return"] = list(STARTED)
    facts["names"] = [t.get_name()]
''', None if _has_eager_start() else NO_EAGER_START, {}),
    "app factory set after the probe started": ('''
    loop.set_task_factory(app_factory)
    t = asyncio.create_task(leaf())  # SITE
    u = loop.create_task(leaf(), name="mine")  # SITE
    gathered = asyncio.gather(leaf())  # SITE
    facts["names"] = [t.get_name(), u.get_name()]
''', None, {}),
    "app factory set before the probe started": ('''
    loop.set_task_factory(app_factory)
    early = asyncio.create_task(other())
    if os.environ.get("TT_LATE_START"):
        import tasktop.probe
        assert tasktop.probe.start(), tasktop.probe.last_error()
    t = asyncio.create_task(leaf())  # SITE
    facts["names"] = [early.get_name(), t.get_name()]
''', None, {"TASKTOP": "0", "TT_LATE_START": "1"}),
    "app factory replaced by None": ('''
    loop.set_task_factory(app_factory)
    loop.set_task_factory(None)
    t = asyncio.create_task(leaf())  # SITE
    facts["names"] = [t.get_name()]
''', None, {}),
}

# How main() is run, per loop; anyio cases are run by anyio.
RUNNERS = {
    "asyncio": ("asyncio.run(main())", "import anyio\nanyio.run(main)"),
    "uvloop": ("import uvloop\nuvloop.run(main())",
               'import anyio\nanyio.run(main, backend_options={"use_uvloop": True})'),
}


def build(body: str, runner: str) -> str:
    body = textwrap.dedent(body).strip("\n")
    tail = "" if "report(" in body else "await report(facts)"
    return TEMPLATE.format(body=textwrap.indent(body, "    "), tail=textwrap.indent(tail, "    "),
                           runner=runner)


def sites(source: str) -> dict[int, int]:
    """Line number -> number of tasks made there, from the ``# SITE`` markers."""
    out = {}
    for number, line in enumerate(source.splitlines(), 1):
        match = re.search(r"# SITE(?: x(\d+))?$", line)
        if match:
            out[number] = int(match.group(1) or 1)
    return out


class PlainRunFailed(AssertionError):
    """The program failed without the probe: nothing to compare with."""


def start(spawn, source: str, **env: str) -> tuple[Target, dict]:
    """Run ``source``; return the target and the facts on its ``ready`` line."""
    target = spawn(source, wait=False, **env)
    line = target.proc.stdout.readline()
    if not line.startswith("ready "):
        _out, err = target.stop()
        error = PlainRunFailed if env.get("TASKTOP") == "0" else AssertionError
        raise error(f"target did not start: {line!r}\n{err}")
    return target, json.loads(line[len("ready "):])


def leaf_sites(target: Target) -> list[tuple[str, int] | None]:
    """(file, line) of the innermost creation frame of every live ``leaf`` task."""
    return leaf_sites_in(target.full())


def leaf_sites_in(data: dict) -> list[tuple[str, int] | None]:
    found = []
    for task in data["tasks"]:
        if any(frame["func"].rsplit(".", 1)[-1] == "leaf" for frame in task["stack"]):
            created = task["created_by"]
            found.append((created[0]["file"], created[0]["line"]) if created else None)
    return found


def check(spawn, body: str, runner: str, **probe_env: str) -> dict:
    source = build(body, runner)
    expected = sites(source)
    plain, plain_facts = start(spawn, source, TASKTOP="0")
    plain.stop()
    target, facts = start(spawn, source, **probe_env)
    assert facts == plain_facts, "the probe changed what the program observes"
    wait_until(lambda: os.path.exists(target.path), message="probe socket")
    want = collections.Counter({(target.script, line): count for line, count in expected.items()})
    total = sum(want.values())

    def all_there():
        found = leaf_sites(target)
        return found if len(found) >= total else None
    got = wait_until(all_there, message=f"{total} leaf tasks")
    assert collections.Counter(got) == want
    _out, err = target.stop()
    assert "tasktop" not in err and "Traceback" not in err, err
    return facts


def skip_if_broken_without_probe(exc: PlainRunFailed, loop: str) -> None:
    """Skip where eager tasks on uvloop fail without the probe: uvloop 0.23 passes
    ``eager_start=`` to the task factory, which ``eager_task_factory`` of CPython 3.13.0-3.13.2
    does not take.  Any other failure is the test's."""
    if loop == "uvloop" and "eager_start" in str(exc):
        lines = str(exc).strip().splitlines()
        last = next((line for line in reversed(lines) if "Error:" in line), lines[-1]).strip()
        pytest.skip(f"fails without the probe too on this Python and uvloop: {last}")
    raise exc


def eager_start_expected(loop: str, by_factory: bool) -> list[str]:
    """What an eager task has run by the time ``create_task`` returns: its first step, except
    for ``eager_task_factory`` on uvloop from CPython 3.14 on, where uvloop 0.23 does not start
    it eagerly, probe or not (``check`` has compared the run with the probe to one without)."""
    return [] if by_factory and loop == "uvloop" and sys.version_info >= (3, 14) else ["eager"]


def _skip_reason(case: str, loop: str) -> str | None:
    reason = CASES[case][1]
    if reason:
        return reason
    if loop == "uvloop" and uvloop is None:
        return "uvloop is not installed"
    return None


@pytest.mark.parametrize("loop", list(RUNNERS))
@pytest.mark.parametrize("case", list(CASES))
def test_creation_path(spawn, case: str, loop: str) -> None:
    reason = _skip_reason(case, loop)
    if reason:
        pytest.skip(reason)
    body, _reason, env = CASES[case]
    runner = RUNNERS[loop][1 if "anyio" in body else 0]
    try:
        facts = check(spawn, body, runner, **env)
    except PlainRunFailed as exc:
        skip_if_broken_without_probe(exc, loop)
    assert facts["loop"] == loop
    if "app factory" in case:
        assert facts["calls"] > 0 if "None" not in case else facts["calls"] == 0
        assert facts["factory"] == ("none" if "None" in case else "app")
    if "eager" in case:
        # The task ran its first step inside create_task: it is still eager.
        assert facts["started_at_return"] == eager_start_expected(loop, by_factory="factory" in case)
        assert facts["factory"] == ("eager" if "factory" in case else "none")


@pytest.mark.skipif(uvloop is None, reason="uvloop is not installed")
@pytest.mark.parametrize("how", ["uvloop.install", "loop_factory"])
def test_uvloop_started_other_ways(spawn, how: str) -> None:
    if how == "uvloop.install":
        if not hasattr(uvloop, "install"):
            pytest.skip("this uvloop has no install()")
        runner = ("import uvloop, warnings\nwarnings.simplefilter('ignore', DeprecationWarning)\n"
                  "uvloop.install()\nasyncio.run(main())")
    else:
        if not _has_loop_factory():
            pytest.skip("asyncio.run(loop_factory=...) is new in Python 3.12")
        runner = "import uvloop\nasyncio.run(main(), loop_factory=uvloop.new_event_loop)"
    facts = check(spawn, CASES["asyncio.create_task"][0], runner)
    assert facts["loop"] == "uvloop"


EAGER_LOOP = {
    "asyncio": "asyncio.new_event_loop",
    "uvloop": "__import__('uvloop').new_event_loop",
}


@pytest.mark.parametrize("loop", list(EAGER_LOOP))
def test_eager_factory_set_before_the_loop_runs(spawn, loop: str) -> None:
    """A loop factory that sets ``eager_task_factory`` before ``asyncio.run`` starts the loop:
    the probe, noticing the loop later, chains that factory instead of replacing it."""
    if not hasattr(asyncio, "eager_task_factory"):
        pytest.skip(NO_EAGER_FACTORY)
    if not _has_loop_factory():  # pragma: no cover - both arrived in 3.12
        pytest.skip("asyncio.run(loop_factory=...) is new in Python 3.12")
    if loop == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    runner = textwrap.dedent(f"""
        def eager_loop():
            loop = {EAGER_LOOP[loop]}()
            loop.set_task_factory(asyncio.eager_task_factory)
            return loop

        asyncio.run(main(), loop_factory=eager_loop)
    """)
    body = """
    t = asyncio.create_task(leaf("eager"))  # SITE
    facts["started_at_return"] = list(STARTED)
    facts["names"] = [t.get_name()]
"""
    try:
        facts = check(spawn, body, runner)
    except PlainRunFailed as exc:
        skip_if_broken_without_probe(exc, loop)
    assert facts["loop"] == loop
    assert facts["started_at_return"] == eager_start_expected(loop, by_factory=True)
    assert facts["factory"] == "eager"


CHURN = '''
    if os.environ.get("TT_EAGER"):
        loop.set_task_factory(asyncio.eager_task_factory)
    kept = [asyncio.create_task(leaf()) for _ in range(3)]  # SITE x3

    async def blip():
        await asyncio.sleep(0)  # an eager task leaves the eager set for the scheduled one here

    async def churn():
        while True:
            for _ in range(100):
                asyncio.ensure_future(blip())
            await asyncio.sleep(0)

    churning = asyncio.create_task(churn())
'''


@pytest.mark.parametrize("eager", [False, True], ids=["scheduled", "eager"])
def test_tasks_seen_while_others_come_and_go(spawn, eager: bool) -> None:
    """The probe reads the task sets from its own thread while the loop changes them (the
    "Set changed size during iteration" race, retried): every dump succeeds and holds the
    long-lived tasks, with their creation line."""
    if eager and not hasattr(asyncio, "eager_task_factory"):
        pytest.skip(NO_EAGER_FACTORY)
    source = build(CHURN, RUNNERS["asyncio"][0])
    target, _facts = start(spawn, source, **({"TT_EAGER": "1"} if eager else {}))
    wait_until(lambda: os.path.exists(target.path), message="probe socket")
    want = [(target.script, line) for line, count in sites(source).items() for _ in range(count)]
    wait_until(lambda: len(leaf_sites(target)) == len(want), message="the long-lived tasks")
    with target.client() as client:
        for _ in range(20):
            data = client.full()
            assert leaf_sites_in(data) == want
    _out, err = target.stop()
    assert "Traceback" not in err, err
