"""The rule the probe's imports are held to: the standard library, msgpack and the probe's and
the protocol's own packages, nothing else.

One copy for both checks: the import statements in the files (unit/test_probe_import_statements.py)
and the imports a real probe executes (integration/test_probe_imports.py).
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
import sysconfig

OURS = ("tasktop.probe", "tasktop.wire")
ALLOWED_THIRD_PARTY = {"msgpack"}


def stdlib_by_location(name: str) -> bool:
    """Python 3.9 has no ``sys.stdlib_module_names``: a module is the standard library's when
    it is built in or frozen, or lives under the standard library's directories but not in
    site-packages."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    return in_stdlib_dir(spec.origin or next(iter(spec.submodule_search_locations or ()), ""))


def in_stdlib_dir(path: str) -> bool:
    """Whether ``path`` is under the standard library's directories but not in site-packages."""
    paths = sysconfig.get_paths()
    stdlib = tuple(os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib"))
    packages = tuple(os.path.realpath(paths[k]) + os.sep for k in ("purelib", "platlib"))
    where = os.path.realpath(path)
    return where.startswith(stdlib) and not where.startswith(packages)


def is_stdlib(top: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)
    return top in names if names is not None else stdlib_by_location(top)


def refused(absolute: str, fromlist: tuple) -> list[str]:
    """What an import of ``absolute`` (``from absolute import *fromlist``) brings in beyond the
    standard library, msgpack and the probe's and protocol's own packages."""
    top = absolute.split(".")[0]
    if top == "tasktop":
        if absolute == "tasktop":
            return [f"tasktop.{name}" for name in fromlist if f"tasktop.{name}" not in OURS]
        return [] if absolute.startswith(tuple(o + "." for o in OURS)) or absolute in OURS else [absolute]
    if top in ALLOWED_THIRD_PARTY or is_stdlib(top):
        return []
    return [absolute]


def absolute_name(name: str, level: int, package: str) -> str:
    """The module a (possibly relative) import names, seen from ``package``."""
    if not level:
        return name
    base = package.split(".")
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_in(source: str, package: str) -> list[tuple[str, tuple, int]]:
    """``(module, fromlist, line)`` of every import statement in ``source``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((alias.name, (), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = absolute_name(node.module or "", node.level, package)
            out.append((module, tuple(alias.name for alias in node.names), node.lineno))
    return out
