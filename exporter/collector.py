"""One scrape: every probe socket listed, each live probe asked for its ``summary`` in parallel
with a short timeout, and the answers turned into Prometheus metric families.

Nothing is cached between scrapes but each process's command label, so a process that exits is
gone from the very next scrape, and a probe that does not answer costs the scrape at most the
timeout, never the whole scrape.

Label cardinality is bounded on purpose: ``state`` takes the probe's fixed set of state names;
only the ``top`` largest groups of each process get a series of their own; ``command`` is cut
to ``COMMAND_WIDTH`` characters and ``where`` to ``WHERE_WIDTH``.

Metric names follow Prometheus' naming rules as ``promtool check metrics`` enforces them (base
units, ``_total`` on counters, no ``_count``/``_sum``/``_bucket`` outside summaries and
histograms); the tests run promtool on a real scrape.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tasktop.client.discovery import argv_of, command_line, probe_sockets
from tasktop.client.probe_client import ProbeClient, ProbeError, ProbeUnavailable
from tasktop.render.ends import largest_waits, wait_kind, wait_where
from tasktop.render.stacks import fit_label, frame_label, where
from tasktop.wire import paths

DEFAULT_TOP = 10
DEFAULT_TIMEOUT = 2.0
#: Longest ``command`` and ``where`` label values; longer ones end in ``…``.
COMMAND_WIDTH = 80
WHERE_WIDTH = 120
#: Probes asked at the same time during one scrape.
MAX_WORKERS = 16

PROCESS_LABELS = ("pid", "command")
GROUP_LABELS = PROCESS_LABELS + ("group", "kind", "state", "where")
LOOP_LABELS = PROCESS_LABELS + ("loop", "thread")
WAIT_LABELS = PROCESS_LABELS + ("object", "kind", "where")


# -- asking the probes -------------------------------------------------------------------------------
@dataclass
class Answer:
    """One probe's part of a scrape: its summary, or why there is none."""

    pid: int
    path: str
    summary: dict | None = None
    waits: dict | None = None  # None from a probe older than the ``waits`` request
    error: str = ""
    gone: bool = False  # the process or its probe went away: not an error, just not there


def command_label(process: dict) -> str:
    """The ``command`` label: argv as the process picker shows it, cut to ``COMMAND_WIDTH``."""
    return _cut(command_line(process))


def _cut(text: str, width: int = COMMAND_WIDTH) -> str:
    text = " ".join(text.split())  # no newlines or tabs in a label
    return text if len(text) <= width else text[:width - 1] + "…"


def _proc_command(pid: int) -> str:
    """A command for a process whose probe did not answer, from ``/proc`` (argv[0] shortened)."""
    argv = argv_of(pid)
    return command_label({"argv": argv}) if argv else "?"


def ask(pid: int, path: str, timeout: float) -> Answer:
    """The summary of one probe; a dead process, a vanished socket or a socket nobody listens on
    (a stale one, its pid reused) is ``gone``; any other failure is an error."""
    client = ProbeClient(path, timeout=timeout)
    try:
        client.connect()
        # Complete: the ``waits`` request after it walks every await chain anyway, and a
        # pseudo-group of tasks not walked yet would make the group series jump as it fills in.
        summary = client.summary(complete=True)
        try:
            waits = client.waits()
        except (ProbeUnavailable, ProbeError):  # an older probe, or gone since: the summary stands
            waits = None
        return Answer(pid, path, summary=summary, waits=waits)
    except (ProbeUnavailable, ProbeError) as exc:
        refused = isinstance(exc.__context__, ConnectionRefusedError) or "Connection refused" in str(exc)
        gone = refused or not os.path.exists(path) or not paths.pid_alive(pid)
        return Answer(pid, path, error=str(exc), gone=gone)
    except Exception as exc:  # a malformed reply must cost one process, not the scrape
        return Answer(pid, path, error=f"{exc.__class__.__name__}: {exc}")
    finally:
        client.close()


