"""tasktop's metrics as OpenTelemetry measurements: names, units, kinds and attributes.

Both OpenTelemetry paths read the same thing ``tasktop exporter`` serves: a ``FleetCollector``
asks the probes (every probe of the machine for ``--otlp``, the process's own for the
instrumentor) and yields its Prometheus families, and this module renames them.  So which states
there are, how the groups past ``--top`` are counted and how a loop is numbered stay decided in
one place, the exporter.

Names follow the OpenTelemetry semantic conventions where they cover the thing measured, and
their patterns where they do not:

- ``process.memory.usage`` (By) is the conventions' own metric for resident memory;
- ``code.function.name``, ``code.file.path``, ``code.line.number`` locate a group's code, and
  ``thread.name`` names an event loop's thread, as the conventions' attributes;
- nothing in the conventions counts asyncio tasks, so tasktop's own namespace ``tasktop.*`` is
  used, shaped like ``go.goroutine.count`` / ``jvm.thread.count``: an up-down counter named
  ``*.count`` with a ``{task}``-style annotation unit, and a ``*.state`` attribute as
  ``jvm.thread.state``; durations in seconds (``s``), a monotonic counter for stalls.

This module imports nothing from OpenTelemetry: it is plain data, used by ``otel`` (observable
instruments) and ``otlp_push`` (OTLP data points).
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import tasktop.probe
from tasktop.exporter.collector import Answer, FleetCollector
from tasktop.probe.threads import asking
from tasktop.wire.stacks import user_frame

GAUGE, UP_DOWN, COUNTER = "gauge", "updowncounter", "counter"


@dataclass(frozen=True)
class Instrument:
    """One OpenTelemetry instrument and the exporter family it is read from."""

    family: str  # the exporter's metric family (its name without _total)
    name: str
    kind: str
    unit: str
    description: str
    rename: tuple[tuple[str, str], ...] = ()  # exporter label -> attribute; other labels are dropped
    push_only: bool = False  # not reported by the in-process instrumentor (see ``INSTRUMENTS``)


GROUP = (("group", "tasktop.group.id"), ("kind", "tasktop.group.kind"), ("state", "tasktop.group.state"))
LOOP = (("loop", "tasktop.eventloop.id"), ("thread", "thread.name"))

#: Everything reported.  ``process.memory.usage`` is pushed only: in the application, the
#: OpenTelemetry system-metrics instrumentation reports it already, and the same name from two
#: instrumentations would be two series of one metric.
INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("tasktop_tasks", "tasktop.task.count", UP_DOWN, "{task}",
               "Live asyncio tasks, by what they wait on.", (("state", "tasktop.task.state"),)),
    Instrument("tasktop_threads", "tasktop.thread.count", UP_DOWN, "{thread}",
               "Python threads (not the probe's own), by what they wait on.", (("state", "tasktop.thread.state"),)),
    Instrument("tasktop_groups", "tasktop.group.count", UP_DOWN, "{group}",
               "Distinct groups (kind, state and stack) of tasks and threads."),
    Instrument("tasktop_group_members", "tasktop.group.member.count", UP_DOWN, "{member}",
               "Members of one of the largest groups of tasks or threads with an identical stack.", GROUP),
    Instrument("tasktop_group_blocked_max_seconds", "tasktop.group.blocked.max", GAUGE, "s",
               "Longest time any member of the group has been blocked on the same thing.", GROUP),
    Instrument("tasktop_group_blocked_min_seconds", "tasktop.group.blocked.min", GAUGE, "s",
               "Shortest time any member of the group has been blocked: all have been this long.", GROUP),
    Instrument("tasktop_loop_lag_seconds", "tasktop.eventloop.delay", GAUGE, "s",
               "Latest delay of the probe's heartbeat on the event loop.", LOOP),
    Instrument("tasktop_loop_stalls", "tasktop.eventloop.stalls", COUNTER, "{stall}",
               "Times the event loop did not answer within TASKTOP_STALL_MS.", LOOP),
    Instrument("tasktop_rss_bytes", "process.memory.usage", UP_DOWN, "By",
               "The amount of physical memory in use.", push_only=True),
)
BY_FAMILY = {i.family: i for i in INSTRUMENTS}

_WHERE = re.compile(r"(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)")


@dataclass
class Point:
    """One measurement: a value with its attributes, of one process (``pid``)."""

    instrument: Instrument
    pid: int
    value: float
    attributes: dict[str, Any]


def code_attributes(stack: Iterable[dict] | None, where: str = "") -> dict[str, Any]:
    """``code.*`` attributes of a group: the frame ``where`` names, from the group's stack (full
    path), else parsed from the ``where`` label (file name only)."""
    frame = user_frame(stack)
    if frame:
        return {"code.function.name": str(frame.get("func") or "?"), "code.file.path": str(frame.get("file") or "?"),
                "code.line.number": int(frame.get("line") or 0)}
    match = _WHERE.fullmatch(where)
    if not match:
        return {}
    return {"code.function.name": match["func"], "code.file.path": match["file"], "code.line.number": int(match["line"])}


def points(families: Iterable[Any], summaries: dict[int, dict], push: bool = True) -> Iterator[Point]:
    """Measurements of the exporter's ``families`` (one scrape); ``summaries`` (pid -> the probe's
    summary) give the groups' full code locations.  Without ``push``, the instrumentor's set."""
    stacks = {(pid, str(g.get("id"))): g.get("stack") for pid, data in summaries.items()
              for g in data.get("groups") or []}
    for family in families:
        spec = BY_FAMILY.get(family.name)
        if spec is None or (spec.push_only and not push):
            continue
        for sample in family.samples:
            if sample.name not in (family.name, family.name + "_total"):
                continue  # a counter's _created
            labels = sample.labels
            pid = int(labels.get("pid", 0))
            attributes: dict[str, Any] = {}
            for label, attribute in spec.rename:
                value = labels.get(label, "")
                attributes[attribute] = int(value) if attribute == "tasktop.eventloop.id" and value.isdigit() else value
            if spec.rename is GROUP:
                attributes.update(code_attributes(stacks.get((pid, labels.get("group", ""))), labels.get("where", "")))
            yield Point(spec, pid, float(sample.value), attributes)


class ProbeReader(FleetCollector):
    """The exporter's collector, keeping the summaries of each scrape for the code locations.
    With ``own``, it reads only this process's own probe (the instrumentor's case)."""

    def __init__(self, directories: list | None = None, top: int = 10, timeout: float = 2.0,
                 own: bool = False) -> None:
        super().__init__(directories, top=top, timeout=timeout)
        self.own = own
        self._answers = threading.local()  # scrapes may run on several threads at once

    def sockets(self) -> list[tuple[int, str]]:
        if self.own:
            path = tasktop.probe.socket_path()
            return [(os.getpid(), path)] if path else []
        return super().sockets()

    def answers(self) -> list[Answer]:
        # Asking our own probe, this thread is one of the process's threads, busy with us.
        with asking() if self.own else contextlib.nullcontext():
            self._answers.last = super().answers()
        return self._answers.last

    def read(self, push: bool = True) -> list[Point]:
        """One scrape of the probes, as measurements."""
        families = list(self.collect())
        return list(points(families, self.summaries(), push))

    def summaries(self) -> dict[int, dict]:
        """The summaries of this thread's last scrape (pid -> summary)."""
        return {a.pid: a.summary for a in getattr(self._answers, "last", []) if a.summary}
