"""How the probe learns which event loops exist and where each task was created.

Two hooks, both installed once and both pass-through when the probe is stopped:

* Loops are noticed when they are built (``BaseEventLoop.__init__``) and when they start
  running (``asyncio._set_running_loop``, which uvloop also calls; uvloop binds it at import,
  so the hook must be in place before uvloop is imported: the ``.pth`` boot does that).  The
  probe thread also finds loops that were already running when it started, from their
  threads' frames.  No global task set is read to *find* loops, so this holds on 3.14 too.

* Creation sites come from a task factory set on every loop.  It chains to the factory the
  application set (before or after us): ``set_task_factory`` is wrapped so that a factory set
  later is wrapped too, and ``get_task_factory`` still returns the application's own.  The
  site is taken *before* the inner factory runs, because an eager task runs its first step
  inside it.  Every keyword is forwarded untouched (``context``, ``name``, ``eager_start``).
  Frames of libraries that only pass a coroutine on to ``create_task`` (anyio's task groups)
  are skipped until the caller's frame, so ``tg.start_soon(...)`` is the site, not anyio.

Merely setting a task factory changes task names on CPython before 3.14, where
``create_task`` does not pass ``name`` to the factory but sets it afterwards: the task has
already taken a default "Task-N" number, so later tasks are numbered differently, and
3.13.0-3.13.2 even rename every unnamed task "None".  Where that is detected,
``BaseEventLoop.create_task`` is wrapped so that while our factory is the only one, the name
goes straight to the task, exactly as without a factory.  (uvloop names its tasks the same
way with or without one.)

A task's record (``TaskInfo``) is a weak reference to the task, so the probe never keeps a
task alive, and it is found from the task among the task's own weak references
(``weakref.getweakrefs``), not in a dict of every record: such a dict cost the creation hook
114-158 ns a task and the process 73 MiB at a million tasks (its own table, and the heap
holes left once glibc raised its mmap threshold for its freed one; bench/README).  The records
are kept alive by lists, in creation order, which is the order a pass walks them in
(``task_pass._Walk``): ``made``, appended by the hooks, and ``kept``, where the probe thread
moves them to and leaves out those of freed tasks.
"""
from __future__ import annotations

import asyncio
import contextvars
import gc
import itertools
import os
import sys
import threading
import time
import weakref
from asyncio import base_events, events
from typing import Any, Callable

from . import endings, record_lists, registry
from .foreign_frames import paused
from .frames import resolve

_Task = asyncio.Task


def _current_task_of() -> Callable[[Any], Any]:
    """``asyncio.current_task``, or before 3.12, where it is Python code reading a dict by
    loop, that dict's ``get``: the hook asks once per task, a Python call less each time."""
    table = getattr(asyncio.tasks, "_current_tasks", None)
    if type(asyncio.current_task) is type(_current_task_of) and type(table) is dict:
        return table.get
    return asyncio.current_task


_current_task = _current_task_of()  # called with the loop, never None
_getframe = sys._getframe
_CREATE_TASK_CODE = base_events.BaseEventLoop.create_task.__code__
_HANDLE_RUN = events.Handle._run.__code__
_RUN_ONCE = base_events.BaseEventLoop._run_once.__code__
_get_ident = threading.get_ident
_get_running_loop = events._get_running_loop
#: The module of a caller's frame without making a frame object for it (3.12+).
_frame_module = getattr(sys, "_getframemodulename", None)
_sys_modules = sys.modules
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
#: Packages whose frames only hand a coroutine on to ``create_task``: skipped when they sit
#: between ``create_task`` and the application's line (found in ``sys.modules``, never imported).
SPAWNERS = ("anyio",)
_spawner_dirs: tuple = ()
_modules_seen = -1  # len(sys.modules) when _spawner_dirs was found

#: Sequence numbers for tasks: small integers, like goroutine ids.
_seq = itertools.count(1)

made = record_lists.made  # records since the probe thread last took them: see record_lists
_made = made.append
#: None while the probe thread makes a record for a task no hook of ours recorded (``info_for``),
#: a new object after each time: the creation hook looks at the task's other records only
#: when this moved while it made one (see ``_settle``).
adopting: Any = object()
#: Hand-offs of the GIL ``info_for`` waits at most for a record another thread is making.
WAIT_COMPLETE = 100
#: Whether the collector is at work (set by its ``gc.callbacks``).  It clears the weak references
#: of everything it found unreachable, then runs finalizers, which may hand the GIL to the probe
#: thread: a task it is destroying has no record then, and one made for it has no creation site
#: when asyncio reports the task lost a moment later (seen on 3.14, whose task lists hold it).
collecting = False