# -- the collector -----------------------------------------------------------------------------------------
class FleetCollector(Collector):
    """A prometheus_client collector that reads every probe of ``directories`` on each scrape."""

    def __init__(self, directories: Sequence[str | None] | None = None, top: int = DEFAULT_TOP,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.directories = list(directories or [None])
        self.top = max(0, top)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._errors = 0
        self._commands: dict[int, str] = {}  # pid -> command, for when its probe stops answering

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not scrape the fleet

    def sockets(self) -> list[tuple[int, str]]:
        """(pid, path) of every probe socket of a live process, one per pid."""
        return probe_sockets(self.directories)

    def answers(self) -> list[Answer]:
        found = self.sockets()
        if not found:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(found)),
                                thread_name_prefix="tasktop-scrape") as pool:
            return list(pool.map(lambda item: ask(item[0], item[1], self.timeout), found))

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        answers = self.answers()
        m = _Families()
        errors = 0
        with self._lock:
            present = {a.pid for a in answers}
            for pid in list(self._commands):
                if pid not in present:
                    del self._commands[pid]
            for answer in answers:
                if answer.gone:
                    continue
                if answer.summary is None:
                    errors += 1
                    command = self._commands.get(answer.pid) or _proc_command(answer.pid)
                    m.up.add_metric([str(answer.pid), command], 0)
                    continue
                command = command_label(answer.summary.get("process") or {})
                self._commands[answer.pid] = command
                part = _Families()
                try:
                    part.add_process(str(answer.pid), command, answer.summary, self.top)
                    part.add_waits(str(answer.pid), command, answer.waits, self.top)
                except Exception:  # a reply we cannot read costs that process, not the scrape
                    errors += 1
                    m.up.add_metric([str(answer.pid), command], 0)
                    continue
                m.merge(part)
            self._errors += errors
            total_errors = self._errors
        m.errors.add_metric([], total_errors)
        m.duration.add_metric([], time.monotonic() - started)
        return iter(m.all())


