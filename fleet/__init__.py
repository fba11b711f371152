"""tasktop for a fleet: Prometheus alerting rules, a Grafana dashboard, and OpenTelemetry metrics.

Everything here works on what ``tasktop exporter`` (or the in-process probe) already reports;
the optional pieces (the Grafana SDK, OpenTelemetry) are imported only by the modules that need
them, and only when those are asked for.
"""


class FleetError(Exception):
    """A fleet command cannot do what it was asked; the message is one line (``tasktop: error: …``)."""


def version() -> str:
    """tasktop's installed version: the instrumentation scope's version."""
    try:
        from importlib.metadata import version as installed

        return installed("tasktop")
    except Exception:
        return "0"
