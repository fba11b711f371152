"""How tasks end (the history): how each recently finished task ended, how long it lived, and
who cancelled it.  (Tasks lost while pending, and exceptions nobody retrieved, are counted by
``endings``, from the loops' exception handler: no done-callback sees them.)

A task our factory makes gets one done-callback (``task_done``), added in ``hooks._create``.
It runs on the task's loop when the task finishes and does as little as it can: it notes the
record, the time, and the outcome read from the task's fields (``_state``, ``_exception``: never
``exception()``, which would mark the exception as retrieved and silence asyncio's "Task
exception was never retrieved").  The probe thread drains those notes (``EndHistory.drain``) into a
ring per group: the group the pass last saw the task in, else its creation site.  Everything is
bounded: the notes waiting to be drained, the rings, the number of rings, the cancellers.

At most ``FOLLOW_PER_S`` tasks made a second are followed.  A done-callback costs about 1.7 us
a task on asyncio's own loop, nearly all of it asyncio's (the C task schedules each callback
through the Python ``loop.call_soon``: a ``Handle`` made, queued and run), whatever the
callback does, and no cheaper per-task hook at a task's end exists.  So the creation hook asks
``hooks.follow``, an iterator of that many tokens (``next`` of an ``itertools.chain``: C, about
40 ns), whether a task gets the callback; the last token runs ``_spent``, which has the tokens
renewed when the second is over (``resume``: on the loop, or at the probe thread's next drain).
Past the limit, the rings are a sample of recent endings (the first tasks of each second), and
``unfollowed`` counts the tasks made meanwhile.  A task whose cancellation the probe sees is
followed anyway (``follow``, from ``note_cancel``).

Who cancelled: asyncio's own cancellers are hooked where its Python code asks for them (a
``TaskGroup`` aborting its tasks, ``timeout()`` (and ``wait_for``, which uses it from 3.12),
``wait_for``'s own cancel before 3.12, ``gather()`` cancelled, and ``asyncio.run()`` cancelling
what is left at its end), with a reason.  A direct ``task.cancel()`` is a C method of a static
type, which no wrapper reaches.  From 3.12 it is seen through ``sys.monitoring``: a ``CALL``
event whose callback returns ``DISABLE`` for every call site that calls anything but a future's
``cancel``, so after its first run a site costs nothing more; a site calling ``Task.cancel``
notes the running task and the caller's stack (``_on_call``).  Before 3.12 only
``sys.setprofile`` sees C calls, at a cost to every call: only when asked for
(``TASKTOP_CANCELLERS=profile``, ``_on_profile``).  Not seen: calls made from C (uvloop's own
code, ``loop.call_later(5, task.cancel)``: the loop's callback runs ``cancel`` from C), a site
that first called something else, and any process in which another tool already holds both of
the free monitoring ids (3 and 4).  The canceller is the task that was running (or the
TaskGroup's parent task) and its stack at that moment.
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import sys
import threading
import time
import types
from typing import Any

from . import hooks

RING = 20  # recent endings kept per group
MAX_RINGS = 500  # groups with a ring; the least recently ended is dropped past this
PENDING = 50_000  # endings waiting for the probe thread (older ones are dropped, and counted)
MAX_CANCELLERS = 10_000  # cancellations noted for tasks that have not ended yet
FOLLOW_PER_S = 1000  # tasks followed a second, at most: about 1.7 ms of the loops' time a second

_now = time.monotonic
_record_of = hooks.record_of
#: ``(record, ended at, "FINISHED" | "CANCELLED", exception type or None)``, appended by
#: ``task_done`` on the loops' threads, drained by the probe thread.
pending: collections.deque = collections.deque(maxlen=PENDING)
ended_total = [0]  # tasks that ended (a list: one object the callback changes in place)
#: task seq -> (how, canceller's seq or None, canceller's stack as ``[code, line, ...]``, reason)
cancellers: dict = {}


unfollowed = [0]  # tasks made while the tokens were spent (a task cancelled then is followed anyway)
_window_start = 0.0  # when the tokens were last renewed
_spent_at_seq = None  # the next task sequence number when the last token went, or None
_resume_lock = threading.Lock()


def task_done(task: Any) -> None:
    """The done-callback: note how ``task`` ended (cheap: this runs once per task)."""
    try:
        info = _record_of(task)
        if info is None:
            return
        state = task._state
        error = None if state == "CANCELLED" else task._exception
        pending.append((info, _now(), state, type(error) if error is not None else None))
        ended_total[0] += 1
    except Exception:
        pass


def _next_seq() -> int:
    """The sequence number the next task will get (``itertools.count`` says it in its repr)."""
    return int(repr(hooks._seq)[6:-1])


def unfollowed_now() -> int:
    """Tasks made while the tokens were spent, those of this second included."""
    spent_at = _spent_at_seq
    return unfollowed[0] + (0 if spent_at is None else max(0, _next_seq() - spent_at))


def tokens() -> Any:
    """``FOLLOW_PER_S`` tokens for ``hooks.follow``, the last of which calls ``_spent``."""
    return itertools.chain(itertools.repeat(True, FOLLOW_PER_S - 1), _last_token())


def _last_token() -> Any:
    _spent()
    yield True


def _spent() -> None:
    """The last token went (on the thread making a task): renew them at once if a second has
    passed since they were, else when it has."""
    global _spent_at_seq
    _spent_at_seq = _next_seq()
    delay = _window_start + 1.0 - _now()
    if delay <= 0:
        resume()
        return
    try:
        asyncio.get_running_loop().call_later(delay, resume)
    except Exception:
        pass  # no running loop here: the probe thread's next drain renews them


def resume() -> None:
    """Renew the tokens if they are spent and the second they were for is over."""
    global _window_start, _spent_at_seq
    if _spent_at_seq is None:
        return
    now = _now()
    if now - _window_start < 1.0:
        return
    with _resume_lock:
        if _spent_at_seq is None:
            return
        unfollowed[0] += max(0, _next_seq() - _spent_at_seq)
        _spent_at_seq = None
        _window_start = now
        hooks.follow = tokens()


def follow(task: Any) -> None:
    """Have ``task``'s end noted even if it was made while the tokens were spent."""
    try:
        if task.done() or _record_of(task) is None:
            return
        if not any(callback is task_done for callback, _ in (task._callbacks or ())):
            task.add_done_callback(task_done, context=hooks.context_for(task.get_loop()))
    except Exception:
        pass