# Every loop we have seen, and the thread we last saw running it.
loops: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()
loop_threads: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
#: Called with each loop as it is created or starts running, on the thread doing so (the
#: probe's GIL hand-off timer must be on a loop before the loop can starve the probe).
loop_listeners: list = []
#: Called with each loop as it starts running, on its thread (``_set_running_loop``), after
#: ``loop_listeners``: a loop that ran before has a timer late by all the time it was stopped.
start_listeners: list = []
#: Loops started running, in all (``_set_running_loop``): the probe's heartbeat looks for loops
#: at once when this moves (see loops.LoopWatches.heartbeat).
loop_starts = 0

#: Interned creation stacks (see _intern); ``interned_generation`` changes when it is cleared.
_interned: dict = {}
interned_generation = 0
MAX_SITES = 50_000

#: Per thread: the raw stack from the running loop's ``Handle._run`` outwards, cut to each
#: depth that may be left (see _stack_of).
_tails: dict = {}

_active = False
_depth = 4
_record_sites = True
_installed = False
_originals: dict = {}  # class -> (set_task_factory, get_task_factory) before we wrapped them
_own: dict = {}  # class -> {name: what its own __dict__ held (or _MISSING)}, for restore()
_MISSING = object()
_orig_set_running_loop = None
_orig_init = None
_orig_create_task = None
#: restore() left our ``__init__`` / ``_set_running_loop`` wrapped by somebody else's wrapper,
#: which still calls ours: they are not wrapped again.
_wrapped_init_kept = False
_wrapped_running_kept = False


class TaskInfo(weakref.ref):
    """What the probe keeps per task, as a weak reference to the task (one object per task).

    ``site`` is the creation stack as one flat tuple ``(code, f_lasti, code, f_lasti, ...)``,
    innermost first (one object, not one per frame: fewer for the collector to track); line
    numbers are worked out only when a client asks (``frames.resolve``).  ``target`` is a
    weak reference to the primitive the task waits on, found by the pass that walked its chain
    (or a ``waits`` look), until a pass sees its waiter change (an eighth slot costs nothing
    from 3.10 on: 136 bytes are rounded up to 144 anyway).

    ``seq`` (the task's id) and ``born`` are kept in ``number`` and ``birth``: as they are for
    a task made alone, and for tasks made in a burst (see ``BORN_GRAIN``) as ``birth``, a
    ``(first seq, born)`` tuple the burst shares, and ``number``, the task's place in it: a
    small int, of which CPython keeps one object each.  An int of its own per task was 32
    bytes, a tenth of what the probe kept per task at a million.
    """

    __slots__ = ("number", "parent", "site", "waiter", "since", "cache", "birth", "target")

    @property
    def seq(self) -> int:
        """The task's id: 1, 2, 3, ... in the order the records were made (like goroutine ids)."""
        birth = self.birth
        return birth[0] + self.number if type(birth) is tuple else self.number

    @property
    def born(self) -> float | None:
        """When the task was made (``time.monotonic``, to ``BORN_GRAIN``), None if not known
        (a task no factory of ours made)."""
        birth = self.birth
        return birth[1] if type(birth) is tuple else birth

    @born.setter
    def born(self, value: float | None) -> None:
        self.number, self.birth = self.seq, value


_now = time.monotonic
#: Tasks made within ``BORN_GRAIN`` seconds of each other share one ``born`` float and one
#: ``(first seq, born)`` tuple their seqs are counted from (a burst): a burst of a million
#: tasks kept a million floats (32 MB) and a million ints (32 MB), for lifetimes shown to the
#: millisecond.  At most ``BURST`` tasks after the first: a place in it stays a small int
#: (CPython keeps one object of each from -5 to 256).
BORN_GRAIN = 1e-4
BURST = 256
#: The burst of the task our factory made last: ``(first seq, born, shared tuple or None)``,
#: the tuple made when a second task joins (a task made alone keeps its seq and born as they
#: are).  Replaced whole, never changed: a thread always reads one burst's three together.
_burst: tuple = (0, -1.0, None)
#: The done-callback every task we make gets (``end_history.task_done``, set by the probe), or None.
on_done: Callable | None = None
#: Whether the task being made gets ``on_done``: ``next(follow, False)`` per task, an iterator
#: ``end_history`` replaces (its rate limit); endless until then.
follow = itertools.repeat(True)
#: The empty context ``on_done`` runs in, one per loop (by id): without it, each task would keep
#: a copy of the context it was made in for the callback, one more object per task for the
#: collector to track.  Not one for all: a context entered by one thread's loop cannot be
#: entered by another's meanwhile (``RuntimeError`` in the host's loop).
_contexts: dict = {}
#: Contexts kept at most: a process that makes loop after loop (``asyncio.run`` per test) does
#: not keep one for each; a loop whose context was dropped gets a new one.
CONTEXTS = 256


