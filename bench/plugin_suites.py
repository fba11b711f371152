"""The pytest plugin on other projects' test suites: what it reports there, and what it costs.

A leak checker is only switched on if it is quiet when nothing leaks.  For each suite below, the
project's sdist is fetched from PyPI (``pip download --no-binary :all:``), unpacked, and
installed with its test dependencies and this checkout of tasktop into a venv of its own (uv);
then its tests run plainly and with ``--tasktop-leaks``.  The table gives failed and errored
tests and the wall time of both (with ``--repeat N`` the runs alternate and the fastest of each
kind is kept: the machine may be shared).  Below it, every test the plugin failed is listed with
its report (the groups and their creation sites), and what the plugin let through (known
services) with why.  ``--out`` saves it all as JSON; ``--table`` prints saved runs again.

    python bench/plugin_suites.py                           # every suite, in /tmp/tasktop-suites
    python bench/plugin_suites.py --suite anyio --suite janus --repeat 3
    python bench/plugin_suites.py --python python3.12 --work /srv/suites --out /tmp/suites.json

The machine needs PyPI (or a mirror pip and uv are configured for).  anyio's suite runs its
asyncio backends only (plain asyncio, uvloop, and eager tasks on 3.12+): trio is deselected.
Failures of the plain run (no IPv6, TLS set-up, running as root) are the environment's; the
table's notes say whether the same tests failed in both runs.  In anyio's suite, unraisable
exceptions are not turned into failures (see ``SUITES``): they came from sockets the failing
IPv6 tests leave behind, and moved from test to test with the garbage collector.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTEST = "pytest>=8.4,<8.5"


class Suite(NamedTuple):
    sdist: str  # what pip downloads
    extras: str = ""  # installed with the unpacked sdist, e.g. "[trio]"
    deps: tuple = ()  # its test dependencies
    args: tuple = ()  # given to pytest, in the unpacked sdist


SUITES = {
    "anyio": Suite("anyio==4.11.0", "[trio]",
                   ("blockbuster>=1.5.23", "coverage[toml]>=7", "exceptiongroup>=1.2.0",
                    "hypothesis>=4.0", "psutil>=5.9", "pytest-mock>=3.14", "trustme",
                    "truststore>=0.9.1", "uvloop>=0.21"),
                   # The IPv6 and TLS tests that error here leave sockets unclosed; their
                   # ResourceWarnings fail whichever test a garbage collection happens to run
                   # in (filterwarnings = error), a different one from run to run.
                   ("-k", "not trio", "-W", "ignore::pytest.PytestUnraisableExceptionWarning")),
    "pytest-asyncio": Suite("pytest-asyncio==1.5.0", "", ("coverage>=6.2", "hypothesis>=5.7.1")),
    "asgiref": Suite("asgiref==3.13.0", "[tests]"),
    "janus": Suite("janus==2.0.0", "", ("pytest-asyncio", "pytest-cov", "pytest-codspeed"), ("tests",)),
    "aiofiles": Suite("aiofiles==25.1.0", "", ("pytest-asyncio",), ("tests",)),
}

_SUMMARY = re.compile(r"(\d+) (failed|passed|skipped|deselected|xfailed|xpassed|errors?|warnings?)\b")


def _run(cmd: list, **kwargs) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)


def _uv(python: str) -> list:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def prepare(name: str, suite: Suite, work: str, python: str) -> tuple[str, str, str]:
    """The unpacked sdist, the venv's python (made if they are not there yet) and its version."""
    sdists = os.path.join(work, "sdists")
    os.makedirs(sdists, exist_ok=True)
    project = suite.sdist.split("==")[0]
    pattern = os.path.join(sdists, f"{project.replace('-', '[-_]')}-{suite.sdist.split('==')[1]}.tar.gz")
    if not glob.glob(pattern):
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
              suite.sdist, "-d", sdists])
    archive = glob.glob(pattern)[0]
    source = os.path.join(work, os.path.basename(archive)[:-len(".tar.gz")])
    if not os.path.isdir(source):
        with tarfile.open(archive) as tar:
            tar.extractall(work)
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    venv = os.path.join(work, f"venv-{name}-{version}")
    venv_python = os.path.join(venv, "bin", "python")
    if not os.path.exists(venv_python):
        _run(_uv(python) + ["venv", "-q", "--python", python, venv])
    # tasktop is reinstalled every time: it is what is being measured.
    _run(_uv(python) + ["pip", "install", "-q", "--python", venv_python, "--reinstall-package",
                        "tasktop", source + suite.extras, PYTEST, *suite.deps, ROOT])
    return source, venv_python, version


def run_pytest(source: str, venv_python: str, args: tuple, leaks: bool, log: str) -> dict:
    """One run: its counts, wall time, and the plugin's reports and notes."""
    junit = log[:-len(".log")] + ".xml"
    cmd = [venv_python, "-m", "pytest", "-v", "-p", "no:cacheprovider", f"--junitxml={junit}",
           *args] + (["--tasktop-leaks"] if leaks else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "TASKTOP")}
    started = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=source, stdout=out, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - started
    with open(log) as fh:
        text = fh.read()
    summary = next((line for line in reversed(text.splitlines()) if " in " in line
                    and _SUMMARY.search(line)), "")
    counts = {kind.rstrip("s") if kind.startswith(("error", "warning")) else kind: int(n)
              for n, kind in _SUMMARY.findall(summary)}
    return {"seconds": round(seconds, 1), "failed": counts.get("failed", 0),
            "errors": counts.get("error", 0), "passed": counts.get("passed", 0),
            "summary": summary.strip("= "), "notes": _notes(text), **_junit(junit),
            "log": log}