def note_cancel(task: Any, how: str, by: Any = None, reason: str | None = None, stack: list | None = None) -> None:
    """Remember that ``how`` (asyncio's canceller) cancels ``task`` now, asked by task ``by``
    (whose await stack is taken now, unless ``stack`` is given); then the tasks it awaits,
    which its cancel reaches."""
    try:
        by_seq = None
        if by is not None:
            by_info = hooks.record_of(by)
            by_seq = by_info.seq if by_info is not None else None
            if stack is None:
                from .tasks import describe_flat  # the probe's walk of an await chain
                stack = describe_flat(by, by)[0][:2 * 16]
        stack = stack or []
        for _ in range(16):
            info = hooks.record_of(task)
            if info is None or task.done():
                return
            if len(cancellers) >= MAX_CANCELLERS:
                cancellers.clear()
            cancellers.setdefault(info.seq, (how, by_seq, stack, reason))
            if unfollowed[0] or _spent_at_seq is not None:  # else every task made has its callback
                follow(task)
            task = getattr(task, "_fut_waiter", None)  # the cancel goes on to what it awaits
            if not isinstance(task, asyncio.Task):
                return
            reason = reason or "the task awaiting it was cancelled"
    except Exception:
        pass


def _wrap(owner: Any, name: str, before: Any) -> None:
    """Have ``before(*args)`` run before ``owner.name(*args)`` (a Python function of asyncio)."""
    original = getattr(owner, name, None)
    if original is None or getattr(original, "_tasktop_wrapped", False):
        return

    def wrapper(*args, **kwargs):
        try:
            before(*args, **kwargs)
        except Exception:
            pass
        return original(*args, **kwargs)

    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = original.__name__, original.__qualname__, original.__doc__
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    wrapper._tasktop_wrapped = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def _task_group_abort(group: Any) -> None:
    errors = getattr(group, "_errors", None) or []
    reason = f"a task of the group raised {type(errors[-1]).__name__}" if errors else None
    parent = getattr(group, "_parent_task", None)
    for task in list(getattr(group, "_tasks", ())):
        note_cancel(task, "TaskGroup", parent, reason)