def context_for(loop: Any) -> contextvars.Context:
    """The empty context the done-callbacks of ``loop``'s tasks run in (see ``_contexts``)."""
    context = _contexts.get(id(loop))
    if context is None:
        if len(_contexts) >= CONTEXTS:
            _contexts.clear()
        context = _contexts[id(loop)] = contextvars.Context()
    return context

departed = record_lists.departed  # the records of the tasks freed last: see record_lists


def _forget(info: "TaskInfo", keep: Any = departed.append, drop: Any = record_lists.drop,
            freed: Any = record_lists.FREED) -> None:
    """A record's callback: its task was freed; the record is marked so (``waiter``, see
    ``record_lists.FREED``) and waits in ``departed`` (before it is counted: see
    ``record_lists.fingerprint``)."""
    info.waiter = freed
    keep(info)
    drop()


_getweakrefs = weakref.getweakrefs
_hash = hash


def _oldest(task: Any) -> TaskInfo | None:
    """The first record made for ``task`` (while two are made at once, the one that counts):
    a task's weak references are listed newest first (CPython links each new one with a
    callback in at the head of the object's list)."""
    found = None
    for ref in _getweakrefs(task):
        if type(ref) is TaskInfo:
            found = ref
    return found


def _new(task: asyncio.Task, parent: int | None, site: tuple | None) -> TaskInfo:
    """A record for ``task``: found among its weak references from the moment it is made, and
    complete only once its ``number`` is set, last (see ``record_of``)."""
    info = TaskInfo(task, _forget)
    seq = next(_seq)
    if not hasattr(info, "site"):  # else the creation hook gave it its own meanwhile (_settle)
        info.birth = None
        info.parent = parent
        info.site = site
    info.waiter = None  # weakref to the future the task was last seen waiting on (``since``
    # and ``cache`` are set by the pass that first sees it: fewer stores here)
    _hash(info)  # kept by the reference: found by address once the task is freed (``departed``)
    info.number = seq
    return info


def adopt(task: asyncio.Task) -> TaskInfo:
    """A record for a task no hook of ours recorded (made before the probe, or without our
    factory), or the one it has if another thread made one meanwhile: the oldest counts, and
    only its maker keeps it in ``made`` (see ``_settle``)."""
    info = _new(task, None, None)
    found = _oldest(task)
    if found is info:
        _made(info)
    return found


def _settle(task: asyncio.Task, info: TaskInfo) -> TaskInfo:
    """The creation hook's record ``info`` when another may have been made for the task
    meanwhile (by the probe thread, or by the task's own eager first step, from a task it
    made): the oldest counts, and is given what ``info`` knows about where it was made."""
    found = _oldest(task)
    if found is info:
        _made(info)
    elif found is not None and getattr(found, "site", None) is None:
        if _complete(found):
            found.parent, found.site = info.parent, info.site
            if found.birth is None:
                found.born = info.born
        else:  # its maker (``_new``) leaves these as they are
            found.birth, found.parent, found.site = info.born, info.parent, info.site
    return found or info


class _Nothing:
    pass


#: The record of the task that last made a task (a weak reference, dead at first), and its
#: seq: one int shared by the ``parent`` of all the tasks it makes.
_last_parent: tuple = (TaskInfo(_Nothing()), 0)
#: The creation site the hook's common case found last, and what it was found from: the
#: caller's code and instruction, and the thread's shared tail (see _create).
_last_site: tuple = (None, -1, None, None)


_WeakRef = weakref.ReferenceType


def record_of(task: Any) -> TaskInfo | None:
    """The record of ``task`` (or of the task of a weak reference: asyncio's registry holds
    those), or None; also None while another thread is still making it: a record is complete
    once its ``number`` is set, which its maker does last.  ``_oldest`` is inlined: this is one
    Python call a task for a look-up over a registry of a million."""
    if type(task) is _WeakRef:
        task = task()
    found = None
    try:
        for other in _getweakrefs(task):
            if type(other) is TaskInfo:
                found = other
        if found is not None:
            found.number  # complete
    except (TypeError, AttributeError):  # not weakly referenceable; not complete
        return None
    return found


def _complete(info: TaskInfo, number: Any = TaskInfo.number) -> bool:
    try:
        number.__get__(info)
        return True
    except AttributeError:
        return False


def find_record(task: Any) -> TaskInfo | None:
    """The record of a task, also one freed a moment ago (see ``departed``): the newest record
    with the task's hash, which is its address, still its own while it is finalized."""
    info = record_of(task)
    if info is not None:
        return info
    try:
        return _dead_record(hash(task))
    except Exception:
        return None


def _dead_record(key: int) -> TaskInfo | None:
    """The newest record of a freed task at address ``key`` (in ``departed``; each record's
    hash was taken when it was made, so a dead one still has it)."""
    return next((d for d in reversed(departed) if hash(d) == key), None)


