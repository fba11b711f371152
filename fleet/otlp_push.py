"""``tasktop exporter --otlp URL``: push the fleet's metrics over OTLP/HTTP instead of serving them.

For a shop whose metrics go through an OpenTelemetry Collector (or any OTLP/HTTP receiver) rather
than a Prometheus scrape.  Every ``--otlp-interval`` seconds the exporter's own collector asks
every probe for its summary, exactly as a scrape would, and the measurements (``measurements``)
go out in one OTLP request through the OpenTelemetry SDK's OTLP/HTTP exporter, which also reads
the usual ``OTEL_EXPORTER_OTLP_*`` settings (headers, compression, timeout, certificates).

Each probed process is a Resource of its own, as the Collector's host-metrics receiver reports
processes: ``process.pid``, ``process.executable.name``, ``process.command_args``,
``process.runtime.*``, ``process.creation.time``, and ``service.name`` (the process's own
``OTEL_SERVICE_NAME`` when its environment can be read, else ``unknown_service:`` and the
executable's name, the SDK's default).  Counts are cumulative sums that start when the process
started.  A push that fails is one line on stderr and the next one is tried all the same.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from typing import Any

from tasktop.exporter.signals import until_stopped

from . import FleetError, version
from .measurements import COUNTER, GAUGE, Point, ProbeReader

DEFAULT_INTERVAL = 15.0


def _service_name(pid: int, executable: str) -> str:
    """The target's ``OTEL_SERVICE_NAME``, else the SDK's default for its executable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            for item in fh.read().split(b"\0"):
                if item.startswith(b"OTEL_SERVICE_NAME="):
                    name = item.split(b"=", 1)[1].decode(errors="replace").strip()
                    if name:
                        return name
    except OSError:
        pass
    return f"unknown_service:{os.path.basename(executable) or 'python'}"


def resource_attributes(pid: int, summary: dict) -> dict[str, Any]:
    """The Resource of one probed process."""
    process = summary.get("process") or {}
    executable = str(process.get("executable") or "")
    attributes: dict[str, Any] = {
        "service.name": _service_name(pid, executable),
        "process.pid": pid,
        "process.executable.name": os.path.basename(executable),
        "process.executable.path": executable,
        "process.command_args": [str(a) for a in process.get("argv") or []],
        "process.runtime.name": str(process.get("implementation") or "CPython"),
        "process.runtime.version": str(process.get("python") or ""),
    }
    if process.get("started_at"):
        started = datetime.datetime.fromtimestamp(float(process["started_at"]), datetime.timezone.utc)
        attributes["process.creation.time"] = started.isoformat().replace("+00:00", "Z")
    return attributes


def metrics_data(points: list[Point], summaries: dict[int, dict], now_ns: int | None = None):
    """One OTLP payload (the SDK's ``MetricsData``): a Resource per process, one scope, ``tasktop``."""
    from opentelemetry.sdk.metrics.export import (AggregationTemporality, Gauge, Metric, MetricsData,
                                                  NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    now_ns = now_ns or time.time_ns()
    scope = InstrumentationScope("tasktop", version())
    out = []
    for pid, summary in sorted(summaries.items()):
        started = (summary.get("process") or {}).get("started_at")
        start_ns = int(float(started) * 1e9) if started else now_ns
        by_instrument: dict[Any, list] = {}
        for p in points:
            if p.pid == pid:
                by_instrument.setdefault(p.instrument, []).append(
                    NumberDataPoint(attributes=p.attributes, start_time_unix_nano=start_ns,
                                    time_unix_nano=now_ns, value=p.value))
        metrics = []
        for spec, data_points in by_instrument.items():
            if spec.kind == GAUGE:
                data: Any = Gauge(data_points=data_points)
            else:
                data = Sum(data_points=data_points, aggregation_temporality=AggregationTemporality.CUMULATIVE,
                           is_monotonic=spec.kind == COUNTER)
            metrics.append(Metric(name=spec.name, description=spec.description, unit=spec.unit, data=data))
        out.append(ResourceMetrics(resource=Resource.create(resource_attributes(pid, summary)),
                                   scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics, schema_url="")],
                                   schema_url=""))
    return MetricsData(resource_metrics=out)


class _LastError(logging.Handler):
    """Keeps the OTLP exporter's last complaint for our one line, instead of its own log lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.message = " ".join(record.getMessage().split())

    def take(self) -> str:
        message, self.message = self.message, ""
        return message


def run(args: argparse.Namespace) -> int:
    """Push until SIGINT or SIGTERM, then return 0."""
    url = args.otlp
    if not url.startswith(("http://", "https://")):
        raise FleetError(f"--otlp needs an http:// or https:// URL, like http://localhost:4318/v1/metrics: {url!r}")
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import MetricExportResult
    except ImportError:
        raise FleetError("--otlp needs OpenTelemetry: pip install 'tasktop[otel]'") from None
    directories = getattr(args, "directory", None) or [None]
    reader = ProbeReader(directories, top=args.top, timeout=args.timeout)
    exporter = OTLPMetricExporter(endpoint=url)
    complaints = _LastError()
    otlp_log = logging.getLogger("opentelemetry.exporter.otlp")
    otlp_log.addHandler(complaints)
    otlp_log.propagate = False
    try:
        with until_stopped():  # before the line that tells a supervisor (or a test) we are up
            print(f"tasktop exporter: pushing OTLP/HTTP metrics to {url} every {args.otlp_interval:g} s",
                  flush=True)
            while True:
                started = time.monotonic()
                points = reader.read(push=True)
                if reader.summaries():
                    result = exporter.export(metrics_data(points, reader.summaries()))
                    if result is not MetricExportResult.SUCCESS:
                        reason = complaints.take()
                        print(f"tasktop exporter: the push to {url} failed{f' ({reason[:200]})' if reason else ''}; "
                              f"trying again in {args.otlp_interval:g} s", file=sys.stderr, flush=True)
                time.sleep(max(0.0, args.otlp_interval - (time.monotonic() - started)))
    finally:
        exporter.shutdown()
    return 0


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("the push interval must be between 0.1 and 3600 seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--otlp`` and ``--otlp-interval``, added to ``tasktop exporter``'s options."""
    parser.add_argument("--otlp", metavar="URL",
                        help="push metrics over OTLP/HTTP to URL (like http://localhost:4318/v1/metrics) "
                             "instead of serving /metrics; needs pip install 'tasktop[otel]'")
    parser.add_argument("--otlp-interval", type=_interval, default=DEFAULT_INTERVAL, metavar="SECONDS",
                        help=f"seconds between two pushes (default {DEFAULT_INTERVAL:g})")
