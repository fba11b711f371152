"""The same measurements for aiomonitor, for scale: its ``ps``, its web UI's task list, CPU at rest.

The target is the same ``workload.py``, started with ``--aiomonitor`` (aiomonitor's ``Monitor``
with ``hook_task_factory=True``, so its tasks carry creation stacks, which is what tasktop's
creation hook offers) under an interpreter that has aiomonitor installed::

    python -m venv /tmp/venv-bench && /tmp/venv-bench/bin/pip install aiomonitor
    python bench/aiomonitor_cost.py --python /tmp/venv-bench/bin/python --tasks 1000 10000 100000

``ps`` is driven over aiomonitor's telnet UI as a user would (telnet options answered, the
command typed, the time taken until the whole table and the next prompt have arrived); the web
UI's ``POST /api/live-tasks`` is the same listing as JSON.  While they run, the target's 1 ms
ticker records how long its event loop is held up.  Task creation cost with aiomonitor's
factory is measured by ``creation_cost.py --aiomonitor-python``.
"""
from __future__ import annotations

import argparse
import json
import socket
import time
import urllib.request

from harness import Target, log, process_cpu_ns, run_sizes, stats_ms

IAC, SB, SE, WILL = 255, 250, 240, 251
NAWS, TTYPE = 31, 24


class Telnet:
    """Just enough of a telnet client for aiomonitor's prompt_toolkit UI."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._drain(1.0)
        self.sock.sendall(bytes([IAC, WILL, NAWS, IAC, SB, NAWS, 0, 200, 0, 50, IAC, SE,
                                 IAC, WILL, TTYPE, IAC, SB, TTYPE, 0]) + b"xterm" + bytes([IAC, SE]))
        self._drain(1.0)

    def _drain(self, quiet: float) -> bytes:
        self.sock.settimeout(quiet)
        buf = b""
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    break
                buf += data
        except socket.timeout:
            pass
        return buf

    def ps(self, timeout: float = 300.0) -> tuple[float, int]:
        """(seconds until the table and the next prompt arrived, bytes received)."""
        self.sock.settimeout(timeout)
        t0 = time.perf_counter()
        self.sock.sendall(b"ps\r")
        buf = bytearray()
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("aiomonitor closed the connection")
            buf += data
            at = buf.find(b"tasks running")
            if at >= 0 and buf.find(b"monitor >>> ", at) >= 0:
                return time.perf_counter() - t0, len(buf)

    def close(self) -> None:
        self.sock.close()


def live_tasks(port: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/live-tasks", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=300) as reply:
        body = reply.read()
    elapsed = time.perf_counter() - t0
    json.loads(body)
    return elapsed, len(body)


def measure(n: int, python: str, port: int, quiet: float, repeat: int) -> dict:
    out: dict = {"tasks": n}
    log(f"[aiomonitor {n}] starting the target")
    with Target(python, n, extra=("--aiomonitor", "--port", str(port))) as target:
        out["python"] = target.info["python"]
        out["create_us_in_target"] = target.info["create_us"]
        time.sleep(1.0)
        log(f"[aiomonitor {n}] quiet window {quiet:.0f}s")
        before = process_cpu_ns(target.pid)
        t0 = time.monotonic()
        time.sleep(quiet)
        wall = time.monotonic() - t0
        out["quiet_process_pct"] = round((process_cpu_ns(target.pid) - before) / 1e9 / wall * 100.0, 3)
        telnet = Telnet(port)
        try:
            log(f"[aiomonitor {n}] ps")
            target.tick()
            runs = [telnet.ps() for _ in range(repeat)]
            out["ps"] = {**stats_ms([r[0] for r in runs]), "bytes": max(r[1] for r in runs),
                         "loop": target.untick()}
        finally:
            telnet.close()
        log(f"[aiomonitor {n}] web UI")
        target.tick()
        runs = [live_tasks(port + 1) for _ in range(repeat)]
        out["webui_live_tasks"] = {**stats_ms([r[0] for r in runs]), "bytes": max(r[1] for r in runs),
                                   "loop": target.untick()}
    return out


def table(results: list) -> str:
    rows = [
        ("`ps` over telnet, median", lambda r: f'{r["ps"]["median_ms"]} ms'),
        ("`ps` output", lambda r: f'{r["ps"]["bytes"]:,} B'),
        ("max loop gap during `ps`", lambda r: f'{r["ps"]["loop"]["max_ms"]} ms (non-GC {r["ps"]["loop"]["max_non_gc_ms"]})'),
        ("web UI task list, median", lambda r: f'{r["webui_live_tasks"]["median_ms"]} ms'),
        ("web UI reply", lambda r: f'{r["webui_live_tasks"]["bytes"]:,} B'),
        ("max loop gap during web UI list", lambda r: f'{r["webui_live_tasks"]["loop"]["max_ms"]} ms (non-GC {r["webui_live_tasks"]["loop"]["max_non_gc_ms"]})'),
        ("process CPU, quiet", lambda r: f'{r["quiet_process_pct"]} %'),
    ]
    lines = ["| aiomonitor | " + " | ".join(f'{r["tasks"]:,} tasks' for r in results) + " |",
             "|---" * (len(results) + 1) + "|"]
    for name, get in rows:
        cells = []
        for r in results:
            try:
                cells.append(str(get(r)))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="an interpreter with aiomonitor installed")
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--port", type=int, default=20501, help="telnet port (web UI: +1)")
    parser.add_argument("--quiet", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    run_sizes(args.tasks, lambda i, n: measure(n, args.python, args.port + 10 * i, args.quiet, args.repeat),
              args.out, table)


if __name__ == "__main__":
    main()
