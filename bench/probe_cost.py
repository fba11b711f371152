"""What the probe costs the process it runs in, measured from outside on real targets.

For each task count N this starts two ``workload.py`` targets with N parked tasks, one with
``TASKTOP=1`` and one without, and measures:

* request latency (request sent -> last byte of the reply received) and reply size of the
  first ``summary`` (every await chain walked cold), later ones (walks cached while a task's
  waiter is unchanged), ``group`` (the largest group, first page) and ``full``;
* CPU over a quiet window (no requests, ticker off): the ``tasktop-probe`` thread's own CPU,
  and the whole process's against the target without the probe, plus the probe's own account
  of one background sample (``probe.sample_ms``) and the interval it adapted to (``interval_s``);
* the longest the event loop is held up: the target's 1 ms ticker's largest gap while nothing
  asks (without the probe, and with it: the background samples), while summaries are requested
  back to back, and while full dumps are.

Usage (from the repository root, with tasktop installed in the interpreter running it)::

    python bench/probe_cost.py --tasks 1000 10000 100000
    python bench/probe_cost.py --tasks 100000 --quiet 60 --phase 10 --out /tmp/100k.json

Each N takes about ``quiet + 4 * phase`` seconds plus start-up (a minute and a half by default).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from harness import Target, log, process_cpu_ns, run_sizes, stats_ms, thread_cpu_ns, wait_for

from tasktop.wire import paths
from tasktop import wire
from tasktop.client.probe_client import ProbeClient


def exchange(client: ProbeClient, op: str, **args) -> tuple[float, int, dict]:
    """(seconds from request to the last byte of the reply, reply bytes, data)."""
    sock = client.sock
    sock.settimeout(120.0)
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120.0
    sock.sendall(wire.encode({"op": op, **args}))
    (length,) = wire.HEADER.unpack(wire._recv_exact(sock, wire.HEADER.size, deadline))
    payload = wire._recv_exact(sock, length, deadline)
    elapsed = time.perf_counter() - t0
    reply = wire.decode(payload)
    if not reply.get("ok"):
        raise RuntimeError(f"{op}: {reply.get('error')}")
    return elapsed, length + wire.HEADER.size, reply["data"]


def _repeat(client: ProbeClient, op: str, times: int, **args) -> dict:
    latencies, sizes = [], []
    for _ in range(times):
        elapsed, size, _data = exchange(client, op, **args)
        latencies.append(elapsed)
        sizes.append(size)
    return {**stats_ms(latencies), "bytes": max(sizes)}


def _hammer(target: Target, client: ProbeClient, op: str, seconds: float) -> dict:
    """Request ``op`` back to back for ``seconds`` while the target's ticker runs."""
    client.connect()  # the probe drops a connection left idle for a minute (wire.IDLE_TIMEOUT)
    target.tick()
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(latencies) < 2:
        latencies.append(exchange(client, op)[0])
    return {"loop": target.untick(), "requests": stats_ms(latencies)}


def _idle(target: Target, seconds: float) -> dict:
    target.tick()
    time.sleep(seconds)
    return {"loop": target.untick(), "seconds": round(seconds, 1)}


def measure(n: int, python: str, quiet: float, phase: float) -> dict:
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    out: dict = {"tasks": n}
    log(f"[{n}] starting targets")
    with Target(python, n, {"TASKTOP": "1", "TASKTOP_DIR": directory}) as probed, \
            Target(python, n) as plain:
        out["python"] = probed.info["python"]
        out["live_tasks"] = probed.info["tasks"]
        out["create_us_in_target"] = {"probe": probed.info["create_us"], "plain": plain.info["create_us"]}
        out["rss_kb"] = {"probe": probed.info["rss_kb"], "plain": plain.info["rss_kb"]}
        path = paths.socket_path(probed.pid, directory)
        wait_for(lambda: os.path.exists(path))
        time.sleep(1.0)  # let a background sample see the tasks
        with ProbeClient(path, timeout=120.0) as client:
            log(f"[{n}] latency")
            elapsed, size, data = exchange(client, "summary")
            out["summary_first"] = {"ms": round(elapsed * 1e3, 2), "bytes": size,
                                    "groups": data["totals"]["groups"], "tasks": data["totals"]["tasks"]}
            out["summary_next"] = _repeat(client, "summary", 5)
            largest = data["groups"][0]["id"]
            out["group_page"] = _repeat(client, "group", 3, id=largest, offset=0, limit=100)
            elapsed, size, _ = exchange(client, "full")
            out["full_first"] = {"ms": round(elapsed * 1e3, 2), "bytes": size}
            out["full_next"] = _repeat(client, "full", 2)

            log(f"[{n}] quiet window {quiet:.0f}s")
            tid = probed.info["probe_tid"]
            before = (thread_cpu_ns(probed.pid, tid), process_cpu_ns(probed.pid), process_cpu_ns(plain.pid))
            t0 = time.monotonic()
            time.sleep(quiet)
            wall = time.monotonic() - t0
            after = (thread_cpu_ns(probed.pid, tid), process_cpu_ns(probed.pid), process_cpu_ns(plain.pid))
            pct = [round((a - b) / 1e9 / wall * 100.0, 3) for a, b in zip(after, before)]
            client.connect()
            probe_info = exchange(client, "summary")[2]["probe"]
            out["quiet"] = {"seconds": round(wall, 1), "probe_thread_pct": pct[0],
                            "process_pct": pct[1], "plain_process_pct": pct[2],
                            "sample_ms": probe_info["sample_ms"], "interval_s": probe_info["interval_s"]}

            log(f"[{n}] event-loop hold-up")
            out["holdup_plain_idle"] = _idle(plain, phase)
            # Long enough to contain at least one background sample.
            out["holdup_probe_idle"] = _idle(probed, min(60.0, max(phase, probe_info["interval_s"] + 1.0)))
            out["holdup_summary"] = _hammer(probed, client, "summary", phase)
            out["holdup_full"] = _hammer(probed, client, "full", phase)
    return out


