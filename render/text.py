"""``tasktop dump`` output: the text report and the versioned ``--json`` document.

The text follows pprof's ``goroutine?debug=1`` (groups, largest first) and ``debug=2``
(every task and thread, with ``--full``), with py-spy's frame format: ``func (file:line)``,
innermost frame first.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import time
from typing import Any, Callable, Iterable, Iterator

from tasktop.wire import SCHEMA, Rows
from tasktop.wire.stacks import SYNTHETIC_FILE, user_frame
from tasktop.wire.units import duration, size

from . import stacks
from .ends import end_lines, wait_lines
from .stacks import BEFORE_PROBE
from .units import ms

DOCUMENT_KEYS = ("schema", "time", "process", "probe", "totals", "memory", "ended", "loops", "verdicts", "verdicts_unsettled",
                 "waits", "ends", "groups", "tasks", "threads", "source", "unknown")
LINES_AT_ONCE = 10_000  # lines of a --full listing made into one piece of text (a stack counts as one)
NO_FRAMES = "(no Python frames)"  # what an empty stack shows
_VERDICT_LABELS = {"unreachable": "PROVEN LEAK", "growing": "GROWING", "stuck": "STUCK", "lost": "LOST"}


def to_document(data: dict) -> dict:
    """The ``--json`` document (schema 1) for a probe's ``summary`` or ``full`` reply."""
    doc = {key: data[key] for key in DOCUMENT_KEYS if key in data}
    doc["schema"] = SCHEMA
    return doc


#: The list of a ``--json`` document that may hold a million rows (``dump --full``'s tasks).
ROWS = "tasks"
ROWS_AT_ONCE = 1000  # rows encoded into one piece


def json_pieces(document: Any, default: Callable[[Any], Any] | None = None) -> Iterator[str]:
    """``document`` as indented JSON ending in a newline, a piece at a time, except that each
    row of its ``tasks`` list is one line of compact JSON.  An indented document goes through
    the json module's pure-Python encoder and compact rows through its C one, several times as
    fast (a million rows in ``dump --full --json``); the pieces are written as they come, so
    that no string of the whole output (1.4 GB there) is ever made.  ``default``: as for
    ``json.dumps``."""
    rows = document.get(ROWS) if isinstance(document, dict) else None
    if isinstance(rows, Rows) and not len(rows):
        document, rows = {**document, ROWS: []}, []
    if not isinstance(rows, (list, Rows)) or not len(rows):
        yield json.dumps(document, indent=2, default=default) + "\n"
        return
    marker = "\x00rows\x00"  # a string no document holds: where the rows go
    head, tail = json.dumps({**document, ROWS: marker}, indent=2, default=default).split(json.dumps(marker), 1)
    yield head + "[\n"
    encode = _RowJSON(json.JSONEncoder(default=default).encode)
    items = iter(rows)  # (``wire.Rows``: unpacked as they are read)
    joint = "    "
    for piece in iter(lambda: [encode(row) for row in itertools.islice(items, ROWS_AT_ONCE)], []):
        yield joint + ",\n    ".join(piece)
        joint = ",\n    "
    yield "\n  ]" + tail + "\n"


class _RowJSON:
    """A row's compact JSON, its stacks' made once: the rows of a reply share its few distinct
    stacks (``wire.with_stacks``), and encoding them was most of encoding a row.  A stack goes
    in as a mark, replaced in the row's text by the stack's; the same text as the row's own."""

    FIELDS = ("stack", "created_by")

    __slots__ = ("encode", "made", "marks")

    def __init__(self, encode: Callable[[Any], str]) -> None:
        self.encode = encode
        self.made: dict[int, tuple] = {}  # id of a stack -> (the stack, its JSON)
        tag = os.urandom(8).hex()  # no row's own string can be a mark
        self.marks = {field: (f"\x00{field}-{tag}\x00", json.dumps(f"\x00{field}-{tag}\x00")) for field in self.FIELDS}

    def __call__(self, row: Any) -> str:
        if type(row) is not dict:
            return self.encode(row)
        swapped = []
        for field in self.FIELDS:
            stack = row.get(field)
            if type(stack) is list and stack:
                if not swapped:
                    row = dict(row)  # the caller's row is left as it was
                mark, encoded_mark = self.marks[field]
                row[field] = mark
                swapped.append((encoded_mark, self._stack(stack)))
        text = self.encode(row)
        for encoded_mark, made in swapped:
            text = text.replace(encoded_mark, made, 1)
        return text

    def _stack(self, stack: list) -> str:
        return _made_once(self.made, stack, id(stack), lambda: self.encode(stack))