def info_for(task: asyncio.Task) -> TaskInfo:
    """The task's record, created (with no creation site) for tasks made before the hook, or
    given back what the task's own record knew if the collector took that one (see _revived).
    The probe thread's (see ``adopting``: one thread only may set it).  None if another
    thread's record of the task is still not complete after WAIT_COMPLETE hand-offs, or if
    it has none while the collector is at work (see ``collecting``)."""
    global adopting
    info = record_of(task)
    if info is None:
        if collecting:  # maybe a task the collector is destroying: the next pass, if it lives
            return None
        adopting = None
        try:
            info = adopt(task)
        finally:
            adopting = object()
        for _ in range(WAIT_COMPLETE):  # one a loop's thread is making this moment: it ends
            if _complete(info):  # its hook within a few instructions once it has the GIL
                break
            time.sleep(0)
        else:
            return None
        if info.site is None:
            _revived(task, info)
    return info


def _revived(task: Any, info: TaskInfo) -> None:
    """A task our factory made whose record's weak reference the collector cleared while the
    task lived on gets its creation site, parent and birth back from that record.

    The collector clears the weak references to all it found unreachable before it runs their
    finalizers; one may make a task reachable again (a coroutine closed by the collector
    cancels the future it awaited, which puts the task's wake-up on its loop: seen on uvloop),
    and asyncio reports the task as lost later, when it is freed for good.  The old record is
    in ``departed`` by then (its callback ran when it was cleared): the newest one at the
    task's address, which no other live object can have.  Only for a task that carries our
    done-callback (made by our factory, so it had a record): a task made elsewhere may sit at
    the address of a freed one of ours."""
    try:
        if on_done is None or not any(cb[0] is on_done for cb in task._callbacks or ()):
            return
        old = _dead_record(hash(task))
        if old is not None:
            info.parent, info.site = old.parent, old.site
            if old.born is not None:
                info.born = old.born
    except Exception:
        pass


def creation_stack(task: Any) -> tuple | None:
    """The task's creation stack as ``(code, line)`` pairs, innermost first, or None."""
    info = record_of(task)
    site = getattr(info, "site", None)
    if not site:
        return None
    return site.raw if hasattr(site, "raw") else resolve(site)  # a SiteKey has it resolved


def _spawner_prefixes() -> tuple:
    """Directories of the ``SPAWNERS`` imported so far; looked for again only when
    ``sys.modules`` has grown (a capture must not search it every time)."""
    global _spawner_dirs, _modules_seen
    seen = len(sys.modules)
    if seen != _modules_seen:
        _modules_seen = seen
        found = []
        for name in SPAWNERS:
            module = sys.modules.get(name)
            path = getattr(module, "__file__", None)
            if path:
                found.append(os.path.dirname(os.path.abspath(path)) + os.sep)
        _spawner_dirs = tuple(found)
    return _spawner_dirs


def _stack_of(frame, as_key: bool) -> tuple:
    """The raw creation stack from ``frame`` (the caller of ``create_task``) outwards, as a
    flat ``(code, f_lasti, ...)`` tuple, or with ``as_key`` the same with each code (and the
    shared tail) as its id, the key it is interned by (see _intern).  ``f_lineno`` costs a
    line-table scan per frame, ``f_lasti`` none.  The last item may be a tuple of more such
    pairs, shared by many stacks
    (the loop's machinery, below): ``frames.resolve`` flattens it.

    Leading frames of the probe and of the ``SPAWNERS`` are skipped without using up the
    depth; asyncio's frames are kept (the formatter drops them) so that a task asyncio makes
    on its own still shows where.  If nothing but library frames is found, the innermost
    skipped one is kept: it is the best answer there is.

    Once the walk reaches the event loop's ``Handle._run`` after a frame of the application,
    the rest of the stack is the loop's own machinery and whatever ran the loop: when that is
    asyncio's ``_run_once``, the same for every callback until the thread's running loop
    changes, so it is walked once and kept (``_tails``; ``_set_running_loop`` forgets it).
    Most tasks are made from a coroutine, two or three frames below ``Handle._run``: this
    halves the walk.
    """
    spawners = _spawner_dirs if len(_sys_modules) == _modules_seen else _spawner_prefixes()
    raw = []
    append = raw.append
    skipped = None
    outside = False  # met a frame that is neither asyncio's nor a spawner's
    n = _depth + 3  # room for asyncio's own frames, dropped when formatted
    hops = 0  # frames skipped
    while frame is not None and n:
        code = frame.f_code
        if not outside:
            name = code.co_filename
            if name == _HOOKS_FILE or (spawners and name.startswith(spawners)):
                if skipped is None and name != _HOOKS_FILE:
                    skipped = [id(code) if as_key else code, frame.f_lasti]
                frame = frame.f_back
                hops += 1
                if hops > 64:
                    break
                continue
            outside = not name.startswith(_ASYNCIO_DIR)
        elif code is _HANDLE_RUN and getattr(frame.f_back, "f_code", None) is _RUN_ONCE:
            # Run by asyncio's own loop: a loop that runs handles from elsewhere too (a GUI
            # toolkit's timers) has other frames below, and is walked every time.
            thread = _get_ident()
            tails = _tails.get(thread)
            if tails is None:
                tail = _walk(frame, _depth + 3)
                tails = _tails[thread] = [tail[:2 * k] for k in range(_depth + 4)]
            append(id(tails[n]) if as_key else tails[n])  # shared, not copied: see frames.resolve
            break
        append(id(code) if as_key else code)
        append(frame.f_lasti)
        frame = frame.f_back
        n -= 1
    if not outside and skipped is not None:
        raw[0:0] = skipped
    return tuple(raw)


