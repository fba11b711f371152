"""Helpers shared by unit and integration tests that are not fixtures (those are in conftest.py).

Importable as ``support`` because pytest puts ``tests/`` on ``sys.path`` with ``conftest.py``.
"""
