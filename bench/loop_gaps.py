"""What held the event loop up during a dump: its longest gaps, and what the probe thread ran.

A ``workload.py`` target with N parked tasks (and 300 orphans, a crowd of 1,000) is dumped twice
with ``tasktop dump PID --json`` (leak verdicts on, as users run it; ``--dump`` for others):
the first dump walks every chain, the second finds them walked.  For each dump: its wall time, the ticker's longest gaps
that began during it (when, how long), the collector's share of the dump, and the loop's own
jitter over 3 s with nobody asking.  Each long gap is given the loop thread's own time on a CPU
and waiting for one (``/proc/thread-self/schedstat``): neither means it waited for the GIL;
waiting means no CPU was free; running for most of the gap with no Python to show for it
(below) means its CPU was taken from under it (by the hypervisor, here).  With ``--perf``,
``perf record`` samples the probe thread and the loop's during each dump (``-k
CLOCK_MONOTONIC``: the clock the ticker's ``perf_counter`` reads on Linux), and each long gap is
given the functions they were in during it (the loop's marked ``loop:``): ``leaf`` with the
kernel's frames (page faults show there), ``dwarf`` with the whole native stack (slower; needs a
libpython with symbols); ``sched`` records every CPU's context switches and wake-ups instead
(``perf sched record``) and gives each long gap what ran on each CPU, the probe thread's longest
time on a CPU without a switch, and how many times the loop thread was woken and put on a CPU
(woken again and again in one gap: woken at the probe's yields, it found the GIL taken again
each time).  This
machine's second vCPU records no switch out of idle, so what follows one there shows as idle;
the wake-ups are recorded on the waker's CPU and are all there.

    python bench/loop_gaps.py --tasks 1000000 --python /tmp/venv/bin/python
    python bench/loop_gaps.py --tasks 1000000 --python /tmp/venv/bin/python --perf dwarf --over 8
    python bench/loop_gaps.py --tasks 1000000 --python /tmp/venv/bin/python --dump "--full" --perf leaf
    python bench/loop_gaps.py --tasks 1000000 --python /tmp/venv/bin/python --dump "--full" --perf sched --over 10

Linux only; ``--perf`` needs ``perf`` and the right to trace the target.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import Target, log, wait_for

#: Kernel frames of a page fault, skipped when a sample's caller is shown.
_FAULT = ("clear_page", "get_page", "__alloc", "alloc_pages", "vma_alloc", "do_anonymous_page",
          "__handle_mm_fault", "handle_mm_fault", "exc_page_fault", "asm_exc_page_fault", "_raw_spin",
          "__rmqueue", "folio", "__folio", "[unknown]")


def _samples(data: str, loop_tid: int) -> list:
    """``(time, loop, [function, ...])`` of each sample in a ``perf.data``, innermost first;
    ``loop``: taken on the loop's thread (else the probe's)."""
    text = subprocess.run(["perf", "script", "-i", data, "-F", "tid,time,ip,sym"], capture_output=True,
                          text=True).stdout
    out = []
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        try:
            tid, when = lines[0].split(":")[0].split()
            when = float(when)
        except ValueError:
            continue
        out.append((when, int(tid) == loop_tid,
                    [(line.split(None, 1) + ["?"])[1].replace(" (inlined)", "") for line in lines[1:]]))
    return out


def _ran(samples: list, start: float, ms: float, depth: int) -> list:
    """What the two threads were sampled in from ``start`` for ``ms``: ``(frames, count)``."""
    found: collections.Counter = collections.Counter()
    for when, loop, frames in samples:
        if start <= when <= start + ms / 1000:
            fault = any(f.startswith(("clear_page", "do_anonymous_page")) for f in frames)
            shown = [f for f in frames if not f.startswith(_FAULT)][:depth]
            found[("loop: " if loop else "") + ("page fault in " if fault else "") + " < ".join(shown)] += 1
    return found.most_common(5)


_SWITCH = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:.* prev_pid=(\d+) prev_prio=\d+ "
                     r"prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)")


_WAKING = re.compile(r"^\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_waking: comm=.* pid=(\d+) prio")


def _switches(data: str) -> tuple:
    """Per CPU, ``[(time, comm, pid), ...]``: who ran on it from each ``sched_switch`` on; and
    per thread, the times it was woken (``sched_waking``, recorded on the waker's CPU)."""
    text = subprocess.run(["perf", "script", "-i", data, "-F", "tid,cpu,time,event,trace"], capture_output=True,
                          text=True).stdout
    cpus: dict = collections.defaultdict(list)
    wakings: dict = collections.defaultdict(list)
    for line in text.splitlines():
        found = _SWITCH.search(line)
        if found:
            cpu, when, prev, state, comm, pid = found.groups()
            cpus[int(cpu)].append((float(when), comm.strip(), int(pid), int(prev), state))
            continue
        found = _WAKING.search(line)
        if found:
            waker, _cpu, when, pid = found.groups()
            wakings[int(pid)].append((float(when), int(waker)))
    return cpus, wakings


def _on_cpus(cpus: dict, start: float, ms: float, names: dict) -> tuple:
    """What ran on each CPU from ``start`` for ``ms``, ``[(cpu, [(who, ms), ...]), ...]``, and
    the probe thread's longest time on a CPU without a switch in that window (ms), and how many
    times the loop thread was put on a CPU in it."""
    end = start + ms / 1000
    out, stretch, runs = [], 0.0, 0
    for cpu, timeline in sorted(cpus.items()):
        spent: collections.Counter = collections.Counter()
        for (when, comm, pid, _, _), (after, *_) in zip(timeline, timeline[1:] + [(end, "", 0, 0, "")]):
            overlap = min(after, end) - max(when, start)
            if overlap > 0:
                who = names.get(pid, "idle" if pid == 0 else f"{comm}:{pid}")
                spent[who] += overlap * 1000
                if who == "probe":
                    stretch = max(stretch, overlap * 1000)
                runs += who == "loop" and when >= start
        out.append((cpu, spent.most_common(4)))
    return out, stretch, runs


def dump_once(target: Target, tasktop: str, directory: str, args: argparse.Namespace, name: str) -> None:
    perf = data = None
    if args.perf == "sched":  # every CPU's context switches, to see whom the loop thread waited behind
        data = os.path.join(directory, f"{name}.perf")
        perf = subprocess.Popen(["perf", "sched", "record", "-k", "CLOCK_MONOTONIC", "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    elif args.perf != "none":
        data = os.path.join(directory, f"{name}.perf")
        graph = ["--call-graph", "dwarf,16384"] if args.perf == "dwarf" else ["-g"]
        threads = f"{target.info['probe_tid']},{target.pid}"  # the loop runs on the main thread
        perf = subprocess.Popen(["perf", "record", "-F", str(args.frequency), "-t", threads,
                                 "-k", "CLOCK_MONOTONIC", *graph, "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    target.tick(threads=True)
    started = time.perf_counter()
    # Started, not run: its pid names it in what ``--perf sched`` saw on the CPUs.
    reply = subprocess.Popen([tasktop, "dump", str(target.pid), *args.dump.split()], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "TASKTOP_DIR": directory})
    reply.communicate()
    wall = time.perf_counter() - started
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    gaps = target.untick()
    within = [(at, ms) for at, ms in gaps.get("longest", ()) if started <= at <= started + wall]
    long = [(at, ms) for at, ms in within if ms > args.over]
    longest = max((ms for _, ms in within), default=0.0)
    print(f"{name} dump: {wall:.2f} s (exit {reply.returncode}); longest gap {longest:.1f} ms; "
          f"{len(long)} over {args.over:g} ms; the collector {gaps.get('gc_ms', 0):.0f} ms in "
          f"{gaps.get('gc_collections', 0)} collections")
    ran, waited = gaps.get("loop_thread_ms") or (0.0, 0.0)
    print(f"  the loop thread: {ran:.0f} ms on a CPU, {waited:.0f} ms waiting for one")
    in_gaps = {round(at, 6): cpu for at, cpu in gaps.get("loop_thread_in_gaps", ())}
    sched = args.perf == "sched"
    samples = _samples(data, target.pid) if data and not sched else []
    cpus, wakings = _switches(data) if sched else ({}, {})
    names = {target.pid: "loop", target.info["probe_tid"]: "probe", reply.pid: "tasktop"}
    for at, ms in sorted(long):
        cpu = in_gaps.get(round(at, 6))
        print(f"  {ms:5.1f} ms from +{at - started:.2f} s"
              + (f"; the loop thread ran {cpu[0]} ms, waited {cpu[1]} ms for a CPU" if cpu else ""))
        for frames, count in _ran(samples, at, ms, args.depth):
            print(f"      {count:3d} samples: {frames}")
        if sched:
            on_cpus, stretch, runs = _on_cpus(cpus, at, ms, names)
            for cpu, spent in on_cpus:
                print(f"      cpu{cpu}: " + ", ".join(f"{who} {spent_ms:.1f} ms" for who, spent_ms in spent))
            wakers = collections.Counter(names.get(waker, str(waker)) for when, waker in wakings.get(target.pid, ())
                                         if at <= when <= at + ms / 1000)
            left = collections.Counter(state for timeline in cpus.values() for when, _, _, prev, state in timeline
                                       if prev == target.pid and at <= when <= at + ms / 1000)
            print(f"      the probe thread's longest stretch on a CPU: {stretch:.1f} ms; "
                  f"the loop thread put on a CPU {runs} times, woken {sum(wakers.values())} times "
                  f"({', '.join(f'by {who} x{n}' for who, n in wakers.most_common())}), left a CPU "
                  f"{', '.join(f'{state} x{n}' for state, n in left.most_common())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter (tasktop installed)")
    parser.add_argument("--over", type=float, default=8.0, help="gaps longer than this (ms) are listed")
    parser.add_argument("--perf", choices=("none", "leaf", "dwarf", "sched"), default="none")
    parser.add_argument("--frequency", type=int, default=4000, help="perf's samples a second (dwarf: 1000)")
    parser.add_argument("--depth", type=int, default=6, help="frames shown per sample")
    parser.add_argument("--dump", default="--json", help="the dump's options (default: --json)")
    args = parser.parse_args()
    if args.perf != "none" and shutil.which("perf") is None:
        parser.error("--perf needs perf on the PATH")
    directory = tempfile.mkdtemp(prefix="tasktop-bench-")
    tasktop = os.path.join(os.path.dirname(args.python), "tasktop")
    log(f"[{args.tasks}] starting the target")
    extra = ("--orphans", "100", "--crowd", "1000")
    try:
        with Target(args.python, args.tasks, {"TASKTOP": "1", "TASKTOP_DIR": directory}, extra) as target:
            wait_for(lambda: os.path.exists(os.path.join(directory, f"{target.pid}.sock")), timeout=120)
            target.tick()
            time.sleep(3.0)
            idle = target.untick()
            print(f"{target.info['tasks']:,} tasks; the loop alone: longest gap {idle['max_ms']:.1f} ms")
            for name in ("first", "second"):
                dump_once(target, tasktop, directory, args, name)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