def _intern(key: tuple, raw: tuple) -> tuple:
    """One tuple per distinct creation stack, shared by every task made there: a tuple per
    task, kept as long as the task, cost the collector about 0.5 us a task.  Keyed by the ids
    of its codes (hashing a code object costs 130-360 ns); the interned tuple holds the codes,
    so their ids cannot be reused while it is kept."""
    global interned_generation
    if len(_interned) >= MAX_SITES:
        _interned.clear()
        interned_generation += 1
    _interned[key] = raw
    return raw


def _walk(frame, n: int) -> tuple:
    """``(code, f_lasti, ...)`` of ``frame`` and its callers, at most ``n`` frames."""
    raw = []
    while frame is not None and n:
        raw.append(frame.f_code)
        raw.append(frame.f_lasti)
        frame = frame.f_back
        n -= 1
    return tuple(raw)


# As the interpreter names this file in frames and tracebacks.
_HOOKS_FILE = _stack_of.__code__.co_filename


def _new_task(loop, coro, **kwargs):
    """What ``create_task`` does when no factory is set (our factory's inner default)."""
    task = _Task(coro, loop=loop, **kwargs)
    tb = getattr(task, "_source_traceback", None)  # only in asyncio debug mode
    if tb:
        _trim_traceback(tb)
    return task


def _trim_traceback(tb: list) -> None:
    """create_task drops its own line from a debug-mode traceback when no factory is set:
    drop ours and it."""
    while tb and tb[-1].filename == _HOOKS_FILE:
        del tb[-1]
    if tb and tb[-1].name == "create_task" and tb[-1].filename == _CREATE_TASK_CODE.co_filename:
        del tb[-1]


