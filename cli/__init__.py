"""The ``tasktop`` command."""
