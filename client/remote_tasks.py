"""The asyncio tasks of a CPython 3.14+ process that has no probe, read without running code in it.

CPython 3.14 added ``_remote_debugging.RemoteUnwinder`` (what ``python -m asyncio ps`` uses): it
reads another process's task lists and coroutine stacks through ``process_vm_readv``, as py-spy
reads threads.  The module reads only a process of its own minor version, and the ``tasktop``
command may run on another Python, so the reading is done by the target's own interpreter
(``/proc/PID/exe``) in a child process (``READER``), which prints the tasks as JSON; the rest
here turns them into the probe's shapes, grouped by the same rule, so every output format works.

What cannot be known from outside is left unknown, not guessed: how long a task has been
blocked, where it was created, and what it waits on beyond what its innermost frame says.
Known limits of the interpreter's reader: on 3.14 it sees only the main thread's tasks (3.15
sees every thread's); pure-Python tasks (``asyncio.tasks._PyTask``) are not in its lists; above
65,536 tasks on one thread it refuses ("Task list appears corrupted").
"""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tasktop.wire.groups import group_id

#: Run as ``EXE -I -c READER PID`` by the target's own interpreter; prints one JSON document:
#: ``{"version": [3, 14], "threads": [{"thread": TID, "tasks": [...]}]}``, or exits 3 when the
#: interpreter has no reader (before 3.14), 4 when the reader failed (its message on stderr).
READER = r'''
import json, sys
try:
    from _remote_debugging import RemoteUnwinder
except ImportError:
    sys.exit(3)

def frames(stack):
    out = []
    for f in stack:
        line = getattr(f, "lineno", None)
        if line is None:
            location = getattr(f, "location", None)
            line = getattr(location, "lineno", None)
        out.append([f.filename, f.funcname, line or 0])
    return out

try:
    result = RemoteUnwinder(int(sys.argv[1]), all_threads=True).get_all_awaited_by()
except Exception as exc:
    print(f"{exc.__class__.__name__}: {exc}", file=sys.stderr)
    sys.exit(4)
threads = []
for item in result:
    tasks = []
    for task in item.awaited_by:
        tasks.append({
            "id": task.task_id, "name": str(task.task_name),
            "stack": [frames(c.call_stack) for c in task.coroutine_stack],
            "awaited_by": [[c.task_name, frames(c.call_stack)] for c in task.awaited_by],
        })
    if tasks:
        threads.append({"thread": item.thread_id, "tasks": tasks})
json.dump({"version": list(sys.version_info[:2]), "threads": threads}, sys.stdout)
'''

#: The innermost frame of asyncio's own code names what a task waits on: (file, function).
_WAITS = {
    ("queues.py", "Queue.get"): "Queue.get", ("queues.py", "Queue.put"): "Queue.put",
    ("queues.py", "Queue.join"): "Queue.join", ("tasks.py", "sleep"): "sleep",
    ("locks.py", "Event.wait"): "Event.wait", ("locks.py", "Lock.acquire"): "Lock.acquire",
    ("locks.py", "Condition.wait"): "Condition.wait", ("locks.py", "Semaphore.acquire"): "Semaphore.acquire",
    ("locks.py", "Barrier.wait"): "Barrier.wait", ("streams.py", "StreamReader._wait_for_data"): "stream read",
    ("tasks.py", "wait"): "wait", ("tasks.py", "wait_for"): "wait_for", ("timeouts.py", "Timeout.__aexit__"): "timeout",
}

#: What the header says this way of reading cannot show.
UNKNOWN = "blocked times, creation sites and wait reasons beyond the stack are unknown"


class RemoteTasksError(Exception):
    """The tasks could not be read from outside; the message is one line for the user."""


class NoReader(RemoteTasksError):
    """The target's interpreter has no reader of tasks from outside (CPython before 3.14)."""