def _made_once(made: dict, stack: list, key: Any, make: Callable[[], str]) -> str:
    """``made[key]``'s text of ``stack``, made by ``make`` if it is not there.  ``key`` holds
    the stack's id, and the stack is kept with its text so that its id cannot be another's (a
    row's own stack, as a remote reader's, is a fresh list each time); at most 4,096 kept."""
    found = made.get(key)
    if found is None or found[0] is not stack:
        if len(made) >= 4096:
            made.clear()
        found = made[key] = (stack, make())
    return found[1]


def short_path(path: str, base: str | None = None) -> str:
    """As py-spy shows it: the module path for the standard library and installed packages
    (``stacks.display_path``), relative to ``base`` (the current directory unless given) under
    it, else the path as it is.  The pytest plugin's report gives pytest's root directory, as
    its node ids are relative to it."""
    return _short_path(path, os.getcwd() if base is None else base)


@functools.lru_cache(maxsize=4096)
def _short_path(path: str, base: str) -> str:
    # Cached: a --full dump names the same few files a million times, and relpath costs
    # two abspath calls each (two thirds of the command's time at 100,000 tasks).
    shown = stacks.display_path(path)
    if shown != path:
        return shown
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def frame_text(frame: dict, base: str | None = None) -> str:
    """``func (file:line)``, the file as :func:`short_path` shows it relative to ``base``."""
    if frame.get("file") == SYNTHETIC_FILE:  # made up by the probe: no place to show
        return frame.get("func", "?")
    return f"{frame.get('func', '?')} ({short_path(frame.get('file', '?'), base)}:{frame.get('line', 0)})"


def _stack_lines(stack: Iterable[dict] | None, indent: str = "    ", base: str | None = None) -> list[str]:
    return [indent + frame_text(f, base) for f in stack or ()] or [indent + NO_FRAMES]


def _blocked_range(group: dict) -> str:
    if group.get("blocked_max_s") is None and group.get("blocked_min_s") is None:
        return "blocked ?"  # read without a probe: not known
    low, high = group.get("blocked_min_s") or 0.0, group.get("blocked_max_s") or 0.0
    if high <= 0:
        return "not blocked"
    if abs(high - low) < 0.05:
        return f"blocked {duration(high)}"
    return f"blocked {duration(low)}–{duration(high)}"


def _header(data: dict) -> list[str]:
    proc = data.get("process", {})
    totals = data.get("totals", {})
    mem = data.get("memory", {})
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("time", time.time())))
    started = proc.get("started_at")
    uptime = duration(data.get("time", time.time()) - started) if started else "?"
    argv = " ".join(proc.get("argv") or []) or proc.get("executable", "?")
    if data.get("source") == "py-spy":
        return [
            f"tasktop dump of pid {proc.get('pid', '?')}: {argv}",
            "threads only, read by py-spy: this process has no tasktop probe "
            "(asyncio tasks need it: TASKTOP=1)",
            f"{totals.get('threads', 0)} threads; RSS {size(mem.get('rss_bytes'))}; snapshot at {when}",
        ]
    if data.get("source") == "remote":
        reader = data.get("reader") or f"Python {proc.get('python') or '?'}'s own reader"
        return [
            f"tasktop dump of pid {proc.get('pid', '?')}: {argv}",
            f"no probe: tasks read from outside by {reader}, "
            f"threads by py-spy; {data.get('unknown') or 'what only a probe knows is unknown'}",
            f"{totals.get('tasks', 0)} tasks, {totals.get('threads', 0)} threads, "
            f"{totals.get('loops', 0)} event loops; RSS {size(mem.get('rss_bytes'))}; snapshot at {when}",
        ]
    lines = [
        f"tasktop dump of pid {proc.get('pid', '?')}: {argv}",
        f"Python {proc.get('python', '?')} ({proc.get('implementation', '?')}), up {uptime}, "
        f"snapshot at {when}",
        f"{totals.get('tasks', 0)} tasks, {totals.get('threads', 0)} threads, "
        f"{totals.get('loops', 0)} event loops; RSS {size(mem.get('rss_bytes'))} "
        f"(peak {size(mem.get('rss_peak_bytes'))}); gc counts {mem.get('gc_counts', '?')}",
    ]
    traced = mem.get("tracemalloc")
    if traced:
        lines.append(f"tracemalloc: {size(traced.get('current_bytes'))} "
                     f"(peak {size(traced.get('peak_bytes'))})")
    for loop in data.get("loops", []):
        lag = loop.get("lag_ms")
        lag_text = "lag ?" if lag is None else f"lag {ms(lag)}"
        line = (f"loop {loop.get('id')} in thread {loop.get('thread_name') or loop.get('thread')} "
                f"({loop.get('type', '?').rsplit('.', 1)[-1]}): {loop.get('tasks', 0)} tasks, {lag_text}, "
                f"{loop.get('stall_count', 0)} stalls")
        lines.append(line)
        for stall in (loop.get("stalls") or [])[-3:][::-1]:
            at = time.strftime("%H:%M:%S", time.localtime(stall.get("at", 0)))
            stack = stall.get("stack") or []
            where = frame_text(user_frame(stack)) if stack else "(stack not captured)"
            lines.append(f"  stalled {ms(stall.get('duration_ms', 0))} at {at} in {where}")
    return lines