class _Families:
    """The metric families of one scrape, filled process by process."""

    def __init__(self) -> None:
        g, c = GaugeMetricFamily, CounterMetricFamily
        self.up = g("tasktop_process_up", "1 if the process's probe answered this scrape, 0 if it did not.",
                    labels=PROCESS_LABELS)
        self.start_time = g("tasktop_process_start_time_seconds",
                            "When the process started, seconds since the epoch.", labels=PROCESS_LABELS)
        self.tasks = g("tasktop_tasks", "Live asyncio tasks, by what they wait on.",
                       labels=PROCESS_LABELS + ("state",))
        self.threads = g("tasktop_threads", "Python threads (not the probe's own), by what they wait on.",
                         labels=PROCESS_LABELS + ("state",))
        self.groups = g("tasktop_groups", "Distinct groups (kind, state and stack) of tasks and threads.",
                        labels=PROCESS_LABELS)
        # Formerly tasktop_group_count: "_count" is the suffix of a summary's or histogram's
        # sample count, so `promtool check metrics` rejects it on a gauge.
        self.group_members = g("tasktop_group_members",
                               "Members of one of the largest groups of tasks or threads with an identical stack.",
                               labels=GROUP_LABELS)
        self.group_blocked = g("tasktop_group_blocked_max_seconds",
                               "Longest time any member of the group has been blocked on the same thing.",
                               labels=GROUP_LABELS)
        self.group_blocked_min = g("tasktop_group_blocked_min_seconds",
                                   "Shortest time any member of the group has been blocked: all have been this long.",
                                   labels=GROUP_LABELS)
        self.rss = g("tasktop_rss_bytes", "Resident set size.", labels=PROCESS_LABELS)
        self.rss_peak = g("tasktop_rss_peak_bytes", "Peak resident set size.", labels=PROCESS_LABELS)
        self.lag = g("tasktop_loop_lag_seconds", "Latest delay of the probe's heartbeat on the event loop.",
                     labels=LOOP_LABELS)
        self.stalls = c("tasktop_loop_stalls",
                        "Times the event loop did not answer within TASKTOP_STALL_MS.", labels=LOOP_LABELS)
        self.lost = c("tasktop_tasks_lost",
                      "Tasks destroyed while still pending (nothing referenced them), by creation site, "
                      "since the probe started.", labels=PROCESS_LABELS + ("site",))
        self.unretrieved = c("tasktop_tasks_unretrieved_exceptions",
                             "Tasks that ended with an exception nobody retrieved, by creation site and "
                             "exception type, since the probe started.", labels=PROCESS_LABELS + ("site", "exception"))
        self.ended = c("tasktop_tasks_ended",
                       "Tasks made since the probe started that ended, by how: returned, raised, cancelled.",
                       labels=PROCESS_LABELS + ("outcome",))
        self.wait_waiters = g("tasktop_wait_waiters",
                              "Tasks and threads waiting on one of the most waited-on queues, locks, "
                              "semaphores, events or conditions.", labels=WAIT_LABELS)
        self.wait_items = g("tasktop_wait_queue_items",
                            "Items in one of the most waited-on queues.", labels=WAIT_LABELS)
        self.errors = c("tasktop_scrape_errors", "Probes that did not answer a scrape, since the exporter started.")
        self.duration = g("tasktop_scrape_duration_seconds", "How long asking every probe took.")

    def all(self) -> list[Metric]:
        return [self.up, self.start_time, self.tasks, self.threads, self.groups, self.group_members,
                self.group_blocked, self.group_blocked_min, self.rss, self.rss_peak, self.lag, self.stalls,
                self.lost, self.unretrieved, self.ended, self.wait_waiters, self.wait_items, self.errors,
                self.duration]

    def add_waits(self, pid: str, command: str, waits: dict | None, top: int) -> None:
        """The ``top`` most waited-on objects: waiters, and items for queues."""
        for wait in largest_waits(waits, top):
            labels = [pid, command, str(wait.get("id")), wait_kind(str(wait.get("kind"))),
                      fit_label(str(wait_where(wait)), WHERE_WIDTH)]
            self.wait_waiters.add_metric(labels, int(wait.get("waiting") or 0))
            size = (wait.get("numbers") or {}).get("size")
            if size is not None:
                self.wait_items.add_metric(labels, int(size))

    def merge(self, other: "_Families") -> None:
        for mine, theirs in zip(self.all(), other.all()):
            mine.samples.extend(theirs.samples)

    def _add_endings(self, proc: list, endings: dict) -> None:
        """Lost tasks and unretrieved exceptions by creation site (``frame (file:line)``); what the
        probe counted beyond the sites it lists is ``other``."""
        def site(row: dict) -> str:
            frames = row.get("site") or []
            return fit_label(frame_label(frames[0]), WHERE_WIDTH) if frames else "unknown"

        lost = Counter()
        for row in endings.get("lost") or []:
            lost[site(row)] += int(row.get("count") or 0)
        rest = int(endings.get("lost_total") or 0) - sum(lost.values())
        if rest > 0:
            lost["other"] += rest
        for name, count in sorted(lost.items()):
            self.lost.add_metric(proc + [name], count)
        unretrieved = Counter()
        for row in endings.get("unretrieved") or []:
            unretrieved[(site(row), str(row.get("type") or "?"))] += int(row.get("count") or 0)
        rest = int(endings.get("unretrieved_total") or 0) - sum(unretrieved.values())
        if rest > 0:
            unretrieved[("other", "other")] += rest
        for (name, exc), count in sorted(unretrieved.items()):
            self.unretrieved.add_metric(proc + [name, exc], count)

    def add_process(self, pid: str, command: str, data: dict, top: int) -> None:
        proc = [pid, command]
        self.up.add_metric(proc, 1)
        started = (data.get("process") or {}).get("started_at")
        if started:
            self.start_time.add_metric(proc, float(started))

        groups = data.get("groups") or []
        totals = data.get("totals") or {}
        for kind, family in (("task", self.tasks), ("thread", self.threads)):
            states = Counter()
            for group in groups:
                if group.get("kind") == kind:
                    states[str(group.get("state"))] += int(group.get("count") or 0)
            # The probe sends at most MAX_GROUPS groups: members of the rest count as "other".
            missing = int(totals.get(kind + "s") or 0) - sum(states.values())
            if missing > 0:
                states["other"] += missing
            for state, count in sorted(states.items()):
                family.add_metric(proc + [state], count)
        self.groups.add_metric(proc, int(totals.get("groups", len(groups)) or 0))

        for group in groups[:top]:  # the probe sends them largest first
            labels = proc + [str(group.get("id")), str(group.get("kind")), str(group.get("state")),
                             fit_label(where(group.get("stack")), WHERE_WIDTH)]
            self.group_members.add_metric(labels, int(group.get("count") or 0))
            self.group_blocked.add_metric(labels, float(group.get("blocked_max_s") or 0.0))
            self.group_blocked_min.add_metric(labels, float(group.get("blocked_min_s") or 0.0))

        endings = data.get("endings")
        if endings is not None:  # a probe that counts them
            self._add_endings(proc, endings)
        ended = data.get("ended")
        if ended:
            for outcome in ("returned", "raised", "cancelled"):
                self.ended.add_metric(proc + [outcome], int(ended.get(outcome) or 0))

        memory = data.get("memory") or {}
        if memory.get("rss_bytes") is not None:
            self.rss.add_metric(proc, memory["rss_bytes"])
        if memory.get("rss_peak_bytes") is not None:
            self.rss_peak.add_metric(proc, memory["rss_peak_bytes"])

        for loop in data.get("loops") or []:
            labels = proc + [str(loop.get("id")), str(loop.get("thread_name") or loop.get("thread"))]
            if loop.get("lag_ms") is not None:  # null until the first heartbeat is measured
                self.lag.add_metric(labels, round(loop["lag_ms"] / 1000.0, 6))
            self.stalls.add_metric(labels, int(loop.get("stall_count") or 0))