def _create(loop, coro, inner: Callable | None, kwargs: dict, caller: int = 2, factory: bool = True):
    """What our factory does: note where the task is made and by which task, have ``inner``
    (or ``asyncio.Task``) make it, and record it.  Called by the factory, and straight from
    ``create_task`` when our pass-through factory is the only one (see _wrap_create_task).
    ``caller`` is how far up the caller of ``create_task`` (or of the factory) is: reaching it
    with ``_getframe(caller)`` makes no frame objects for our own frames on the way."""
    global _last_parent, _burst, _last_site
    if not _active:
        if inner is None:
            return _new_task(loop, coro, **kwargs)
        return inner(loop, coro, **kwargs)
    site = parent = None
    try:
        if _record_sites:
            if factory and _frame_module is not None and _frame_module(caller) == "asyncio.base_events":
                caller += 1  # loop.create_task, which called the factory: asyncio's frame, dropped anyway
            frame = _getframe(caller)
            # The common case of _stack_of, inlined (the same key, a third of the time): made
            # by a task's own coroutine, which asyncio's loop runs from Handle._run.
            code, back, lasti = frame.f_code, frame.f_back, frame.f_lasti
            tails = _tails.get(_get_ident())
            last = _last_site
            if (code is last[0] and lasti == last[1] and tails is last[2] and back is not None
                    and back.f_code is _HANDLE_RUN and back.f_back.f_code is _RUN_ONCE):
                site = last[3]  # the same line as the task before: most tasks come in a loop
            else:
                by_loop = (back is not None and back.f_code is _HANDLE_RUN and tails is not None
                           and len(_sys_modules) == _modules_seen
                           and getattr(back.f_back, "f_code", None) is _RUN_ONCE)
                name = code.co_filename
                by_loop = (by_loop and not name.startswith(_ASYNCIO_DIR) and name != _HOOKS_FILE
                           and not (_spawner_dirs and name.startswith(_spawner_dirs)))
                key = (id(code), lasti, id(tails[_depth + 2])) if by_loop else _stack_of(frame, True)
                site = _interned.get(key) or _intern(key, _stack_of(frame, False))
                if by_loop:
                    _last_site = (code, lasti, tails, site)
            frame = back = code = last = None
        current = _current_task(loop)
        if current is not None:
            last = _last_parent  # a task that makes one task often makes many
            if last[0]() is not current:
                made_it = _oldest(current) or adopt(current)
                last = _last_parent = (made_it, made_it.seq)
            parent = last[1]
    except Exception:
        pass
    # What tells whether another record may be made for the task while this one is (_settle).
    seen, before = adopting, _last_parent
    born = _now()  # before an eager task's first step, which is part of its life
    if inner is not None:
        task = inner(loop, coro, **kwargs)
    else:
        task = _Task(coro, loop=loop, **kwargs) if kwargs else _Task(coro, loop=loop)
        if task._source_traceback:  # asyncio debug mode only
            _trim_traceback(task._source_traceback)
    try:  # _new, inlined: this is the one call per task that has to be cheap
        info = TaskInfo(task, _forget)
        seq = next(_seq)
        info.parent = parent
        info.site = site
        info.waiter = None
        _hash(info)
        burst = _burst
        nth = seq - burst[0]  # below 0 if another thread started a burst since next(_seq): still right
        # (Not before the burst: an eager task is born before the tasks its first step made.)
        if 0.0 <= born - burst[1] < BORN_GRAIN and nth <= BURST:
            shared = burst[2]
            if shared is None:  # the burst's second task
                shared = burst[:2]
                _burst = (burst[0], burst[1], shared)
            info.birth = shared
            info.number = nth
        else:
            _burst = (seq, born, None)
            info.birth = born
            info.number = seq
        # Nobody else can have made a record for the task unless the probe thread was making
        # some (``adopting`` None or moved) or the task ran its first step eagerly and made a
        # task (which recorded it as the parent: ``_last_parent`` moved).
        if adopting is seen is not None and _last_parent is before:
            _made(info)
        else:
            _settle(task, info)
        if on_done is not None and next(follow, False):
            task.add_done_callback(on_done, context=_contexts.get(id(loop)) or context_for(loop))
    except Exception:
        pass
    return task


def _make_factory(inner: Callable | None) -> Callable:
    inner = getattr(inner, "_tasktop_inner", inner)  # never wrap ourselves twice
    if inner is None:
        return _pass_through

    def factory(loop, coro, **kwargs):
        return _create(loop, coro, inner, kwargs)

    factory._tasktop_inner = inner  # type: ignore[attr-defined]
    return factory


def _pass_through(loop, coro, **kwargs):
    """Our factory on a loop that has no factory of its own (one object: create_task's
    wrapper knows it by identity)."""
    return _create(loop, coro, None, kwargs)


_pass_through._tasktop_inner = None  # type: ignore[attr-defined]


def _raw_methods(loop) -> tuple[Callable, Callable]:
    for cls in type(loop).__mro__:
        if cls in _originals:
            return _originals[cls]
    return type(loop).set_task_factory, type(loop).get_task_factory


def install_factory(loop) -> None:
    """Put our factory on ``loop``, chained to whatever factory it has now.  Idempotent."""
    watch_endings(loop)
    try:
        set_raw, get_raw = _raw_methods(loop)
        current = get_raw(loop)
        if current is not None and hasattr(current, "_tasktop_inner"):
            return
        set_raw(loop, _make_factory(current))
    except Exception:
        pass


def has_factory(loop) -> bool:
    try:
        return hasattr(_raw_methods(loop)[1](loop), "_tasktop_inner")
    except Exception:
        return True  # nothing we could do about it anyway


def _wrap_class(cls: type) -> None:
    """Wrap ``set/get_task_factory`` of a loop class so a later application factory is chained."""
    if cls in _originals or any(c in _originals for c in cls.__mro__):
        return
    orig_set, orig_get = cls.set_task_factory, cls.get_task_factory

    def set_task_factory(self, factory):
        if not _active or (factory is not None and not callable(factory)):
            return orig_set(self, factory)  # the original raises TypeError as before
        return orig_set(self, _make_factory(factory))

    def get_task_factory(self):
        factory = orig_get(self)
        return getattr(factory, "_tasktop_inner", factory)

    for fn, orig in ((set_task_factory, orig_set), (get_task_factory, orig_get)):
        fn.__name__, fn.__qualname__, fn.__doc__ = orig.__name__, orig.__qualname__, orig.__doc__
    own = {name: cls.__dict__.get(name, _MISSING) for name in ("set_task_factory", "get_task_factory")}
    try:
        cls.set_task_factory = set_task_factory
        cls.get_task_factory = get_task_factory
    except (TypeError, AttributeError):
        return  # a static type: the probe thread re-installs the factory when it is replaced
    _originals[cls] = (orig_set, orig_get)
    _own[cls] = own


