"""``TasktopInstrumentor``: tasktop's metrics through the application's own OpenTelemetry SDK.

In the style of the ``opentelemetry-instrumentation-*`` packages::

    TasktopInstrumentor().instrument()          # after the MeterProvider is set up

registers observable instruments (see ``measurements.INSTRUMENTS``) on the global meter provider,
or on ``meter_provider=``.  Their callbacks ask the process's own probe for a summary, over its
socket like any client (the probe's state is only ever touched by the probe's thread), at most
once per collection however many instruments there are.  The measurements carry no process
attributes: in the application they belong on its Resource, which the SDK already fills.

The probe must run (``TASKTOP=1``, ``tasktop run``, or ``start_probe=True`` here); otherwise
``instrument()`` logs one warning and registers nothing.  This module is the only one that imports
OpenTelemetry, and it is imported only when asked for (``pip install 'tasktop[otel]'``).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Collection, Iterable

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.metrics import CallbackOptions, Observation, get_meter

import tasktop.probe

from . import version
from .measurements import COUNTER, GAUGE, INSTRUMENTS, Instrument, Point, ProbeReader

log = logging.getLogger(__name__)

#: Measurements older than this are read again; the callbacks of one collection run within it.
FRESH_S = 0.5


class _Readings:
    """The probe's latest measurements, shared by every callback of one collection."""

    def __init__(self, reader: ProbeReader) -> None:
        self.reader = reader
        self.lock = threading.Lock()
        self.taken = float("-inf")
        self.points: list[Point] = []
        self.enabled = True

    def of(self, instrument: Instrument) -> list[Point]:
        with self.lock:
            if not self.enabled:
                return []
            if time.monotonic() - self.taken > FRESH_S:
                try:
                    self.points = self.reader.read(push=False)
                except Exception as exc:  # the application's metrics must not break over ours
                    log.debug("tasktop: no summary from the probe: %s", exc)
                    self.points = []
                self.taken = time.monotonic()
            return [p for p in self.points if p.instrument is instrument]


class TasktopInstrumentor(BaseInstrumentor):
    """Observable instruments fed by the in-process tasktop probe."""

    _readings: _Readings | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return []  # the probe is tasktop's own; nothing else to be installed

    def _instrument(self, **kwargs: Any) -> None:
        """``meter_provider``: the SDK's (default: the global one); ``top``: the largest groups
        reported each (default 10); ``start_probe``: start the probe if it is not running."""
        if kwargs.get("start_probe") and not tasktop.probe.is_running():
            tasktop.probe.start()
        if not tasktop.probe.is_running():
            log.warning("tasktop: the probe is not running (set TASKTOP=1, or pass start_probe=True): "
                        "no tasktop metrics%s", f" ({tasktop.probe.last_error()})" if tasktop.probe.last_error() else "")
            return
        meter = get_meter("tasktop", version(), kwargs.get("meter_provider"))
        readings = _Readings(ProbeReader(top=int(kwargs.get("top", 10)), own=True))
        for spec in INSTRUMENTS:
            if spec.push_only:
                continue
            create = {GAUGE: meter.create_observable_gauge, COUNTER: meter.create_observable_counter}.get(
                spec.kind, meter.create_observable_up_down_counter)
            create(spec.name, callbacks=[self._callback(readings, spec)], unit=spec.unit,
                   description=spec.description)
        self._readings = readings

    @staticmethod
    def _callback(readings: _Readings, spec: Instrument):
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(p.value, p.attributes) for p in readings.of(spec)]

        return observe

    def _uninstrument(self, **kwargs: Any) -> None:
        # OpenTelemetry cannot take an instrument back: its callbacks go quiet instead.
        if self._readings is not None:
            self._readings.enabled = False
            self._readings = None
