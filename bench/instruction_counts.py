"""Instructions per task, counted by valgrind's callgrind: figures that do not move with the load.

On a shared machine a timing moves by a third from one run to the next, more than most changes
to the probe's hot loops; callgrind counts the instructions the interpreter runs, which are the
same from run to run (hash seed fixed).  Each figure is the difference of two runs over the
number of tasks it adds (3N creations against N; three rounds over N tasks against one), so the
interpreter's start and the workload's set-up cancel out.  With the probe, its own thread's
wake-ups meanwhile are counted too: under 1 % (3.3 million instructions in a run of 30,000
creations, ``--separate-threads=yes``).  Needs ``valgrind`` on the PATH.

``creation``: one ``loop.create_task`` in a loop inside a task (what ``creation_cost.py`` times),
without the probe and with ``TASKTOP=1``; the difference is the creation hook.  ``walk``: one
task described as a pass does it (``TaskPasses.describe``: its await chain walked, looked up in
the memo of chains, its state and group key found).  ``visit``: one record of a cold pass whose budget is spent
(what a summary does for each of the tasks it has no time to walk: most of a million).
``complete``: one record of a pass with no budget over tasks no pass has seen (what the first
``tasktop dump`` does for each task: its waiter referred to, its chain walked, grouped).
``tally``: one member of a group counted after a pass (its blocked time, creation site and the
task that made it), as every pass does for every task.

    python bench/instruction_counts.py creation --python /tmp/venv311/bin/python /tmp/venv312/bin/python
    python bench/instruction_counts.py walk visit --python /tmp/before/bin/python /tmp/after/bin/python

Each interpreter must have tasktop installed (``walk`` and ``visit`` read its probe's modules).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


async def _creation(n: int, _rounds: int) -> None:
    async def parked():
        await asyncio.get_running_loop().create_future()

    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.01)
    coros = [parked() for _ in range(n)]
    create = loop.create_task
    kept = []
    for coro in coros:  # a plain loop: a comprehension would be a frame of its own
        kept.append(create(coro))
    await asyncio.sleep(0)
    os._exit(0)  # no teardown: only the creations differ between the two sizes


async def _parked(n: int) -> tuple:
    """Spawn the workload's ``n`` parked tasks under the probe, then stop the probe (its
    thread's heartbeats would be counted too, as many as valgrind's slowness lets in): its
    task passes and the live tasks' records are kept."""
    sys.path.insert(0, HERE)
    import workload
    import tasktop.probe as probe
    from tasktop.probe import record_lists

    loop = asyncio.get_running_loop()
    workload.spawn(loop, n)
    await asyncio.sleep(0.2)
    passes = probe._server.state.passes
    current = asyncio.current_task()
    records: list = []
    record_lists.copy_live(records)
    records = [r for r in records if r() is not current]
    probe.stop()
    return loop, passes, records, current


async def _walk(n: int, rounds: int) -> None:
    import inspect

    _loop, passes, records, current = await _parked(n)
    # The waiter the pass read, given since 2026-12-02's evening (the memo's walk of a parked task).
    given = "waiter" in inspect.signature(passes.describe).parameters
    for _round in range(rounds):
        for info in records:
            info.cache = None  # else the description kept from the last round is taken
            task = info()  # what a pass does for a task it describes:
            if given:
                passes.describe(task, info, current, task._fut_waiter)
            else:
                passes.describe(task, info, current)
    os._exit(0)


async def _visit(n: int, rounds: int) -> None:
    import gc
    import time

    from tasktop.probe import task_pass

    loop, passes, records, _current = await _parked(n)
    gc.disable()
    for _round in range(rounds):
        walk = task_pass._Walk(passes, time.monotonic(), {id(loop)}, True, False, lambda: None, 0.0)
        walk.visit(records)  # budget 0: every record as a cold summary sees the ones it cannot walk
    os._exit(0)


async def _complete(n: int, rounds: int) -> None:
    import gc
    import time

    from tasktop.probe import task_pass

    loop, passes, records, _current = await _parked(n)
    gc.disable()
    for _round in range(rounds):
        for info in records:  # as no pass had seen them: what the first dump's pass meets
            info.waiter = info.cache = info.target = None
        walk = task_pass._Walk(passes, time.monotonic(), {id(loop)}, True, False, lambda: None)
        walk.visit(records)  # no budget: every chain walked, as a complete summary does
    os._exit(0)


async def _tally(n: int, rounds: int) -> None:
    from tasktop.probe.groups import Group

    _loop, passes, records, _current = await _parked(n)
    groups: dict = {}  # by creation site: a group's members are mostly of one (one stack)
    for info in records:
        info.since = 1.0
        groups.setdefault(id(info.site), []).append(info)
    site = getattr(passes.keys, "site_key", None) or passes.keys.site  # (before 2026-12-02: by record)
    for _round in range(rounds):  # the first round turns the hook's sites into keys
        for members in groups.values():
            Group(None, members).tally(2.0, site, lambda: None)
    os._exit(0)


INNER = {"creation": _creation, "walk": _walk, "visit": _visit, "complete": _complete, "tally": _tally}


def _count(python: str, what: str, n: int, rounds: int, probe: bool) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}
    env["PYTHONHASHSEED"] = "0"
    # A socket directory of its own: the probe refuses one others can reach (the temp dir).
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    if probe:  # no background sample while counting: the probe thread only starts and waits
        env.update(TASKTOP="1", TASKTOP_INTERVAL="600", TASKTOP_DIR=directory)
    try:
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python,
                              os.path.abspath(__file__), "--inner", what, "--n", str(n), "--rounds", str(rounds)],
                             env=env, capture_output=True, text=True, timeout=1800)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None or out.returncode:
        raise RuntimeError(f"{what} under valgrind with {python}: {out.stderr.strip()[-500:]}")
    return int(found.group(1))


def per_task(python: str, what: str, n: int, probe: bool) -> int:
    """Instructions per task: 3n creations less n, over 2n; three rounds over n tasks less one,
    over 2n."""
    if what == "creation":
        return (_count(python, what, 3 * n, 1, probe) - _count(python, what, n, 1, probe)) // (2 * n)
    return (_count(python, what, n, 3, probe) - _count(python, what, n, 1, probe)) // (2 * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help=f"what to count: {', '.join(sorted(INNER))} (default: creation)")
    parser.add_argument("--python", nargs="+", default=[sys.executable])
    parser.add_argument("--n", type=int, default=10000, help="tasks (the larger run has three times as many)")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        asyncio.run(INNER[args.inner](args.n, args.rounds))
        return
    unknown = sorted(set(args.what) - set(INNER))
    if unknown:
        parser.error(f"nothing to count called {', '.join(unknown)}: choose from {', '.join(sorted(INNER))}")
    for what in args.what or ["creation"]:
        if what == "creation":
            print("| Python | interpreter | no probe | probe | added |\n|---|---|---|---|---|")
        else:
            print(f"| Python | interpreter | {what}: instructions per task |\n|---|---|---|")
        for python in args.python:
            version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                     capture_output=True, text=True).stdout.strip()
            if what == "creation":
                none, probe = per_task(python, what, args.n, False), per_task(python, what, args.n, True)
                print(f"| {version} | {python} | {none:,} | {probe:,} | +{probe - none:,} |", flush=True)
            else:
                print(f"| {version} | {python} | {per_task(python, what, args.n, True):,} |", flush=True)


if __name__ == "__main__":
    main()
