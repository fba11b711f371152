"""One module per ``tasktop`` command; ``tasktop.cli.registry`` finds every module here.

A command module declares ``name``, ``description``, ``add_arguments(parser)`` and
``run(args) -> int`` (the ``registry.Command`` protocol).  Heavy imports (the TUI, the
renderers, prometheus_client) go inside ``run``: every command module is imported to find the
commands, so what one imports at the top every ``tasktop`` invocation pays for.
"""