def _timeout_fired(timeout: Any) -> None:
    task = getattr(timeout, "_task", None)
    if task is None:
        return
    from .tasks import describe_flat

    codes = describe_flat(task, task)[0][0::2]
    if any(code.co_name == "wait_for" and code.co_filename.startswith(hooks._ASYNCIO_DIR) for code in codes):
        note_cancel(task, "wait_for", task, "wait_for timed out")  # wait_for uses timeout() from 3.12
    else:
        note_cancel(task, "timeout()", task, "its timeout expired")


def _timeout_exits(timeout: Any, exc_type: Any = None, *args: Any) -> None:
    """A timeout that fired turns its own cancellation into ``TimeoutError``: the task goes on,
    and the note must not name the timeout for a later, other cancellation."""
    task = getattr(timeout, "_task", None)
    if task is not None and exc_type is asyncio.CancelledError:
        info = hooks.record_of(task)
        if info is not None:
            cancellers.pop(info.seq, None)


def _wait_for_timed_out(fut: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(fut, asyncio.Task):
        current = asyncio.current_task()
        note_cancel(fut, "wait_for", current, "wait_for timed out")


def _gather_cancel(gathering: Any, *args: Any, **kwargs: Any) -> None:
    current = asyncio.current_task()
    for child in getattr(gathering, "_children", ()):
        if isinstance(child, asyncio.Task):
            note_cancel(child, "gather()", current, "the gather() was cancelled")


def _run_ends(loop: Any, *args: Any, **kwargs: Any) -> None:
    for task in list(asyncio.all_tasks(loop)):
        note_cancel(task, "asyncio.run()", None, "the loop was shutting down")


_TASK_CANCEL = asyncio.Task.cancel
#: Callables whose ``__name__`` is read without running any code of the application's.
_PLAIN_CALLABLES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType,
                    type(asyncio.Task.cancel), type("".join))
_UNBOUND = (types.FunctionType, type(asyncio.Task.cancel))  # called with the object as arg0
_monitoring_tool = None


def _on_call(code: Any, offset: int, callable: Any, arg0: Any) -> Any:
    """``sys.monitoring``'s CALL event (3.12+): note a ``Task.cancel`` call's caller; switch the
    event off for good at a site that calls anything but a future's ``cancel``."""
    try:
        if callable is _TASK_CANCEL:
            _direct_cancel(arg0)
            return None
        if type(callable) not in _PLAIN_CALLABLES or callable.__name__ != "cancel":
            return _DISABLE
        target = arg0 if type(callable) in _UNBOUND else callable.__self__
        if isinstance(target, asyncio.Task):
            _direct_cancel(target)
        elif not isinstance(target, asyncio.Future):
            return _DISABLE
    except Exception:
        return _DISABLE  # never again at this site rather than an error at every call
    return None