def _junit(junit: str) -> dict:
    """From the JUnit XML: ``reports``, ``{test id: report}`` of every test the plugin failed,
    and ``failing``, the tests that failed or errored for any other reason."""
    reports: dict = {}
    failing: set = set()
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return {"reports": reports, "failing": []}
    for case in tree.iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        for child in case:
            if child.tag not in ("error", "failure"):
                continue
            text = (child.get("message") or "") + "\n" + (child.text or "")
            start = text.find("tasktop_leaks: the test left")
            if start >= 0:
                body = text[start:].split("\nThreads and tasks that existed before")[0]
                reports[test_id] = body.rstrip()
            else:
                failing.add(test_id)
    return {"reports": reports, "failing": sorted(failing)}


def _notes(text: str) -> list:
    """The lines of the "let through" section of the terminal summary (``-v``)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("=") and "tasktop_leaks: let through" in line:
            out = []
            for note in lines[index + 1:]:
                if note.startswith("=") or not note.strip():
                    break
                out.append(note)
            return out
    return []


def table(results: dict) -> str:
    rows = [("suite", "plain: failed / errors", "plugin: failed / errors", "plain s", "plugin s",
             "slowdown", "runs (s): plain | plugin")]
    for name, result in results.items():
        plain, leaks = result["plain"], result["leaks"]
        rows.append((name, f"{plain['failed']} / {plain['errors']}",
                     f"{leaks['failed']} / {leaks['errors']}", f"{plain['seconds']:.1f}",
                     f"{leaks['seconds']:.1f}", f"{leaks['seconds'] / max(plain['seconds'], 0.1):.2f}x",
                     " ".join(map(str, plain.get("all_seconds", ()))) + " | "
                     + " ".join(map(str, leaks.get("all_seconds", ())))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    for name, result in results.items():
        reports, notes = result["leaks"]["reports"], result["leaks"]["notes"]
        out.append("")
        plain_failing = set(result["plain"].get("failing", ()))
        leaks_failing = set(result["leaks"].get("failing", ()))
        out.append(f"{name}: the same {len(plain_failing & leaks_failing)} test(s) failed or "
                   f"errored in both runs for other reasons than the plugin's reports")
        for label, ids in (("only without", plain_failing - leaks_failing),
                           ("only with", leaks_failing - plain_failing)):
            out.extend(f"  {label} the plugin: {test_id}" for test_id in sorted(ids))
        out.append(f"{name}: {len(reports)} test(s) failed by the plugin, "
                   f"{len(notes)} note(s) of what it let through")
        for test_id, report in sorted(reports.items()):
            out.append(f"  {test_id}")
            out.extend("      " + line for line in report.splitlines() if line.strip())
        counted: dict = {}  # the same note in many tests: once, with how many
        for note in notes:
            test_id, _sep, text = note.partition(": ")
            counted.setdefault(text, []).append(test_id)
        for text, test_ids in counted.items():
            out.append(f"  {text}")
            out.append(f"      in {len(test_ids)} test(s): {', '.join(test_ids[:3])}"
                       + (", ..." if len(test_ids) > 3 else ""))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append", choices=sorted(SUITES),
                        help="a suite to run (repeatable; default: all)")
    parser.add_argument("--work", default="/tmp/tasktop-suites",
                        help="where sdists, venvs and logs go (kept, and reused)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the venvs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each kind, alternating; the fastest is kept (default 1)")
    parser.add_argument("--out", help="save the results as JSON")
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print saved results and exit")
    args = parser.parse_args()
    if args.table:
        results: dict = {}
        for path in args.table:
            with open(path) as fh:
                results.update(json.load(fh))
        print(table(results))
        return
    os.makedirs(args.work, exist_ok=True)
    results = {}
    for name in args.suite or list(SUITES):
        suite = SUITES[name]
        print(f"{name}: preparing", file=sys.stderr, flush=True)
        source, venv_python, version = prepare(name, suite, args.work, args.python)
        results[name] = {}
        for round_ in range(1, max(1, args.repeat) + 1):
            for key, leaks in (("plain", False), ("leaks", True)):
                print(f"{name}: run {round_} {'with --tasktop-leaks' if leaks else 'plain'}",
                      file=sys.stderr, flush=True)
                log = os.path.join(args.work, f"{name}-{version}-{key}-{round_}.log")
                result = run_pytest(source, venv_python, suite.args, leaks, log)
                earlier = results[name].get(key)
                if earlier is not None:  # the fastest run is kept; every run's time is listed
                    result["all_seconds"] = earlier["all_seconds"] + [result["seconds"]]
                    if earlier["seconds"] <= result["seconds"]:
                        result = dict(earlier, all_seconds=result["all_seconds"])
                else:
                    result["all_seconds"] = [result["seconds"]]
                results[name][key] = result
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
