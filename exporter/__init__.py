"""``tasktop exporter``: Prometheus metrics about every probed process of the user."""