def _direct_cancel(task: Any) -> None:
    """``task.cancel()`` is about to be called from the frame below ours: note it and who."""
    if not isinstance(task, asyncio.Task) or task.done() or hooks.record_of(task) is None:
        return
    frame = sys._getframe(2)  # _on_call's caller: the frame making the call
    stack: list = []
    while frame is not None and len(stack) < 2 * 16:
        code = frame.f_code
        if code is hooks._HANDLE_RUN:
            break  # the loop's own machinery from here on
        stack.append(code)
        stack.append(frame.f_lineno)
        frame = frame.f_back
    frame = None
    loop = asyncio.events._get_running_loop()
    by = asyncio.current_task(loop) if loop is not None else None
    note_cancel(task, "cancel()", by, None, stack)


def _watch_direct_cancels() -> None:
    """3.12+: have ``_on_call`` see ``Task.cancel`` calls, on a monitoring id nobody holds."""
    global _monitoring_tool, _DISABLE
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None or _monitoring_tool is not None:
        return
    for tool in (4, 3):
        if monitoring.get_tool(tool) is None:
            break
    else:
        return
    _DISABLE = monitoring.DISABLE
    monitoring.use_tool_id(tool, "tasktop")
    monitoring.register_callback(tool, monitoring.events.CALL, _on_call)
    monitoring.set_events(tool, monitoring.get_events(tool) | monitoring.events.CALL)
    _monitoring_tool = tool


_BUILTIN_METHOD = type(len)  # a C method bound to its object: ``task.cancel``
_profiling = False


def _on_profile(frame: Any, event: str, arg: Any) -> None:
    """``sys.setprofile``'s callback (before 3.12, when asked for): a C call of a task's
    ``cancel`` notes its caller, as ``_on_call`` does from 3.12.  Once the probe is detached,
    each thread drops it at its next call (only a thread can change its own)."""
    if not _profiling:
        sys.setprofile(None)
    elif event == "c_call" and type(arg) is _BUILTIN_METHOD and arg.__name__ == "cancel":
        try:
            target = arg.__self__
            if isinstance(target, asyncio.Task):
                _direct_cancel(target)
        except Exception:
            pass


def _watch_by_profile() -> None:
    """Before 3.12 (``TASKTOP_CANCELLERS=profile``): see direct ``task.cancel()`` calls through
    ``sys.setprofile``, in the thread that starts the probe and every thread started after it.
    The only hook that sees a C method called, and it runs a Python function at every call and
    return of the host (bench/cancel_watch_cost.py): never on by default.  A profiler the
    application set already is left alone."""
    global _profiling
    if _profiling or sys.version_info >= (3, 12) or sys.getprofile() is not None:
        return
    _profiling = True  # first: the callback drops itself while it is False
    threading.setprofile(_on_profile)
    sys.setprofile(_on_profile)


def stop_profiling_here() -> None:
    """No profile callback in the calling thread (the probe's own threads)."""
    if _profiling and sys.getprofile() is _on_profile:
        sys.setprofile(None)


def unwatch_direct_cancels() -> None:
    """Give the monitoring id back (``tasktop detach``); stop the profile callback (each thread
    drops it at its next call)."""
    global _monitoring_tool, _profiling
    if _profiling:
        if getattr(threading, "_profile_hook", None) is _on_profile:
            threading.setprofile(None)
        stop_profiling_here()
        _profiling = False
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None or _monitoring_tool is None:
        return
    try:
        monitoring.set_events(_monitoring_tool, 0)
        monitoring.register_callback(_monitoring_tool, monitoring.events.CALL, None)
        monitoring.free_tool_id(_monitoring_tool)
    except Exception:
        pass
    _monitoring_tool = None


_DISABLE = None
_installed = False


