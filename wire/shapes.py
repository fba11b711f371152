"""The shapes of what a probe answers: one typed model of a snapshot, read by every view.

The probe builds these maps and msgpack carries them as they are; the live view, ``tasktop
dump``, the exporter, ``check`` and ``diff`` read them through these names.  ``TypedDict``
costs nothing at run time (the probe does not import this module), and a field read under a
wrong name is caught by a type checker instead of by a user.  Fields marked ``NotRequired``
are absent in some replies (``stack`` in a group page's rows, ``verdicts`` unless asked).
"""
from __future__ import annotations

import sys
from typing import List, Optional

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover - typing_extensions is not a dependency: plain TypedDict there
    from typing import TypedDict

    NotRequired = Optional  # type: ignore[assignment]


class Frame(TypedDict):
    """One frame of a stack (stacks are innermost first)."""

    func: str
    file: str
    line: int
    source: NotRequired[str]  # group, task and thread replies only


Stack = List[Frame]


class CreatedBy(TypedDict):
    count: int
    stack: Optional[Stack]
    in_tasks: List[int]


class Group(TypedDict):
    """Tasks (or threads) of one kind, state and stack; ``id`` is the same in every snapshot."""

    id: str
    kind: str  # "task" | "thread"
    count: int
    state: str
    blocked_min_s: float
    blocked_max_s: float
    stack: Stack
    created_by: List[CreatedBy]


class Stall(TypedDict):
    at: float
    duration_ms: float
    stack: Stack


class Loop(TypedDict):
    id: int
    thread: Optional[int]
    thread_name: Optional[str]
    type: str
    tasks: int
    lag_ms: Optional[float]
    stall_count: int
    stalls: List[Stall]


class Process(TypedDict):
    pid: int
    ppid: int
    argv: List[str]
    python: str
    implementation: str
    executable: str
    started_at: float


class Memory(TypedDict):
    rss_bytes: int
    rss_peak_bytes: int
    gc_counts: List[int]
    gc_collections: List[int]
    tracemalloc: Optional[dict]


class Totals(TypedDict):
    tasks: int
    threads: int
    loops: int
    groups: int


class ProbeFacts(TypedDict):
    version: str
    interval_s: float
    sample_ms: float
    creation_stacks: bool
    tracemalloc: bool


class TaskRow(TypedDict):
    id: int
    name: Optional[str]
    group: str
    loop: Optional[int]
    state: str
    blocked_s: float
    stack: NotRequired[Stack]
    created_by: Optional[Stack]
    created_in: Optional[int]
    awaiting: Optional[int]
    awaiting_all: List[int]
    awaited_by: List[int]


class Kernel(TypedDict):
    state: Optional[str]
    syscall: Optional[str]


class ThreadRow(TypedDict):
    ident: int
    native_id: Optional[int]
    name: str
    daemon: Optional[bool]
    group: str
    state: str
    kernel: Kernel
    blocked_s: float
    stack: NotRequired[Stack]
    cpu_s: Optional[float]


class Verdict(TypedDict):
    verdict: str  # "unreachable" | "growing" | "stuck"
    group: str
    kind: str
    count: int
    state: str
    frame: Optional[Frame]
    blocked_min_s: float
    reason: str
    growth: NotRequired[dict]


class Lifetimes(TypedDict):
    count: int
    median_s: Optional[float]
    longest_s: Optional[float]


class CancelledBy(TypedDict):
    """Who asked for a cancellation: asyncio's canceller, the task that was running (or the
    TaskGroup's parent) and its await stack then."""

    how: str  # "TaskGroup" | "timeout()" | "wait_for" | "gather()" | "asyncio.run()"
    task: Optional[int]
    reason: Optional[str]
    stack: Stack


class Ended(TypedDict):
    """One recently finished task."""

    id: int
    outcome: str  # "returned" | "raised" | "cancelled"
    error: Optional[str]  # the exception's type, when it raised
    lived_s: Optional[float]
    ago_s: float
    group: Optional[str]  # the group it was last seen in
    created_by: Optional[Stack]
    cancelled_by: Optional[CancelledBy]


class EndRing(TypedDict):
    """The recent endings of one group (or, for tasks no pass saw, of one creation site)."""

    group: Optional[str]
    state: Optional[str]
    stack: Optional[Stack]
    created_by: Optional[Stack]
    returned: int
    raised: int
    cancelled: int
    errors: dict
    lifetimes: Lifetimes
    recent: List[Ended]


class Ends(TypedDict):
    """The ``ends`` reply."""

    ended_total: int
    dropped: int
    unfollowed: NotRequired[int]  # tasks made while the history was at its rate limit
    follow_per_s: NotRequired[int]  # that limit: endings followed a second
    rings: List[EndRing]
    ended: NotRequired[Optional[Ended]]


class Wait(TypedDict):
    """One object tasks or threads wait on."""

    id: str
    kind: str  # "asyncio.queues.Queue", "threading.Event"...
    waiting: int
    states: dict  # state -> waiters in it ("Queue.get": 3)
    groups: List[str]
    frame: Optional[Frame]  # the waiters' own frame (of their largest group)
    numbers: dict  # size, maxsize, getters, putters, unfinished; value, bound, locked, set, waiters
    moved: Optional[dict]  # the same numbers' change since the previous look


class Waits(TypedDict):
    """The ``waits`` reply."""

    time: float
    since_s: Optional[float]
    total: int
    waits: List[Wait]


class Unsettled(TypedDict):
    waiters: int
    groups: int
    reason: str


class Summary(TypedDict):
    """The ``summary`` reply; ``full`` adds ``tasks`` and ``threads``; ``tasktop dump`` adds
    ``verdicts`` and ``verdicts_unsettled`` (the ``--json`` document, schema 1)."""

    schema: int
    time: float
    process: Process
    probe: ProbeFacts
    totals: Totals
    memory: Memory
    ended: NotRequired[dict]  # tasks followed since the probe started that ended: total, returned,
    # raised, cancelled; and unfollowed (made while over the end history's rate limit)
    loops: List[Loop]
    groups: List[Group]
    tasks: NotRequired[List[TaskRow]]
    threads: NotRequired[List[ThreadRow]]
    verdicts: NotRequired[List[Verdict]]
    verdicts_unsettled: NotRequired[Optional[Unsettled]]