def _created_lines(created: list[dict], kind: str, recorded: bool = False) -> list[str]:
    """The creation sites of a group; with ``recorded`` (the probe records them), members with
    none were made before the probe started, and say so."""
    lines = []
    for site in created or ():
        stack = site.get("stack")
        if not stack:
            if recorded and kind == "task":
                lines.append(f"  {BEFORE_PROBE}  ×{site.get('count', 0)}")
            continue
        where = frame_text(stack[0])
        parents = site.get("in_tasks") or []
        in_task = f" in task {parents[0]}" if len(parents) == 1 else (
            f" in tasks {', '.join(map(str, parents))}…" if parents else "")
        lines.append(f"  created by {where}{in_task}  ×{site.get('count', 0)}")
        lines.extend("      " + frame_text(f) for f in stack[1:])
    return lines


def render_text(data: dict, full: bool = False) -> str:
    """The text report of a ``summary`` (or, with ``full``, a ``full``) reply."""
    return "".join(text_pieces(data, full))


def text_pieces(data: dict, full: bool = False) -> Iterator[str]:
    """``render_text`` a piece at a time: with ``full``, its listing of every task ten
    thousand lines at a time, so that a million tasks are printed as they are made, never
    one string of them all."""
    lines = _header(data)
    lines.extend(verdict_lines(data.get("verdicts"), data.get("verdicts_unsettled")))
    lines.extend(wait_lines(data.get("waits"), None if full else 10))
    groups = data.get("groups", [])
    recorded = bool((data.get("probe") or {}).get("creation_stacks"))
    total_groups = data.get("totals", {}).get("groups", len(groups))
    lines.append("")
    lines.append(f"{total_groups} groups (identical kind, state and stack), largest first:")
    for group in groups:
        noun = group["kind"] + ("s" if group["count"] != 1 else "")
        lines.append("")
        lines.append(f"{group['count']} {noun}: {group['state']}, {_blocked_range(group)}  "
                     f"[group {group['id']}]")
        lines.extend(_stack_lines(group.get("stack")))
        lines.extend(_created_lines(group.get("created_by"), group["kind"], recorded))
    if len(groups) < total_groups:
        lines.append(f"\n… {total_groups - len(groups)} more groups not shown")
    if full:
        lines.extend(end_lines(data.get("ends")))
    yield "\n".join(lines)
    if full:
        rows = _full_lines(data, recorded)
        while True:
            piece = list(itertools.islice(rows, LINES_AT_ONCE))
            if not piece:
                break
            yield "\n" + "\n".join(piece)
    yield "\n"


def verdict_lines(verdicts: list[dict] | None, unsettled: dict | None = None) -> list[str]:
    """The leak verdicts section: one line per verdict, then its reasoning; then what the
    proof could not settle, and why."""
    if verdicts is None:
        return []
    missing = []
    if unsettled:
        waiters = unsettled["waiters"]
        missing = [f"  {'NOT SETTLED':<12} {waiters} waiter{'s' if waiters != 1 else ''} in "
                   f"{unsettled['groups']} group{'s' if unsettled['groups'] != 1 else ''}: "
                   f"no proof either way, because {unsettled['reason']}"]
    if not verdicts:
        return ["", "Leak verdicts: none (no group is growing, stuck, or proven unreachable)"] + missing
    lines = ["", "Leak verdicts:"]
    for v in verdicts:
        noun = v["kind"] + ("s" if v["count"] != 1 else "")
        where = frame_text(v["frame"]) if v.get("frame") else "?"
        lines.append(f"  {_VERDICT_LABELS.get(v['verdict'], v['verdict'].upper()):<12} {v['count']} {noun}: "
                     f"{v['state']} in {where}  [group {v['group']}]")
        lines.append(f"      {v['reason']}")
    return lines + missing


