"""OpenTelemetry, end to end: real OTLP/HTTP requests to a receiver in the test, decoded with the
official ``opentelemetry-proto`` messages, from ``tasktop exporter --otlp`` in front of a real
target, and from a real application that calls ``TasktopInstrumentor().instrument()`` next to
``opentelemetry-instrumentation-asyncio``.  Names, units and attributes are checked against the
semantic conventions' own constants where the conventions have them."""
from __future__ import annotations

import gzip
import http.server
import os
import signal
import subprocess
import threading

import pytest

pytest.importorskip("opentelemetry.sdk", reason="OpenTelemetry is not installed (pip install 'tasktop[otel]')")
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: E402
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality  # noqa: E402
from opentelemetry.semconv._incubating.attributes.process_attributes import (  # noqa: E402
    PROCESS_COMMAND_ARGS, PROCESS_PID, PROCESS_RUNTIME_NAME)
from opentelemetry.semconv._incubating.attributes.thread_attributes import THREAD_NAME  # noqa: E402
from opentelemetry.semconv._incubating.metrics.process_metrics import PROCESS_MEMORY_USAGE  # noqa: E402
from opentelemetry.semconv.attributes.code_attributes import (  # noqa: E402
    CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER)
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME  # noqa: E402

from conftest import tasktop, tasktop_cmd, wait_until  # noqa: E402

# 5 tasks on asyncio.Queue.get, 2 threads on a threading.Lock, 3 tasks that finish.
TARGET = r'''
import asyncio, os, threading
{setup}
lock = threading.Lock()
lock.acquire()

def hold():
    with lock:
        pass

async def consume(q):
    await q.get()

async def quick():
    return 1

async def main():
    q = asyncio.Queue()
    tasks = [asyncio.create_task(consume(q)) for _ in range(5)]
    await asyncio.gather(*(asyncio.create_task(quick()) for _ in range(3)))
    for i in range(2):
        threading.Thread(target=hold, name=f"holder-{{i}}", daemon=True).start()
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
'''

INSTRUMENTED = r'''
from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.asyncio import AsyncioInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from tasktop.fleet.otel import TasktopInstrumentor

reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=os.environ["RECEIVER"]), export_interval_millis=200)
metrics.set_meter_provider(MeterProvider(resource=Resource.create({"service.name": "shop"}), metric_readers=[reader]))
TasktopInstrumentor().instrument()
AsyncioInstrumentor().instrument()
'''


