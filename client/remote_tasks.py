"""The asyncio tasks of a CPython 3.14+ process that has no probe, read without running code in it.

Two readers, both reading the process's memory from outside as py-spy reads threads:

- tasktop's own (``remote_memory``), used first on 3.14 and 3.15: it walks every thread's task
  list by the debug offsets the interpreter publishes, in this process, on any Python.  It reads
  what the interpreter's reader misses (3.14's threads other than the main one, more than 65,536
  tasks on one thread) and is faster (bench/README.md, issue 12).
- the interpreter's own (``_remote_debugging.RemoteUnwinder``, what ``python -m asyncio ps``
  uses), for any other version or build: it reads only a process of its own minor version, and
  the ``tasktop`` command may run on another Python, so it is run by the target's own
  interpreter (``/proc/PID/exe``) in a child process (``READER``), which prints the tasks as JSON.

Both give the same raw shape; the rest here turns it into the probe's shapes, grouped by the
same rule, so every output format works.

What cannot be known from outside is left unknown, not guessed: how long a task has been
blocked, where it was created, and what it waits on beyond what its innermost frame says.
Pure-Python tasks (``asyncio.tasks._PyTask``) are in neither reader's lists.  Known limits of
the interpreter's reader, said in the header where it was used: on 3.14 it sees only the main
thread's tasks; above 65,536 tasks on one thread it refuses ("Task list appears corrupted").
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
from typing import Any

from tasktop.wire import paths
from tasktop.wire.groups import group_id

#: Run as ``EXE -I -c READER PID`` by the target's own interpreter; prints one JSON document:
#: ``{"version": [3, 14], "frames": [[file, func, line], ...], "stacks": [[frame index, ...],
#: ...], "threads": [{"thread": TID, "tasks": [[id, name, stack index, [[awaiter id, stack
#: index], ...]], ...]}]}`` (frames and stacks interned: tasks share a few stacks, and 60,000
#: tasks' worth of repeated frames took longer to write and parse than to read), or exits 3
#: when the interpreter has no reader (before 3.14), 4 when the reader failed (its message on
#: stderr).  A failed read is retried twice: the reader walks lists the process keeps changing.
READER = r'''
import json, sys
try:
    from _remote_debugging import RemoteUnwinder
except ImportError:
    sys.exit(3)

frames, frame_ids, stacks, stack_ids = [], {}, [], {}

def frame_id(f):
    line = getattr(f, "lineno", None)
    if line is None:  # 3.15: a LocationInfo
        line = getattr(getattr(f, "location", None), "lineno", None)
    key = (f.filename, f.funcname, line or 0)
    found = frame_ids.get(key)
    if found is None:
        found = frame_ids[key] = len(frames)
        frames.append(key)
    return found

def stack_id(call_stacks):
    key = tuple(frame_id(f) for stack in call_stacks for f in stack)
    found = stack_ids.get(key)
    if found is None:
        found = stack_ids[key] = len(stacks)
        stacks.append(key)
    return found

for attempt in range(3):
    try:
        result = RemoteUnwinder(int(sys.argv[1]), all_threads=True).get_all_awaited_by()
        break
    except (RuntimeError, OSError, UnicodeDecodeError, MemoryError) as exc:
        if attempt == 2 or isinstance(exc, (PermissionError, ProcessLookupError)):
            print(f"{exc.__class__.__name__}: {exc}", file=sys.stderr)
            sys.exit(4)
threads = []
for item in result:
    tasks = [[task.task_id, str(task.task_name), stack_id([c.call_stack for c in task.coroutine_stack]),
              [[c.task_name, stack_id([c.call_stack])] for c in task.awaited_by]]
             for task in item.awaited_by]
    if tasks:
        threads.append({"thread": item.thread_id, "tasks": tasks})
sys.stdout.write(json.dumps({"version": list(sys.version_info[:2]), "frames": frames, "stacks": stacks,
                             "threads": threads}, separators=(",", ":")))
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
    """The raw reading of ``pid``'s tasks (see ``READER``): by tasktop's own reader where it
    knows the interpreter (3.14, 3.15), else by the target's own interpreter."""
    from . import remote_memory

    try:
        raw = remote_memory.read_tasks(pid)
    except (remote_memory.ProcessGone, remote_memory.NotAllowed) as exc:
        raise RemoteTasksError(str(exc)) from None
    except (remote_memory.ReadError, struct.error, ValueError, IndexError):
        pass  # another version or build, or memory not laid out as expected: try the interpreter's
    else:
        raw["reader"] = "tasktop"
        return raw
    return read_by_interpreter(pid, timeout)


