"""The OpenTelemetry instrumentor in a process without a probe registers nothing and says why.
(OTLP from real targets and applications is in integration/test_fleet_otel.py.)"""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("opentelemetry.sdk", reason="OpenTelemetry is not installed (pip install 'tasktop[otel]')")


def test_instrumentor_without_a_probe_registers_nothing(caplog):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import tasktop.probe
    from tasktop.fleet.otel import TasktopInstrumentor

    assert not tasktop.probe.is_running()
    reader = InMemoryMetricReader()
    instrumentor = TasktopInstrumentor()
    with caplog.at_level(logging.WARNING):
        instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        assert "tasktop: the probe is not running (set TASKTOP=1, or pass start_probe=True)" in caplog.text
        data = reader.get_metrics_data()
        assert data is None or not data.resource_metrics
    finally:
        instrumentor.uninstrument()