def _full_lines(data: dict, recorded: bool = False) -> Iterator[str]:
    """The lines of every task and thread, a task's at a time (``data["tasks"]`` may be
    ``wire.Rows``, unpacked as they are read)."""
    base = os.getcwd()  # once, not for each of a million rows' frames
    shown = _StackText(base)
    lines: list[str] = ["", "Every task:"]
    for task in data.get("tasks", []):
        state = task["state"]
        if state == "await task" and task.get("awaiting") is not None:
            state = f"await task {task['awaiting']}"
        blocked = f", {duration(task['blocked_s'])}" if task.get("blocked_s") else ""
        lines.append("")
        lines.append(f"task {task['id']} [{state}{blocked}] {task.get('name') or ''!s} "
                     f"(loop {task.get('loop')}, group {task.get('group')})")
        stack = task.get("stack")
        lines.append(shown.block(stack, "    ") if stack else "    " + NO_FRAMES)
        if task.get("awaiting_all"):
            lines.append(f"  awaiting tasks {', '.join(map(str, task['awaiting_all']))}")
        if task.get("awaited_by"):
            lines.append(f"  awaited by task {', '.join(map(str, task['awaited_by']))}")
        created = task.get("created_by")
        if created:
            where = f" in task {task['created_in']}" if task.get("created_in") is not None else ""
            lines.append(f"  created by {shown.block(created, '', 0, 1)}{where}")
            if len(created) > 1:
                lines.append(shown.block(created, "      ", 1))
        elif recorded:
            lines.append(f"  {BEFORE_PROBE}")
        yield from lines
        lines.clear()
    lines.extend(["", "Every thread:"])
    for thread in data.get("threads", []):
        kernel = thread.get("kernel") or {}
        blocked = f", {duration(thread['blocked_s'])}" if thread.get("blocked_s") else ""
        cpu = thread.get("cpu_s")
        lines.append("")
        lines.append(f"thread {thread.get('native_id')} [{thread['state']}{blocked}] "
                     f"{thread.get('name')!s}{' (daemon)' if thread.get('daemon') else ''}: "
                     f"kernel {kernel.get('state') or '?'}/{kernel.get('syscall') or '?'}, "
                     f"cpu {'?' if cpu is None else f'{cpu:.2f}s'}")
        lines.extend(_stack_lines(thread.get("stack"), base=base))
    yield from lines


class _StackText:
    """Each stack's lines made once: the rows of a reply share its few distinct stacks
    (``wire.with_stacks``), and a million rows made each frame's text anew."""

    __slots__ = ("base", "made")

    def __init__(self, base: str) -> None:
        self.base = base
        self.made: dict[tuple, tuple] = {}  # (id, indent, start, stop) -> (the stack, its text)

    def block(self, stack: list, indent: str, start: int = 0, stop: int | None = None) -> str:
        """Frames ``start`` to ``stop`` of ``stack``, a line each after ``indent``."""
        return _made_once(self.made, stack, (id(stack), indent, start, stop),
                         lambda: "\n".join(indent + frame_text(f, self.base) for f in stack[start:stop]))


def render_ls(rows: list[dict[str, Any]]) -> str:
    """The ``tasktop ls`` table."""
    if not rows:
        return "no process with a tasktop probe is running (start one with TASKTOP=1 python app.py)\n"
    head = f"{'PID':>7}  {'TASKS':>7}  {'THREADS':>7}  {'RSS':>10}  {'UPTIME':>8}  COMMAND"
    out = [head]
    for row in rows:
        out.append(f"{row['pid']:>7}  {row.get('tasks', '?'):>7}  {row.get('threads', '?'):>7}  "
                   f"{size(row.get('rss_bytes')):>10}  {duration(row.get('uptime_s')):>8}  "
                   f"{row.get('command', '')}")
    return "\n".join(out) + "\n"


def render_dead(rows: list[dict[str, Any]], directory: str) -> str:
    """The ``tasktop ls --dead`` table: flight recordings of processes that are gone."""
    if not rows:
        return f"no flight recording of a finished process in {directory}\n"
    out = [f"{'PID':>7}  {'LAST RECORD':19}  {'SPAN':>8}  {'SIZE':>8}  {'ENDED':22}  COMMAND"]
    for row in rows:
        last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["last_s"]))
        out.append(f"{row['pid']!s:>7}  {last:19}  {duration(row['last_s'] - row['first_s']):>8}  "
                   f"{size(row['bytes']):>8}  {row['ended']:22}  {row['command']}")
        out.append(f"{'':7}  tasktop replay {row['path']}")
    return "\n".join(out) + "\n"