def read_by_interpreter(pid: int, timeout: float = 30.0) -> dict:
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
        raw = json.loads(done.stdout)
    except ValueError:
        raise RemoteTasksError(f"reading the tasks of process {pid} gave unreadable output") from None
    raw["reader"] = "interpreter"
    return raw


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
    tasks were read, task ids numbered 1.. in the order read (the reader's ids are addresses).
    Tasks with the same stack share its frame list, and its group id is worked out once."""
    frames = [{"file": f, "func": fn, "line": line} for f, fn, line in raw.get("frames") or ()]
    stacks = [[frames[i] for i in stack] for stack in raw.get("stacks") or ()]
    threads = raw.get("threads") or ()
    numbers: dict[int, int] = {}
    for thread in threads:
        for task in thread["tasks"]:
            numbers.setdefault(task[0], len(numbers) + 1)
    awaiting: dict[int, list[int]] = {}
    for thread in threads:
        for task in thread["tasks"]:
            for parent, _stack in task[3]:
                if parent in numbers:
                    awaiting.setdefault(numbers[parent], []).append(numbers[task[0]])
    described: dict[tuple, tuple] = {}  # (stack index, awaits tasks) -> (state, group id)
    tasks, loops = [], []
    for loop_id, thread in enumerate(threads, 1):
        loops.append({"id": loop_id, "thread": thread["thread"], "thread_name": None, "type": "?",
                      "tasks": len(thread["tasks"]), "lag_ms": None, "stall_count": 0, "stalls": []})
        for address, name, stack_index, awaited_by in thread["tasks"]:
            number = numbers[address]
            # The coroutine chain, innermost first: the reader lists one call stack per coroutine.
            stack = stacks[stack_index]
            waits_on = sorted(awaiting.get(number, ()))
            key = (stack_index, bool(waits_on))
            found = described.get(key)
            if found is None:
                state = _state(stack, bool(waits_on))
                found = described[key] = (state, group_id("task", state, [(f["file"], f["func"], f["line"])
                                                                         for f in stack]))
            state, gid = found
            tasks.append({
                "id": number, "name": name, "loop": loop_id, "state": state, "group": gid,
                "blocked_s": None, "stack": stack, "created_by": None, "created_in": None,
                "awaiting": waits_on[0] if waits_on else None, "awaiting_all": waits_on,
                "awaited_by": sorted(numbers[p] for p, _s in awaited_by if p in numbers),
            })
    return tasks, loops


#: Frames of a thread that runs an event loop (py-spy's names): base_events and uvloop.
_LOOP_FRAMES = ("run_forever", "_run_once", "run_until_complete")


def unread_loop_threads(threads: list[dict], loops: list[dict]) -> list[str]:
    """Threads (by py-spy) running an event loop whose tasks the reader did not return: on
    3.14 those of every thread but the main one.  Named as ``name (tid)``."""
    read = {loop.get("thread") for loop in loops}
    out = []
    for thread in threads:
        frames = thread.get("stack") or []
        if thread.get("native_id") in read or not any(f.get("func", "").rsplit(".", 1)[-1] in _LOOP_FRAMES
                                                       for f in frames):
            continue
        out.append(f"{thread.get('name') or '?'} ({thread.get('native_id')})")
    return out


def merge_into(data: dict, raw: dict) -> dict:
    """``data`` (py-spy's threads of the process) with the tasks of ``raw`` added, grouped."""
    from tasktop.wire.groups import groups_of

    tasks, loops = tasks_of(raw)
    limits = read_limits(raw.get("version"), raw.get("reader"))
    unread = unread_loop_threads(data.get("threads") or [], loops)
    if unread and limits:
        limits += f": the loops of threads {', '.join(unread)} are not read"
    if raw.get("lists_changed"):  # tasktop's reader met lists changing under its walk
        limits = "; ".join(filter(None, [limits, "the task lists changed during the read: tasks "
                                                 "created or ended meanwhile may be missing"]))
    version = ".".join(map(str, raw.get("version") or ())) or "?"
    reader = ("tasktop's reader" if raw.get("reader") == "tasktop" else f"Python {version}'s own reader")
    data = dict(data, source="remote", tasks=tasks, loops=loops, reader=reader,
                unknown=UNKNOWN + (f"; {limits}" if limits else ""))
    data["process"] = dict(data.get("process") or {}, python=".".join(map(str, raw.get("version") or ())))
    groups = groups_of({"tasks": tasks, "threads": data.get("threads") or []})
    data["groups"] = groups
    totals = dict(data.get("totals") or {})
    totals.update(tasks=len(tasks), loops=len(loops), groups=len(groups))
    data["totals"] = totals
    return data


class RemoteSource:
    """The live view's source for a process without a probe (``tui.source.SummarySource``):
    each summary is a py-spy read of the threads and an outside read of the tasks, so it is
    asked at most every ``INTERVAL`` seconds.  Detail requests need the probe."""

    #: Slowest useful refresh: a read of 60,000 tasks takes about two seconds.
    INTERVAL = 5.0

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.path = f"pid {pid} (no probe)"

    def summary(self, complete: bool = False) -> dict:
        """Always complete (``complete`` is for a probe's summary): every task is read."""
        from .probe_client import ProbeError, ProbeUnavailable
        from . import pyspy

        if not paths.pid_alive(self.pid):
            raise ProbeUnavailable(f"process {self.pid} is gone")
        try:
            data, _note = snapshot(self.pid)
        except pyspy.PySpyError as exc:
            raise ProbeError(str(exc)) from None
        return data

    def full(self) -> dict:
        return self.summary()

    def full_rows_packed(self) -> dict:
        """``full`` (the TUI's export asks for it so; nothing is packed here)."""
        return self.full()

    def process_alive(self) -> bool | None:
        return paths.pid_alive(self.pid)

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name in ("group", "task", "thread", "memory", "verdicts"):
            def needs_probe(*_args: Any, **_kwargs: Any) -> Any:
                from .probe_client import ProbeError

                raise ProbeError(f"{name} details need the probe in the process (TASKTOP=1, or tasktop run)")
            return needs_probe
        raise AttributeError(name)


def snapshot(pid: int, native: bool = False) -> tuple[dict, str]:
    """``(document, note)`` of a process without a probe: its threads by py-spy and, on CPython
    3.14+, its tasks read from outside; ``note`` is the one line that says what is missing and
    why.  Raises ``pyspy.PySpyError`` when not even the threads can be read."""
    from . import pyspy

    data = pyspy.thread_dump(pid, native=native)
    try:
        data = merge_into(data, read(pid))
    except NoReader:
        return data, (f"process {pid} has no probe: showing its threads only, read by py-spy. "
                      f"{pyspy.ENABLE_HINT}.")
    except RemoteTasksError as exc:
        return data, (f"process {pid} has no probe, and {exc}: showing its threads only, read by "
                      f"py-spy; {pyspy.ENABLE_HINT}")
    return data, (f"process {pid} has no probe: its tasks were read from outside, and "
                  f"{data['unknown']} (they need the probe: TASKTOP=1, or tasktop run -- CMD)")


def read_limits(version: Any, reader: str | None = "interpreter") -> str:
    """What the reader that read this Python version cannot see, for the header: tasktop's own
    reader sees every thread; the interpreter's, on 3.14, only the main thread."""
    if reader != "tasktop" and list(version or ())[:2] == [3, 14]:
        return "3.14's reader sees only the main thread's tasks"
    return ""
