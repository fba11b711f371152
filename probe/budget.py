"""The probe thread's CPU budget: how often the background sample may run.

The interval between samples adapts so that the probe thread as a whole stays under ``BUDGET``
of a core.  What the thread spends besides samples and answering clients (heartbeats,
wake-ups) is measured over windows of ``WINDOW`` seconds and taken off the budget first;
samples get what is left, but never less than a fifth of it.  Clients are not counted: they
asked.
"""
from __future__ import annotations

BUDGET = 0.009  # of a core: what the probe thread may spend in the background
WINDOW = 10.0  # seconds over which the thread's other work is measured
# Seconds: the longest the probe waits between samples.  Long enough for the budget to hold at
# a million tasks (a sample there costs 1.6-1.9 s of CPU: 200-360 s apart), which 60 s was not.
MAX_INTERVAL = 600.0


class Budget:
    """The sample interval, kept within the budget.  Used only from the probe thread."""

    def __init__(self, interval: float) -> None:
        self.floor = interval  # the interval asked for: samples never come more often
        self.interval = interval
        self.sample_ms = 0.0  # what the last sample cost
        self.other_share = 0.0  # of a core, spent by the probe thread on other than samples
        self._sampled = 0.0  # CPU seconds spent on samples, in all
        self.answering = 0.0  # CPU seconds spent answering clients, in all (kept by the server)
        self._mark: tuple | None = None  # (monotonic, thread CPU, sampled, answering) at the window's start

    def sampled(self, now: float, cpu_before: float, cpu_after: float) -> None:
        """A sample started at ``now`` took the probe thread from ``cpu_before`` to
        ``cpu_after`` seconds of CPU: the next interval."""
        cost = cpu_after - cpu_before
        self.sample_ms = cost * 1000.0
        self._sampled += cost
        if self._mark is None:  # the first sample, on the probe thread (thread_time is per thread)
            self._mark = (now, cpu_after, self._sampled, self.answering)
        mark_time, mark_cpu, mark_sampled, mark_answering = self._mark
        if now - mark_time >= WINDOW:
            other = (cpu_after - mark_cpu) - (self._sampled - mark_sampled) - (self.answering - mark_answering)
            self.other_share = max(0.0, other / (now - mark_time))
            self._mark = (now, cpu_after, self._sampled, self.answering)
        left = max(BUDGET / 5, BUDGET - self.other_share)
        self.interval = min(MAX_INTERVAL, max(self.floor, cost / left))