def _factory_changes_names() -> bool:
    """Whether ``BaseEventLoop.create_task`` sets the name *after* calling a factory instead of
    passing it (CPython < 3.14).  Found out by running it on stand-ins."""
    passed = {}

    class _StandInTask:
        def set_name(self, value):
            pass

    class _StandInLoop:
        def _check_closed(self):
            pass

    def factory(_loop, _coro, **kwargs):
        passed.update(kwargs)
        return _StandInTask()

    loop = _StandInLoop()
    loop._task_factory = factory
    try:
        base_events.BaseEventLoop.create_task(loop, None, name="probe")
    except Exception:
        return False  # a create_task we do not understand: leave it alone
    return "name" not in passed


def _wrap_create_task() -> None:
    global _orig_create_task
    orig = _orig_create_task = base_events.BaseEventLoop.create_task

    def create_task(self, coro, **kwargs):
        if self._task_factory is _pass_through:
            # Only our pass-through factory is set: create the task the way create_task does
            # without a factory, with its name from the start.
            self._check_closed()
            return _create(self, coro, None, kwargs, 2, False)
        return orig(self, coro, **kwargs)

    create_task.__name__, create_task.__qualname__, create_task.__doc__ = \
        orig.__name__, orig.__qualname__, orig.__doc__
    base_events.BaseEventLoop.create_task = create_task


def note_loop(loop, thread_ident: int | None) -> None:
    """Remember ``loop`` (and the thread running it), and hook its task creation."""
    if loop not in loops:
        loops.add(loop)
        _wrap_class(type(loop))
    if thread_ident is not None:
        loop_threads[loop] = thread_ident
    install_factory(loop)
    for listener in list(loop_listeners):
        try:
            listener(loop)
        except Exception:
            pass


def _set_running_loop(loop):
    _tails.pop(_get_ident(), None)  # the loop machinery below callbacks is about to change
    before = _get_running_loop()
    _orig_set_running_loop(loop)
    if loop is not None and _active:
        try:
            note_loop(loop, threading.get_ident())
            if before is not loop:  # a loop running already (nest_asyncio's nested run) is no start
                for listener in list(start_listeners):
                    listener(loop)
        except Exception:
            pass
        global loop_starts
        loop_starts += 1  # after note_loop: a look it sets off finds the loop


def _loop_init(self, *args, **kwargs):
    _orig_init(self, *args, **kwargs)
    if _active:
        try:
            note_loop(self, None)
        except Exception:
            pass


def _wrap_exception_handler(cls: type) -> None:
    """Wrap ``call_exception_handler`` so the probe counts tasks that ended unseen (see
    ``endings``), then the handler the user would see runs as before."""
    original = cls.call_exception_handler
    if getattr(original, "_tasktop_inner", None) is not None:
        return

    def call_exception_handler(self, context):
        if _active:
            endings.observe(context, find_record)
        return original(self, context)

    call_exception_handler.__name__ = original.__name__
    call_exception_handler.__qualname__ = original.__qualname__
    call_exception_handler.__doc__ = original.__doc__
    call_exception_handler._tasktop_inner = original
    cls.call_exception_handler = call_exception_handler


def watch_endings(loop: Any) -> None:
    """On a loop whose class cannot be wrapped (uvloop), count the tasks that ended unseen
    through its exception handler, chained to the one it has.  Once per loop; a handler the
    application sets later replaces ours there."""
    if isinstance(loop, base_events.BaseEventLoop):
        return  # its class's call_exception_handler is wrapped
    try:
        current = loop.get_exception_handler()
        if getattr(current, "_tasktop_endings", False):
            return

        def handler(loop_, context, _inner=current):
            if _active:
                endings.observe(context, find_record)
            if _inner is not None:
                return _inner(loop_, context)
            return loop_.default_exception_handler(context)

        handler._tasktop_endings = True
        handler._tasktop_inner = current  # what restore() puts back
        loop.set_exception_handler(handler)
    except Exception:
        pass


def _on_collection(phase: str, _info: dict) -> None:
    """The collector's callback (``gc.callbacks``): see ``collecting``."""
    global collecting
    collecting = phase == "start"


