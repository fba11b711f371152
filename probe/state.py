"""What the probe knows about its process, kept on the probe thread between requests.

``State`` owns the parts that outlive one pass (the watched loops, the threads seen, the
interned keys, the task passes, the CPU budget, the history of group counts) and makes the
one consistent pass every reply is built from (``collect``).  The replies themselves are in
``replies`` and ``verdicts``; ``State`` answers nothing.
"""
from __future__ import annotations

import collections
import time

from tasktop.wire.protocol import SAME_PASS_S

from .budget import Budget
from .end_history import EndHistory
from .config import Options
from .foreign_frames import paused
from .groups import Group
from .handoff import Handoff
from .keys import Keys
from .loops import LoopWatches
from .task_pass import Pass, Preempted, TaskPasses
from .threads import ThreadWatch
from .waits import Waits

HISTORY_STEP = 5.0  # seconds between two points of the history (and two background group passes)
HISTORY_POINTS = 120  # 10 minutes at HISTORY_STEP
#: Seconds of the probe thread's CPU a sample walks chains left unwalked (see ``sample``): what
#: a client's request may wait for one, and a fifth of the walk of a burst of 100,000 (0: none).
CATCH_UP_S = 0.25
# Seconds between two drains of the endings noted, by the heartbeat: samples may be minutes
# apart at a million tasks, and at most ``end_history.PENDING`` endings wait.
DRAIN_EVERY = 1.0


class State:
    """What the probe knows about its process.  Used only from the probe thread."""

    def __init__(self, options: Options, handoff: Handoff | None = None) -> None:
        self.options = options
        self.handoff = handoff
        self.loops = LoopWatches(options, handoff)
        self.threads = ThreadWatch()
        self.keys = Keys(options)
        self.passes = TaskPasses(self.loops, self.keys, handoff)
        self.ends = EndHistory(self.keys)
        self.waits = Waits()
        self.budget = Budget(options.interval)
        #: (monotonic time, {group id: count}), for growth verdicts.
        self.history: collections.deque = collections.deque(maxlen=HISTORY_POINTS)
        #: The flight recorder (``TASKTOP_RECORD``), set by the server, and what records a pass.
        self.flight = None
        self.record_pass = None
        #: The connection whose request is being answered (set by the server), or None, and
        #: whether the request asks for that connection's last pass (``wire.SAME_PASS_S``).
        self.asker: object = None
        self.same_pass = False
        #: The last complete pass a client asked for: the pass, its number, when it ended, the
        #: connection that asked, and whether it listed rows.
        self._shared: tuple | None = None
        self._drained = 0.0  # when the heartbeat last drained the endings
        #: Whether a client waits to be answered (set by the server; see ``sample``), and
        #: whether the last sample gave way to one.
        self.asking = None
        self._gave_way = False

    def heartbeat(self, now: float) -> None:
        """Take every running loop's heartbeat; a pause of the collector left behind ended (see
        ``foreign_frames``); records made since the last pass taken (see ``TaskPasses.tidy``);
        the endings noted, every ``DRAIN_EVERY``."""
        self.loops.heartbeat(now)
        paused.unstick(now)
        try:
            self.passes.tidy()
        except Exception:  # the next pass takes them anyway
            pass
        if now - self._drained >= DRAIN_EVERY:
            self._drained = now
            try:
                self.ends.drain()
            except Exception:  # the next drain takes them
                pass

    def sample(self, yielding: bool = True) -> None:
        """The background sample, within the budget (see budget.py).  When a group pass is due
        (every ``HISTORY_STEP``) the sample groups, so that the growth verdicts have a history
        even when no client asks; while the last one left chains unwalked, the sample walks
        them instead (``TaskPasses.catch_up``): a pass that leaves some adds no point to the
        history, and would walk only a few of them.

        A client who asks while a sample runs is answered first: the sample's pass gives way
        (``task_pass.Preempted``; a million records take a pass 1-2 s, which a client's first
        request waited for), and the next sample, given way once, runs to its end whoever
        asks, so that a client asking every second cannot keep the history from growing; so
        does a sample not ``yielding`` (one the server put off as long as it may)."""
        t0 = time.thread_time()
        now = time.monotonic()
        flight = self.flight
        self.passes.asking = self.asking if yielding and not self._gave_way else None
        self._gave_way = False
        try:
            if flight is not None and flight.due(now) and self.record_pass is not None:
                # The recorder's summary and its write count against the budget like the pass.
                self.record_pass(self.collect(rows=False, complete=False, background=True), now)
            elif CATCH_UP_S > 0 and self.passes.catching_up:
                self.passes.catch_up(CATCH_UP_S)
                self.threads.rows()
            elif not self.history or now - self.history[-1][0] >= HISTORY_STEP:
                self.collect(rows=False, complete=False, background=True)
            else:
                self.passes.run(grouping=False, background=True)
                self.threads.rows()
        except Preempted:
            self._gave_way = True
        finally:
            self.passes.asking = None
        self.budget.sampled(now, t0, time.thread_time())

    def collect(self, rows: bool = True, complete: bool = True, background: bool = False) -> Pass:
        """One consistent pass: groups, thread rows, and (with ``rows``) tasks and their records.
        Not ``complete``: the await chains not walked yet are walked for a while only (see
        ``TaskPasses.walk_budget``), the other tasks counted in pseudo-groups.  ``background``:
        the probe's own sample, not a client's request (see ``TaskPasses.run``).

        A client's complete pass also answers the later requests of the same connection
        (``asker``) that ask for it (``same_pass``: a dump's summary, waits and leak verdicts,
        one pass instead of three over every task) and need no rows it did not list, while no
        other pass has run."""
        asker = self.asker if complete and not background else None
        if asker is not None:
            shared = self._shared
            if (self.same_pass and shared is not None and shared[3] is asker and (shared[4] or not rows)
                    and shared[1] == self.passes.number and time.monotonic() - shared[2] < SAME_PASS_S):
                return shared[0]
            self._shared = None
        budget = None if complete or rows else self.passes.walk_budget()
        found = self.passes.run(grouping=True, rows=rows, budget=budget, background=background)
        found.thread_rows = thread_rows = self.threads.rows()
        groups = found.groups
        for row in thread_rows:
            key = self.keys.group("thread", row["state"], row["stack"])
            row["key"] = key
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(key)
            group.add(row["blocked_s"], row)
        self._remember(groups, found.unwalked > 0)
        if asker is not None:
            self._shared = (found, self.passes.number, time.monotonic(), asker, rows)
        return found

    def _remember(self, groups: dict, partial: bool) -> None:
        """Keep group counts over time (at most one point per ``HISTORY_STEP``) for growth
        verdicts; none from a ``partial`` pass (chains left unwalked): its groups are still
        filling in, which is no growth."""
        now = time.monotonic()
        if partial or self.history and now - self.history[-1][0] < HISTORY_STEP:
            return
        self.history.append((now, {g.key.id: g.count for g in groups.values()}))
