"""``tasktop exporter``: Prometheus metrics for every probed process of this machine.

The way a Go service exports ``go_goroutines``, but from the outside and for the whole fleet:
one exporter per host (per user: probe sockets are private to their user) asks every live probe
for its ``summary`` on each scrape and turns the answers into gauges and counters.

- ``collector``: one scrape, from the probe sockets to the metric families.
- ``server``: the options, the HTTP server and ``main`` (``python -m tasktop.exporter``).
"""
