"""Record the frozen data the TUI snapshot tests replay (``tui_recorded.json``).

Run from the repository root: ``python tests/integration/data/record_tui.py``.  It starts the
demo target with the probe and tracemalloc on, takes one summary a second for 12 seconds (enough
history for growth rates and the leak marker), then the detail replies the snapshot tests open: the
leaking group, a task with an awaiter chain, a thread stuck on a lock, memory.  Everything that
would differ between runs or machines is then pinned: pid, clock (shifted to a fixed epoch,
whole seconds apart), and file paths (rewritten to paths that do not exist here, so the TUI
shows the probe's source lines and never reads a local file).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # tests/, for conftest

from conftest import Target, target_env, wait_until  # noqa: E402

import tasktop.demo.target  # noqa: E402
import tasktop.probe  # noqa: E402

EPOCH = 1767225600.0  # 2026-01-01 00:00:00 UTC
PID = 4242
SAMPLES = 12


def rewrite_paths(obj, replacements):
    if isinstance(obj, dict):
        return {k: rewrite_paths(v, replacements) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rewrite_paths(v, replacements) for v in obj]
    if isinstance(obj, str):
        for old, new in replacements:
            if obj.startswith(old):
                return new + obj[len(old):]
    return obj


def main() -> None:
    directory = tempfile.mkdtemp(prefix="tt-rec-", dir="/tmp")
    env = target_env(directory, TASKTOP_TRACEMALLOC="1", TASKTOP_INTERVAL="0.5")
    proc = subprocess.Popen([sys.executable, "-m", "tasktop.demo", "--ready", "--rate", "5"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = Target(proc, directory, "demo")
    try:
        target.wait_ready()
        wait_until(lambda: target.summary()["totals"]["loops"] == 2, message="both loops")
        time.sleep(6)  # let a stall or two happen
        with target.client() as client:
            summaries = []
            for _ in range(SAMPLES):
                summaries.append(client.summary())
                time.sleep(1.0)
            last = summaries[-1]
            leak = max(last["groups"], key=lambda g: g["count"])
            group_leak = client.group(leak["id"], 0, 100)
            invoices = next(g for g in last["groups"] if g["state"] == "await task")
            group_invoices = client.group(invoices["id"], 0, 100)
            task_id = group_invoices["items"][0]["id"]
            task = client.task(task_id)
            child = client.task(task["awaiting_chain"][0]["id"])
            writers = next(g for g in last["groups"] if g["kind"] == "thread" and g["state"] == "Lock.acquire")
            group_writers = client.group(writers["id"], 0, 100)
            thread = client.thread(group_writers["items"][0]["ident"])
            memory = client.memory(30)
    finally:
        target.stop()

    start = summaries[0]["time"]
    shift = lambda t: EPOCH + (t - start)  # noqa: E731
    for number, summary in enumerate(summaries):
        summary["time"] = EPOCH + number  # whole seconds apart, as the TUI would see at interval 1
        for loop in summary["loops"]:
            for stall in loop["stalls"]:
                stall["at"] = round(shift(stall["at"]), 3)
    for data in summaries:
        data["process"].update(pid=PID, ppid=1, started_at=EPOCH - 95.0, executable="/usr/bin/python3",
                               argv=["/srv/shop/demo.py", "--rate", "5"])
    root = os.path.dirname(os.path.dirname(os.path.abspath(tasktop.probe.__file__)))
    replacements = [
        (os.path.abspath(tasktop.demo.target.__file__), "/srv/shop/demo.py"),
        (root + os.sep, "/srv/tasktop/"),
        (sysconfig.get_paths()["purelib"] + os.sep, "/opt/venv/lib/python3.11/site-packages/"),
        (sysconfig.get_paths()["stdlib"] + os.sep, "/opt/python3.11/lib/python3.11/"),
    ]
    recorded = rewrite_paths({
        "summaries": summaries,
        "groups": {leak["id"]: group_leak, invoices["id"]: group_invoices, writers["id"]: group_writers},
        "tasks": {str(task_id): task, str(child["id"]): child},
        "threads": {str(thread["ident"]): thread},
        "memory": memory,
    }, replacements)
    path = os.path.join(HERE, "tui_recorded.json")
    with open(path, "w") as fh:
        json.dump(recorded, fh, indent=None, separators=(",", ":"), sort_keys=True)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