def install(depth: int = 4, record_sites: bool = True) -> None:
    """Install the hooks (once per process) and switch them on."""
    global _installed, _active, _depth, _record_sites, _orig_set_running_loop, _orig_init
    _depth, _record_sites = depth, record_sites
    _tails.clear()
    if not _installed:
        # Once per process, unless restore() could put the original back: a wrapper that
        # somebody laid over ours since calls ours, which must not call that wrapper again.
        if events._set_running_loop is not _set_running_loop and not _wrapped_running_kept:
            _orig_set_running_loop = events._set_running_loop
            events._set_running_loop = _set_running_loop
            asyncio._set_running_loop = _set_running_loop
        if base_events.BaseEventLoop.__init__ is not _loop_init and not _wrapped_init_kept:
            _orig_init = base_events.BaseEventLoop.__init__
            base_events.BaseEventLoop.__init__ = _loop_init
        _wrap_class(base_events.BaseEventLoop)
        _wrap_exception_handler(base_events.BaseEventLoop)
        if base_events.BaseEventLoop.create_task.__module__ != __name__ and _factory_changes_names():
            _wrap_create_task()
        uvloop = sys.modules.get("uvloop")
        if uvloop is not None and isinstance(getattr(uvloop, "Loop", None), type):
            _wrap_class(uvloop.Loop)
        _installed = True
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)
    _active = True
    running = events._get_running_loop()
    if running is not None:
        note_loop(running, threading.get_ident())


def uninstall() -> None:
    """Switch the hooks off: factories already set become pass-through."""
    global _active, collecting
    _active = False
    while _on_collection in gc.callbacks:
        gc.callbacks.remove(_on_collection)
    collecting = False


def restore() -> None:
    """Put back everything :func:`install` changed (``tasktop detach``): each loop's own task
    factory (or none), the classes' methods, ``_set_running_loop``, ``BaseEventLoop``'s
    ``__init__`` and ``create_task``.  A wrapper somebody else has wrapped since is left in
    place: it is pass-through while the hooks are off.  Records of live tasks stay (weak
    references, gone with their tasks); a later :func:`install` starts over."""
    global _installed, _orig_create_task, _wrapped_init_kept, _wrapped_running_kept
    uninstall()
    if not _installed:
        return
    for loop in registry.copy_set(loops):
        try:
            set_raw, get_raw = _raw_methods(loop)
            current = get_raw(loop)
            if hasattr(current, "_tasktop_inner"):
                set_raw(loop, current._tasktop_inner)
            handler = loop.get_exception_handler()
            if getattr(handler, "_tasktop_endings", False):
                loop.set_exception_handler(handler._tasktop_inner)
        except Exception:
            pass
    handler = base_events.BaseEventLoop.__dict__.get("call_exception_handler")
    if getattr(handler, "_tasktop_inner", None) is not None:
        base_events.BaseEventLoop.call_exception_handler = handler._tasktop_inner
    for cls, own in list(_own.items()):
        for name, value in own.items():
            try:
                if value is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, value)
            except Exception:
                pass
    _own.clear()
    _originals.clear()
    if events._set_running_loop is _set_running_loop:
        events._set_running_loop = _orig_set_running_loop
        if asyncio._set_running_loop is _set_running_loop:
            asyncio._set_running_loop = _orig_set_running_loop
    else:
        _wrapped_running_kept = True
    if base_events.BaseEventLoop.__init__ is _loop_init:
        base_events.BaseEventLoop.__init__ = _orig_init
    else:
        _wrapped_init_kept = True
    if _orig_create_task is not None and base_events.BaseEventLoop.create_task.__module__ == __name__:
        base_events.BaseEventLoop.create_task = _orig_create_task
    _orig_create_task = None
    loops.clear()
    loop_threads.clear()
    _tails.clear()
    _installed = False


def discover_loops() -> None:
    """Find loops that were running before the hooks were in place, from their threads' frames.

    The frames are let go of before anything is posted to a loop (which gives up the GIL):
    see ``threads.current`` on why other threads' frames are held as briefly as possible."""
    found = []
    with paused:  # 3.11: see foreign_frames
        try:
            frames = sys._current_frames()
        except Exception:
            return
        for ident, frame in frames.items():
            depth = 0
            while frame is not None and depth < 200:
                depth += 1
                code = frame.f_code
                if code.co_name in ("run_forever", "_run_once", "run_until_complete"):
                    try:
                        candidate = frame.f_locals.get("self")
                    except Exception:
                        candidate = None
                    if isinstance(candidate, asyncio.AbstractEventLoop):
                        found.append((candidate, ident))
                    break
                frame = frame.f_back
        frame = None
        frames.clear()
        del frames
    for candidate, ident in found:
        if candidate in loops:
            continue
        loops.add(candidate)
        _wrap_class(type(candidate))
        loop_threads[candidate] = ident
        try:
            candidate.call_soon_threadsafe(install_factory, candidate)
        except Exception:
            pass


def running_loops() -> list[tuple[Any, int | None]]:
    """``(loop, thread ident)`` of every known loop that is running now."""
    found = []
    for loop in registry.copy_set(loops):
        try:
            if loop.is_running() and not loop.is_closed():
                ident = loop_threads.get(loop) or getattr(loop, "_thread_id", None) or None
                found.append((loop, ident))
        except Exception:
            pass
    return found