def _gap(phase: dict) -> str:
    """The longest gap, and the longest once garbage collections are taken out of it."""
    loop = phase["loop"]
    return f'{loop["max_ms"]} ms (non-GC {loop.get("max_non_gc_ms", "-")} ms)'


def table(results: list) -> str:
    rows = [
        ("live tasks", lambda r: r["live_tasks"]),
        ("groups", lambda r: r["summary_first"]["groups"]),
        ("RSS after start-up: probe / none", lambda r: f'{r["rss_kb"]["probe"] / 1024:.1f} / {r["rss_kb"]["plain"] / 1024:.1f} MiB'),
        ("background sample (`sample_ms`)", lambda r: f'{r["quiet"]["sample_ms"]} ms'),
        ("sampling interval (`interval_s`)", lambda r: f'{r["quiet"]["interval_s"]} s'),
        ("probe thread CPU, quiet", lambda r: f'{r["quiet"]["probe_thread_pct"]} %'),
        ("process CPU, quiet: probe / none", lambda r: f'{r["quiet"]["process_pct"]} / {r["quiet"]["plain_process_pct"]} %'),
        ("summary, first (cold)", lambda r: f'{r["summary_first"]["ms"]} ms'),
        ("summary, next (median)", lambda r: f'{r["summary_next"]["median_ms"]} ms'),
        ("summary reply size", lambda r: f'{r["summary_next"]["bytes"]:,} B'),
        ("group page of 100 (median)", lambda r: f'{r["group_page"]["median_ms"]} ms'),
        ("full, first", lambda r: f'{r["full_first"]["ms"]} ms'),
        ("full, next (median)", lambda r: f'{r["full_next"]["median_ms"]} ms'),
        ("full reply size", lambda r: f'{r["full_first"]["bytes"]:,} B'),
        ("max loop gap, no probe, idle", lambda r: _gap(r["holdup_plain_idle"])),
        ("max loop gap, probe, idle (background samples)", lambda r: _gap(r["holdup_probe_idle"])),
        ("max loop gap, summaries back to back", lambda r: _gap(r["holdup_summary"])),
        ("max loop gap, full dumps back to back", lambda r: _gap(r["holdup_full"])),
        ("median loop gap: idle / summaries / full", lambda r: " / ".join(
            f'{r[k]["loop"]["median_ms"]}' for k in ("holdup_probe_idle", "holdup_summary", "holdup_full")) + " ms"),
        ("gaps > 10 ms: idle / summaries / full", lambda r: " / ".join(
            str(r[k]["loop"].get("over_10ms")) for k in ("holdup_probe_idle", "holdup_summary", "holdup_full"))),
        ("full GCs during: idle / summaries / full", lambda r: " / ".join(
            str(r[k]["loop"].get("gc_full")) for k in ("holdup_probe_idle", "holdup_summary", "holdup_full"))),
    ]
    head = "| | " + " | ".join(f'{r["tasks"]:,} tasks' for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for name, get in rows:
        cells = []
        for r in results:
            try:
                cells.append(str(get(r)))
            except (KeyError, TypeError, IndexError):
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--python", default=sys.executable, help="the targets' interpreter (tasktop installed)")
    parser.add_argument("--quiet", type=float, default=60.0, help="seconds of the quiet CPU window")
    parser.add_argument("--phase", type=float, default=8.0, help="seconds of each hold-up phase")
    parser.add_argument("--out", help="write the raw results here as JSON")
    parser.add_argument("--table", nargs="*", help="only print the table of these JSON result files")
    args = parser.parse_args()
    if args.table is not None:
        results = []
        for name in args.table:
            with open(name) as fh:
                data = json.load(fh)
            results += data if isinstance(data, list) else [data]
        print(table(sorted(results, key=lambda r: r["tasks"])))
        return
    run_sizes(args.tasks, lambda _i, n: measure(n, args.python, args.quiet, args.phase), args.out, table)


if __name__ == "__main__":
    main()
