"""What recording costs: file size per hour, the flight recorder's cost to its target, and
replay on a 24-hour recording.

    python bench/recording_cost.py size                  # bytes per hour at 20, 200, 2,000 groups
    python bench/recording_cost.py target --tasks 10000 --quiet 60
    python bench/recording_cost.py replay                # writes a 24 h recording, opens it, keys
    python bench/recording_cost.py replay --file /tmp/rec24h/day.ttrec --presses 15

``size`` and ``replay`` feed the real writer (``wire.recording.Writer``) summaries shaped like the
probe's: every group has a stack of 8 frames and a creation stack, 5% of the groups change
count at each sample, one group grows all day, every group's blocked times grow with the clock (the
youngest member's restarts when the count changes),
RSS, gc counts, loop lag and the probe's sample cost change every sample, a group appears and
one empties every minute; the summary lists at most ``wire.MAX_GROUPS`` (500) groups, as the
probe's does.  ``target`` runs two ``workload.py`` targets with the probe, one with
``TASKTOP_RECORD`` (a summary a second: ``TASKTOP_RECORD_INTERVAL=1``) and one without, side by
side over the same window: process CPU and event-loop gaps.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tasktop.wire import MAX_GROUPS  # noqa: E402
from tasktop.wire.recording import Writer  # noqa: E402


def frames(i: int, depth: int = 8) -> list:
    return [{"func": f"handler_{i}_{d}", "file": f"/srv/shop/service/module_{d}.py", "line": 10 + i % 97 + d}
            for d in range(depth)]


class Process:
    """A synthetic process with ``groups`` groups, one summary per ``step()``."""

    def __init__(self, groups: int, seed: int = 14) -> None:
        self.rng = random.Random(seed)
        self.t = 1_800_000_000.0
        self.next_id = 0
        self.groups = [self._group() for _ in range(groups)]

    def _group(self) -> dict:
        i, self.next_id = self.next_id, self.next_id + 1
        return {"id": f"{i:012x}", "kind": "task" if i % 10 else "thread", "count": self.rng.randint(1, 50),
                "state": "Queue.get" if i % 3 else "Event.wait", "since": self.t - self.rng.uniform(0, 600),
                "stack": frames(i), "created_by": [{"count": 1, "stack": frames(i + 1, 4), "in_tasks": [1]}]}

    def step(self) -> dict:
        self.t += 1.0
        rng = self.rng
        for group in rng.sample(self.groups, max(1, len(self.groups) // 20)):
            group["count"] = max(1, group["count"] + rng.choice((-1, 1)))
            group["youngest"] = self.t  # a member came or went: the youngest is new
        self.groups[0]["count"] += 1  # the leak
        self.groups[0]["youngest"] = self.t
        if int(self.t) % 60 == 0:
            self.groups.pop(rng.randrange(1, len(self.groups)))
            self.groups.append(self._group())
        ordered = sorted(self.groups, key=lambda g: (-g["count"], g["kind"], g["id"]))
        out = []
        for g in ordered[:MAX_GROUPS]:
            created = [dict(g["created_by"][0], count=g["count"])]
            out.append({"id": g["id"], "kind": g["kind"], "count": g["count"], "state": g["state"],
                        "blocked_min_s": round(self.t - g.get("youngest", g["since"]), 3), "blocked_max_s": round(self.t - g["since"], 3),
                        "stack": g["stack"], "created_by": created})
        return {
            "schema": 1, "time": self.t,
            "process": {"pid": 4242, "ppid": 1, "argv": ["/srv/shop/app.py"], "python": "3.11.7",
                        "implementation": "CPython", "executable": "/usr/bin/python3", "started_at": 1_799_999_000.0},
            "probe": {"version": "0.1.0", "interval_s": 1.0, "sample_ms": round(rng.uniform(1, 3), 3),
                      "creation_stacks": True, "tracemalloc": False},
            "totals": {"tasks": sum(g["count"] for g in self.groups), "threads": 4, "loops": 1,
                       "groups": len(self.groups)},
            "memory": {"rss_bytes": 200_000_000 + int(self.t) % 100_000 * 4096, "rss_peak_bytes": 300_000_000,
                       "gc_counts": [rng.randint(0, 700), rng.randint(0, 10), rng.randint(0, 10)],
                       "gc_collections": [int(self.t) % 10_000, 100, 3], "tracemalloc": None},
            "loops": [{"id": 1, "thread": 1, "thread_name": "MainThread", "type": "asyncio.unix_events._UnixSelectorEventLoop",
                       "tasks": sum(g["count"] for g in self.groups if g["kind"] == "task"),
                       "lag_ms": round(rng.uniform(0.05, 2.0), 3), "stall_count": 3,
                       "stalls": [{"at": 1_799_999_500.0 + s, "duration_ms": 150.0, "stack": frames(9000 + s)}
                                  for s in range(3)]}],
            "groups": out,
        }


def write_recording(path: str, groups: int, samples: int) -> tuple[int, float]:
    process = Process(groups)
    with open(path, "wb") as fh:
        first = process.step()
        writer = Writer(fh.write, {"process": first["process"], "started": first["time"]})
        started = time.perf_counter()
        writer.sample(first)
        for _ in range(samples - 1):
            writer.sample(process.step())
    return writer.bytes, time.perf_counter() - started


def cmd_size(args) -> None:
    print("| groups | bytes per hour (1 s) | per sample | a day (1 s) | writer CPU per sample |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for groups in args.groups:
        with tempfile.TemporaryDirectory() as directory:
            size, cpu = write_recording(os.path.join(directory, "r.ttrec"), groups, 3600)
        print(f"| {groups:,} | {size / 1e6:.2f} MB | {size / 3600:.0f} B | {size * 24 / 1e6:.1f} MB | "
              f"{cpu / 3600 * 1e3:.2f} ms |", flush=True)


def cmd_target(args) -> None:
    from harness import Target, process_cpu_ns

    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    record = os.path.join(directory, "flight")
    base = {"TASKTOP": "1", "TASKTOP_DIR": directory}
    with Target(args.python, args.tasks, dict(base)) as off, \
            Target(args.python, args.tasks, dict(base, TASKTOP_RECORD=record, TASKTOP_RECORD_INTERVAL="1")) as on:
        time.sleep(5.0)
        before = {name: process_cpu_ns(t.pid) for name, t in (("off", off), ("on", on))}
        off.tick()
        on.tick()
        t0 = time.monotonic()
        time.sleep(args.quiet)
        wall = time.monotonic() - t0
        gaps = {"off": off.untick(), "on": on.untick()}
        after = {name: process_cpu_ns(t.pid) for name, t in (("off", off), ("on", on))}
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(record) for f in files)
        from tasktop.wire.recording import Recording

        recorded = len(Recording(os.path.join(record, os.listdir(record)[0])))
    print(f"{args.tasks:,} tasks, {wall:.0f} s window, flight recording {size / 1024:.0f} KB on disk, "
          f"{recorded} samples")
    print("| TASKTOP_RECORD | process CPU | loop gap median | p99 | max | gaps > 5 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in ("off", "on"):
        g = gaps[name]
        cpu = (after[name] - before[name]) / 1e9 / wall * 100
        print(f"| {name} | {cpu:.2f}% | {g.get('median_ms')} ms | {g.get('p99_ms')} ms | {g.get('max_ms')} ms | "
              f"{g.get('over_5ms')} |")


def cmd_replay(args) -> None:
    from tasktop.client.recorded import RecordedConnection, open_recording
    from tasktop.tui.app import TasktopApp
    from tasktop.tui.replay import ReplayScreen

    path = args.file or os.path.join(tempfile.mkdtemp(prefix="tasktop-bench-"), "day.ttrec")
    if not os.path.exists(path):
        size, cpu = write_recording(path, args.groups, args.hours * 3600)
        print(f"wrote {args.hours} h at {args.groups} groups: {size / 1e6:.1f} MB in {cpu:.0f} s", flush=True)
    t0 = time.perf_counter()
    recording = open_recording(path)
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    recording.summary(len(recording) - 1)
    first = time.perf_counter() - t0
    print(f"open (index every record): {opened * 1e3:.0f} ms; the last summary: {first * 1e3:.0f} ms; "
          f"{len(recording):,} samples")

    async def keys() -> dict:
        app = TasktopApp(replay=(recording, None))
        timings: dict = {}
        async with app.run_test(size=(120, 40)) as pilot:
            while not (isinstance(app.screen, ReplayScreen) and app.screen.index >= 0):
                await pilot.pause(0.01)
            # Each is the time ``pilot.press`` takes: the key handled and the screen redrawn.
            # "x" is bound to nothing (the floor), "s" is the live view's sort (a redraw of the
            # same table, for comparison).
            # "jump to a new moment" goes each time where no key went before (nothing of it
            # read yet: the deltas from the key summary before it); "jump -12h" again and again.
            for label, key, before in (("x (no binding)", "x", None), ("s (sort, as live)", "s", None),
                                       ("step back (,)", "comma", None), ("step forward (.)", "full_stop", None),
                                       ("start (g)", "g", "G"), ("end (G)", "G", "g"),
                                       ("jump -12h (j … Enter)", "enter", "j -12h"),
                                       ("jump to a new moment (j -Nm … Enter)", "enter", "j new")):
                samples = []
                for n in range(args.presses):
                    if before == "j -12h":
                        await pilot.press("G", "j", *"-12h")
                    elif before == "j new":
                        await pilot.press("G", "j", *f"-{300 + 37 * n}m")
                    elif before:
                        await pilot.press(before)
                    t0 = time.perf_counter()
                    await pilot.press(key)
                    samples.append(time.perf_counter() - t0)
                timings[label] = samples
        return timings

    timings = asyncio.run(keys())
    print("| key | median | max |")
    print("| --- | ---: | ---: |")
    for label, values in timings.items():
        values = sorted(values)
        print(f"| {label} | {values[len(values) // 2] * 1e3:.0f} ms | {values[-1] * 1e3:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    size = sub.add_parser("size")
    size.add_argument("--groups", type=int, nargs="+", default=[20, 200, 2000])
    target = sub.add_parser("target")
    target.add_argument("--tasks", type=int, default=10000)
    target.add_argument("--quiet", type=float, default=60.0)
    target.add_argument("--python", default=sys.executable)
    replay = sub.add_parser("replay")
    replay.add_argument("--groups", type=int, default=200)
    replay.add_argument("--hours", type=int, default=24)
    replay.add_argument("--file", help="a recording to open (written first when it does not exist)")
    replay.add_argument("--presses", type=int, default=7, help="presses of each key (the median and maximum of them)")
    args = parser.parse_args()
    {"size": cmd_size, "target": cmd_target, "replay": cmd_replay}[args.what](args)


if __name__ == "__main__":
    main()