def install(profile: bool = False) -> None:
    """Hook asyncio's own cancellers (once); a fresh second of tokens for ``hooks.follow``;
    with ``profile``, direct cancels before 3.12 too (``_watch_by_profile``)."""
    global _installed, _window_start, _spent_at_seq
    _window_start, _spent_at_seq = _now(), None
    hooks.follow = tokens()
    try:
        _watch_direct_cancels()
        if profile:
            _watch_by_profile()
    except Exception:
        pass
    if _installed:
        return
    _installed = True
    from asyncio import runners, tasks
    taskgroups = sys.modules.get("asyncio.taskgroups")
    if taskgroups is not None:
        _wrap(taskgroups.TaskGroup, "_abort", _task_group_abort)
    timeouts = sys.modules.get("asyncio.timeouts")
    if timeouts is not None:
        _wrap(timeouts.Timeout, "_on_timeout", _timeout_fired)
        _wrap(timeouts.Timeout, "__aexit__", _timeout_exits)
    if sys.version_info < (3, 12):
        _wrap(tasks, "_cancel_and_wait", _wait_for_timed_out)
    gathering = getattr(tasks, "_GatheringFuture", None)
    if gathering is not None:
        _wrap(gathering, "cancel", _gather_cancel)
    _wrap(runners, "_cancel_all_tasks", _run_ends)


class Ended:
    """One finished task, as kept in a ring."""

    __slots__ = ("seq", "site", "group", "born", "ended", "outcome", "error", "cancel")

    def wire(self, now: float, keys: Any) -> dict:
        site = keys.site(self)  # the creation stack, resolved once per site
        how, by, stack, reason = self.cancel or (None, None, None, None)
        return {
            "id": self.seq,
            "outcome": self.outcome,
            "error": self.error,
            "lived_s": None if self.born is None else round(self.ended - self.born, 6),
            "ago_s": round(now - self.ended, 3),
            "group": self.group,
            "created_by": site.wire() if site is not None and site.stack else None,
            "cancelled_by": None if self.cancel is None else {
                "how": how, "task": by, "reason": reason,
                "stack": _stack_wire(stack)},
        }


def _stack_wire(flat: list | None) -> list:
    from .frames import to_wire
    return to_wire(zip(flat[0::2], flat[1::2])) if flat else []


class Ring:
    """The recent endings of one group, and counts since the probe started."""

    __slots__ = ("key", "site", "items", "returned", "raised", "cancelled", "errors", "last_ended")

    def __init__(self, key: Any, site: Any = None) -> None:
        self.key = key  # a GroupKey; for tasks no pass saw, the creation stack shown (or None)
        self.site = site  # then the SiteKey of the first of them
        self.items: collections.deque = collections.deque(maxlen=RING)
        self.returned = self.raised = self.cancelled = 0
        self.errors: collections.Counter = collections.Counter()
        self.last_ended = 0.0

    def lifetimes(self) -> dict:
        lived = sorted(e.ended - e.born for e in self.items if e.born is not None)
        return lifetime_stats(lived)