class Receiver:
    """An OTLP/HTTP metrics endpoint: keeps every request, decoded."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.path == "/v1/metrics" and self.headers["Content-Type"] == "application/x-protobuf"
                with receiver.lock:
                    receiver.requests.append(ExportMetricsServiceRequest.FromString(body))
                reply = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def resources(self, **wanted) -> list:
        """Every ResourceMetrics received whose resource has the ``wanted`` attributes."""
        with self.lock:
            found = [rm for req in self.requests for rm in req.resource_metrics]
        return [rm for rm in found if all(attrs(rm.resource.attributes).get(k.replace("_", ".")) == v
                                          for k, v in wanted.items())]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind)


def attrs(key_values) -> dict:
    return {kv.key: value(kv.value) for kv in key_values}


def metrics_of(resource_metrics, scope: str = "tasktop") -> dict:
    return {m.name: m for sm in resource_metrics.scope_metrics if sm.scope.name == scope for m in sm.metrics}


def points(metric) -> list[tuple[dict, float]]:
    data = getattr(metric, metric.WhichOneof("data"))
    return [(attrs(p.attributes), p.as_double if p.WhichOneof("value") == "as_double" else p.as_int)
            for p in data.data_points]


def by(metric, attribute: str) -> dict:
    return {a.get(attribute): v for a, v in points(metric)}


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def check_tasktop_metrics(got: dict, script: str) -> None:
    """What every path reports about TARGET: names, units, kinds, attributes and values."""
    tasks = got["tasktop.task.count"]
    assert tasks.unit == "{task}" and tasks.WhichOneof("data") == "sum"
    assert not tasks.sum.is_monotonic
    assert tasks.sum.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert by(tasks, "tasktop.task.state")["Queue.get"] == 5
    threads = got["tasktop.thread.count"]
    assert threads.unit == "{thread}" and by(threads, "tasktop.thread.state")["Lock.acquire"] == 2
    assert got["tasktop.group.count"].unit == "{group}"

    members = got["tasktop.group.member.count"]
    assert members.unit == "{member}"
    (queue_group,) = [a for a, v in points(members) if a["tasktop.group.state"] == "Queue.get"]
    line = next(n for n, text in enumerate(open(script), 1) if "await q.get()" in text)
    assert queue_group[CODE_FUNCTION_NAME] == "consume"
    assert queue_group[CODE_FILE_PATH] == script  # the full path, as the conventions prefer
    assert queue_group[CODE_LINE_NUMBER] == line
    assert queue_group["tasktop.group.kind"] == "task" and len(queue_group["tasktop.group.id"]) == 12
    blocked = got["tasktop.group.blocked.max"]
    assert blocked.unit == "s" and blocked.WhichOneof("data") == "gauge"
    assert got["tasktop.group.blocked.min"].unit == "s"

    delay = got["tasktop.eventloop.delay"]
    assert delay.unit == "s" and delay.WhichOneof("data") == "gauge"
    ((loop, lag),) = points(delay)
    assert loop == {"tasktop.eventloop.id": 1, THREAD_NAME: "MainThread"} and lag >= 0
    stalls = got["tasktop.eventloop.stalls"]
    assert stalls.unit == "{stall}" and stalls.sum.is_monotonic
    assert points(stalls) == [({"tasktop.eventloop.id": 1, THREAD_NAME: "MainThread"}, 0)]


def test_exporter_pushes_otlp(spawn, sockdir, receiver):
    target = spawn(TARGET.format(setup=""), OTEL_SERVICE_NAME="shop-worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "OTEL_"))}
    proc = subprocess.Popen([*tasktop_cmd(), "exporter", "--otlp", receiver.url, "--otlp-interval", "0.2",
                             "--directory", sockdir, "--timeout", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == f"tasktop exporter: pushing OTLP/HTTP metrics to {receiver.url} every 0.2 s\n"
        wait_until(lambda: len(receiver.resources(process_pid=target.pid)) >= 2, timeout=30,
                   message="two pushes about the target")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == ""

    resource_metrics = receiver.resources(process_pid=target.pid)[-1]
    resource = attrs(resource_metrics.resource.attributes)
    assert resource[SERVICE_NAME] == "shop-worker"  # the target's own OTEL_SERVICE_NAME
    assert resource[PROCESS_PID] == target.pid
    assert resource[PROCESS_COMMAND_ARGS][-1] == target.script
    assert resource[PROCESS_RUNTIME_NAME] == "CPython"
    assert resource["process.creation.time"].endswith("Z")
    got = metrics_of(resource_metrics)
    check_tasktop_metrics(got, target.script)
    memory = got[PROCESS_MEMORY_USAGE]
    assert memory.unit == "By" and not memory.sum.is_monotonic and points(memory)[0][1] > 1 << 20
    start = {p.start_time_unix_nano for m in got.values() if m.WhichOneof("data") == "sum" for p in m.sum.data_points}
    assert len(start) == 1  # cumulative since the process started
    assert all("pid" not in a and "command" not in a for m in got.values() for a, _ in points(m))


def test_instrumentor_in_the_application(spawn, receiver):
    """The application's own SDK exports tasktop's instruments, next to the asyncio
    instrumentation's: that one reports the 3 tasks that finished, and nothing of the 5 stuck."""
    target = spawn(TARGET.format(setup=INSTRUMENTED), RECEIVER=receiver.url)

    def exported() -> dict:
        for rm in reversed(receiver.resources(service_name="shop")):
            got = metrics_of(rm)
            # (the loop's delay is reported once the probe has measured it)
            if "tasktop.eventloop.delay" in got and "asyncio.process.created" in metrics_of(
                    rm, "opentelemetry.instrumentation.asyncio"):
                return {"tasktop": got, "asyncio": metrics_of(rm, "opentelemetry.instrumentation.asyncio"),
                        "resource": attrs(rm.resource.attributes)}
        return {}

    found = wait_until(exported, timeout=30, message="an export with both instrumentations")
    check_tasktop_metrics(found["tasktop"], target.script)
    assert PROCESS_MEMORY_USAGE not in found["tasktop"]  # the application's own to report, not ours
    assert found["resource"][SERVICE_NAME] == "shop"

    created = found["asyncio"]["asyncio.process.created"]
    assert created.unit == "{process}"
    counted = {(a["name"], a["state"]): v for a, v in points(created)}
    assert counted.get(("quick", "finished")) == 3
    assert ("consume", "finished") not in counted and ("consume", "pending") not in counted
    assert "asyncio.process.duration" in found["asyncio"]


def test_a_failed_push_is_one_line_and_the_exporter_goes_on(spawn, sockdir):
    spawn(TARGET.format(setup=""))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKTOP", "OTEL_"))}
    env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "1"
    # A port nobody listens on: bound, never listening, so the connection is refused.
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1/metrics"
        proc = subprocess.Popen([*tasktop_cmd(), "exporter", "--otlp", url, "--otlp-interval", "0.2",
                                 "--directory", sockdir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            lines = [proc.stderr.readline() for _ in range(2)]  # it goes on after the first
        finally:
            proc.send_signal(signal.SIGTERM)
            _, rest = proc.communicate(timeout=30)
    for line in lines + rest.splitlines(keepends=True):  # one line per failed push, and nothing else
        assert line.startswith(f"tasktop exporter: the push to {url} failed (") and \
            line.endswith("; trying again in 0.2 s\n"), line
    assert proc.returncode == 0


@pytest.mark.parametrize("args, message", [
    (["--otlp", "collector:4318"], "tasktop: error: --otlp needs an http:// or https:// URL, like "
                                   "http://localhost:4318/v1/metrics: 'collector:4318'\n"),
    (["--otlp", "http://127.0.0.1:9/v1/metrics", "--otlp-interval", "0"],
     "tasktop: error: argument --otlp-interval: the push interval must be between 0.1 and 3600 seconds "
     "(see 'tasktop exporter --help')\n"),
])
def test_bad_otlp_options_are_one_line(args, message):
    result = tasktop("exporter", *args)
    assert (result.returncode, result.stdout, result.stderr) == (1 if "URL" in message else 2, "", message)