def read(pid: int, timeout: float = 30.0) -> dict:
    """The raw reading of ``pid``'s tasks by its own interpreter (see ``READER``)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError as exc:
        raise RemoteTasksError(f"cannot find the interpreter of process {pid}: {exc.strerror}") from None
    if not os.path.exists(exe):  # upgraded or deleted since the process started
        raise NoReader(f"the interpreter of process {pid} ({exe}) is gone from disk")
    try:
        done = subprocess.run([exe, "-I", "-c", READER, str(pid)], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RemoteTasksError(f"reading the tasks of process {pid} failed: {exc}") from None
    if done.returncode == 3:
        raise NoReader(f"process {pid} runs a Python older than 3.14, whose tasks cannot be read from outside")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        last = lines[-1] if lines else str(done.returncode)
        if "Task list appears corrupted" in last:  # the reader's walk stops at 2**16 tasks
            raise RemoteTasksError("it has more than 65,536 tasks on one thread, which the "
                                   "interpreter's reader cannot read")
        raise RemoteTasksError(f"reading the tasks of process {pid} failed: {last}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise RemoteTasksError(f"reading the tasks of process {pid} gave unreadable output") from None


def _frames(raw: list) -> list[dict]:
    return [{"file": f, "func": fn, "line": line} for f, fn, line in raw]


def _state(stack: list[dict], awaits_tasks: bool) -> str:
    """What a task waits on, from its innermost asyncio frame; else ``await task`` when it
    awaits other tasks; else unknown (a future of its own, a socket...)."""
    for frame in stack[:3]:
        found = _WAITS.get((os.path.basename(frame["file"]), frame["func"]))
        if found:
            return found
    return "await task" if awaits_tasks else "unknown"


def tasks_of(raw: dict) -> tuple[list[dict], list[dict]]:
    """``(tasks, loops)`` in the probe's shapes from a raw reading: one loop per thread whose
    tasks were read, task ids numbered 1.. in the order read (the reader's ids are addresses)."""
    numbers: dict[int, int] = {}
    for thread in raw.get("threads") or ():
        for task in thread["tasks"]:
            numbers.setdefault(task["id"], len(numbers) + 1)
    awaiting: dict[int, list[int]] = {}
    for thread in raw.get("threads") or ():
        for task in thread["tasks"]:
            for parent, _stack in task["awaited_by"]:
                if parent in numbers:
                    awaiting.setdefault(numbers[parent], []).append(numbers[task["id"]])
    tasks, loops = [], []
    for loop_id, thread in enumerate(raw.get("threads") or (), 1):
        loops.append({"id": loop_id, "thread": thread["thread"], "thread_name": None, "type": "?",
                      "tasks": len(thread["tasks"]), "lag_ms": None, "stall_count": 0, "stalls": []})
        for task in thread["tasks"]:
            number = numbers[task["id"]]
            # The coroutine chain, innermost first: the reader lists one call stack per coroutine.
            stack = [frame for part in task["stack"] for frame in _frames(part)]
            waits_on = sorted(awaiting.get(number, ()))
            state = _state(stack, bool(waits_on))
            tasks.append({
                "id": number, "name": task["name"], "loop": loop_id, "state": state,
                "group": group_id("task", state, [(f["file"], f["func"], f["line"]) for f in stack]),
                "blocked_s": None, "stack": stack, "created_by": None, "created_in": None,
                "awaiting": waits_on[0] if waits_on else None, "awaiting_all": waits_on,
                "awaited_by": sorted(numbers[p] for p, _s in task["awaited_by"] if p in numbers),
            })
    return tasks, loops


def merge_into(data: dict, raw: dict) -> dict:
    """``data`` (py-spy's threads of the process) with the tasks of ``raw`` added, grouped."""
    from tasktop.wire.groups import groups_of

    tasks, loops = tasks_of(raw)
    limits = read_limits(raw.get("version"))
    data = dict(data, source="remote", tasks=tasks, loops=loops,
                unknown=UNKNOWN + (f"; {limits}" if limits else ""))
    data["process"] = dict(data.get("process") or {}, python=".".join(map(str, raw.get("version") or ())))
    groups = groups_of({"tasks": tasks, "threads": data.get("threads") or []})
    data["groups"] = groups
    totals = dict(data.get("totals") or {})
    totals.update(tasks=len(tasks), loops=len(loops), groups=len(groups))
    data["totals"] = totals
    return data


def read_limits(version: Any) -> str:
    """What the reader of this Python version cannot see, for the header."""
    if list(version or ())[:2] == [3, 14]:
        return "3.14's reader sees only the main thread's tasks"
    return ""