def lifetime_stats(lived: list) -> dict:
    """Median and longest of sorted lifetimes (seconds)."""
    if not lived:
        return {"count": 0, "median_s": None, "longest_s": None}
    return {"count": len(lived), "median_s": round(lived[len(lived) // 2], 6), "longest_s": round(lived[-1], 6)}


def lifetime_stats_of_births(births: collections.Counter, now: float) -> dict:
    """``lifetime_stats`` of the lives so far of tasks born at ``births`` (time -> tasks born
    then), without a list of every lifetime: the median is found counting down from the newest
    birth."""
    count = sum(births.values())
    if not count:
        return lifetime_stats([])
    middle, seen = count // 2, 0  # the median's place among the lifetimes, shortest first
    for born in sorted(births, reverse=True):
        seen += births[born]
        if seen > middle:
            break
    return {"count": count, "median_s": round(now - born, 6), "longest_s": round(now - min(births), 6)}


class EndHistory:
    """The rings, fed from ``pending`` on the probe thread.  Used only from the probe thread."""

    def __init__(self, keys: Any) -> None:
        self.keys = keys
        self.rings: collections.OrderedDict = collections.OrderedDict()  # key -> Ring
        self.drained = 0
        self.outcomes = {"returned": 0, "raised": 0, "cancelled": 0}  # every ending drained

    def drain(self) -> None:
        """Move the noted endings into their rings (and follow new tasks again if the loops
        could not be asked to)."""
        resume()
        keys = self.keys
        popleft = pending.popleft
        for _ in range(PENDING):
            try:
                info, ended, state, error = popleft()
            except IndexError:
                break
            self.drained += 1
            cached = info.cache if hasattr(info, "cache") else None
            key = cached if cached is None or not isinstance(cached, tuple) else cached[0]
            item = Ended()
            item.seq, item.site, item.ended = info.seq, info.site, ended
            item.born = getattr(info, "born", None)
            item.group = key.id if key is not None else None
            cancel = cancellers.pop(info.seq, None)
            item.cancel = cancel if state == "CANCELLED" else None
            if state == "CANCELLED":
                item.outcome, item.error = "cancelled", None
            elif error is not None:
                item.outcome, item.error = "raised", error.__qualname__
            else:
                item.outcome, item.error = "returned", None
            site = None
            if key is None:  # never seen by a pass: the creation site as shown stands for its group
                site = keys.site(item)
                key = site.stack if site is not None else None
            ring = self.rings.get(key)
            if ring is None:
                ring = self.rings[key] = Ring(key, site)
                if len(self.rings) > MAX_RINGS:
                    self.rings.popitem(last=False)
            else:
                self.rings.move_to_end(key)
            ring.items.append(item)
            ring.last_ended = ended
            self.outcomes[item.outcome] += 1
            if item.outcome == "cancelled":
                ring.cancelled += 1
            elif item.outcome == "raised":
                ring.raised += 1
                if item.error in ring.errors or len(ring.errors) < 20:
                    ring.errors[item.error] += 1
            else:
                ring.returned += 1

    def counts(self) -> dict:
        """Every ending followed since the probe started, by outcome, and ``total`` (with those
        not drained yet, and those that came too fast to keep); ``unfollowed``: tasks made
        while over the rate limit."""
        self.drain()
        return dict(self.outcomes, total=ended_total[0], unfollowed=unfollowed_now())

    def ring_of(self, gid: str) -> Ring | None:
        for key, ring in self.rings.items():
            if getattr(key, "id", None) == gid:
                return ring
        return None

    def find(self, seq: int) -> Ended | None:
        for ring in self.rings.values():
            for item in ring.items:
                if item.seq == seq:
                    return item
        return None

    def wire(self, gid: str | None = None, limit: int = 50) -> dict:
        """The rings, most recently ended first (``gid``: that group's only)."""
        self.drain()
        now = _now()
        rings = sorted(self.rings.values(), key=lambda r: -r.last_ended)
        if gid:
            rings = [r for r in rings if getattr(r.key, "id", None) == gid]
        out = []
        for ring in rings[:limit]:
            key = ring.key
            is_group = hasattr(key, "id")
            out.append({
                "group": key.id if is_group else None,
                "state": key.state if is_group else None,
                "stack": key.wire() if is_group else None,
                "created_by": None if is_group or ring.site is None or not ring.site.stack else ring.site.wire(),
                "returned": ring.returned, "raised": ring.raised, "cancelled": ring.cancelled,
                "errors": dict(ring.errors),
                "lifetimes": ring.lifetimes(),
                "recent": [e.wire(now, self.keys) for e in reversed(ring.items)],
            })
        return {"ended_total": ended_total[0],
                "dropped": max(0, ended_total[0] - self.drained - len(pending)),
                "unfollowed": unfollowed_now(),
                "follow_per_s": FOLLOW_PER_S, "rings": out}

    def task(self, seq: int) -> dict | None:
        """How task ``seq`` ended, if it is still in a ring."""
        self.drain()
        item = self.find(seq)
        return None if item is None else item.wire(_now(), self.keys)
