"""Make the README's screenshots: the real app, attached to the real demo target.

Run from anywhere with the dev environment's Python::

    python screenshots/make_screenshots.py [--size 100x30] [--wait 15] [--only verdicts,help]

It starts ``python -m tasktop.demo`` with the probe (and tracemalloc) on, attaches the
app in a headless terminal, lets it watch for ``--wait`` seconds so the history and the leak
marker have something to show, then visits every screen and writes ``NAME.svg`` and
``NAME.png`` next to this script (with ``--only``, just the named ones: main, group, task,
thread, stalls, memory, waits, verdicts, help, picker, replay).  ``replay`` is ``tasktop replay``
on a recording of the same demo, made by ``tasktop record`` while the other screens were shot.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MONO_FONT = os.environ.get("TASKTOP_SCREENSHOT_FONT", "DejaVu Sans Mono")
SCREENS = ("main", "group", "task", "thread", "stalls", "memory", "waits", "verdicts", "help", "picker", "replay")
ONLY: set = set(SCREENS)


def start_demo(directory: str) -> subprocess.Popen:
    env = dict(os.environ, TASKTOP="1", TASKTOP_DIR=directory, TASKTOP_TRACEMALLOC="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tasktop.demo", "--ready"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"the demo did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc


def wait_for_socket(path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"no probe socket at {path}")
        time.sleep(0.05)


async def until(pilot, predicate, timeout: float = 15.0, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            if not fail:
                return
            raise SystemExit("timed out waiting for the app")
        await pilot.pause(0.05)


def to_png(svg: str) -> str:
    """Render the SVG with a monospace font that is installed: Textual's SVG asks for Fira Code
    from the web, which cairosvg cannot fetch, and a proportional fallback misaligns columns."""
    import cairosvg

    with open(svg, encoding="utf-8") as fh:
        text = fh.read()
    text = text.replace("Fira Code, monospace", f"{MONO_FONT}, monospace").replace('"Fira Code"', f'"{MONO_FONT}"')
    png = svg[:-4] + ".png"
    cairosvg.svg2png(bytestring=text.encode("utf-8"), write_to=png)
    return png


async def shoot(app, name: str, out: str) -> None:
    if name not in ONLY:
        return
    svg = app.save_screenshot(f"{name}.svg", path=out)
    print(to_png(svg))


async def attached_screens(path: str, size: tuple, wait: float, out: str) -> None:
    from tasktop.tui.app import TasktopApp
    from tasktop.tui.screens.main import MainScreen

    app = TasktopApp(path, interval=1.0)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.session.model.summary)
        await pilot.pause(wait)

        async def detail() -> None:
            await until(pilot, lambda: getattr(app.screen, "data", None) is not None)
            await pilot.pause(0.3)

        await pilot.press("enter")  # the largest group: the leak
        await detail()
        await shoot(app, "group", out)
        await pilot.press("escape", "slash", *"generate_invoices", "enter", "enter")
        await detail()
        await pilot.press("enter")
        await detail()
        await shoot(app, "task", out)
        await pilot.press("escape", "escape", "escape", "t", "t", "slash", *"write_ledger", "enter", "enter")
        await detail()
        await pilot.press("enter")
        await detail()
        await shoot(app, "thread", out)
        await pilot.press("escape", "escape", "escape", "t")
        await pilot.press("l")
        await pilot.pause(0.5)
        await shoot(app, "stalls", out)
        await pilot.press("escape", "m")
        await detail()
        await shoot(app, "memory", out)
        await pilot.press("escape", "w")
        await detail()
        await shoot(app, "waits", out)
        await pilot.press("escape", "v")
        await verdicts(app, pilot)
        await shoot(app, "verdicts", out)
        # The main view last: once the verdicts are in, it marks the proven leaks.
        await pilot.press("escape")
        await pilot.pause(1.5)
        await shoot(app, "main", out)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        await shoot(app, "help", out)


async def verdicts(app, pilot) -> None:
    """Wait for the leak verdicts, until the demo's leaked requests show as growing (the probe
    needs 20 s of its own history for that), checking again every few seconds."""
    deadline = time.monotonic() + 60
    while True:
        await until(pilot, lambda: app.screen.data is not None and not app.screen._loading, timeout=30)
        found = {v.get("verdict") for v in app.screen.data.get("verdicts") or ()}
        if "growing" in found or time.monotonic() > deadline:
            break
        await pilot.pause(3.0)
        await pilot.press("r")
    # A summary asked for during the heap walk waited for it: let a normal one come first, so
    # the header does not show that one as a slow probe.
    session = app.screen.session
    await pilot.pause(1.5)
    await until(pilot, lambda: session.cost < 0.5, timeout=10, fail=False)
    await pilot.pause(0.3)


async def picker_screen(directory: str, size: tuple, out: str) -> None:
    from tasktop.tui.app import TasktopApp

    # Only the demo: the other Python processes of the machine that makes the pictures are its own.
    app = TasktopApp(None, socket_dir=directory, finder=lambda: [])
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: bool(app.screen.query("#probes")) and app.screen.query_one("#probes").row_count)
        await pilot.pause(0.3)
        await shoot(app, "picker", out)


def start_recording(pid: int, directory: str, path: str) -> subprocess.Popen:
    """``tasktop record`` of the demo, a sample a second, until it is interrupted."""
    env = dict(os.environ, TASKTOP_DIR=directory)
    return subprocess.Popen([sys.executable, "-m", "tasktop.cli", "record", str(pid), "-o", path, "--interval", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_recording(recorder: subprocess.Popen) -> None:
    recorder.send_signal(signal.SIGINT)  # Ctrl-C: the file ends on a whole record
    try:
        _out, err = recorder.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        recorder.kill()
        raise SystemExit("tasktop record did not stop")
    if recorder.returncode != 0:
        raise SystemExit(f"tasktop record failed: {err.strip()}")


async def replay_screen(path: str, size: tuple, out: str) -> None:
    from tasktop.client.recorded import open_recording
    from tasktop.tui.app import TasktopApp
    from tasktop.tui.replay import ReplayScreen

    app = TasktopApp(replay=(open_recording(path), None))
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.index >= 0)
        for _ in range(5):  # a few seconds before the end: the time bar shows where
            await pilot.press("comma")
        await pilot.pause(0.5)
        await shoot(app, "replay", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x30", help="terminal size, COLUMNSxROWS (default 100x30)")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds to watch before the first shot")
    parser.add_argument("--out", default=HERE, help="where to write the files (default: next to this script)")
    parser.add_argument("--only", default="", help=f"comma-separated screens to write (of {', '.join(SCREENS)})")
    args = parser.parse_args()
    if args.only:
        ONLY.clear()
        ONLY.update(name.strip() for name in args.only.split(",") if name.strip())
        unknown = ONLY - set(SCREENS)
        if unknown:
            parser.error(f"unknown screen {', '.join(sorted(unknown))} (known: {', '.join(SCREENS)})")
    size = tuple(int(x) for x in args.size.lower().split("x"))
    # A fixed directory: the picker shows it, and a random name would change every picture.
    directory = "/tmp/tasktop"
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, mode=0o700)
    demo = start_demo(directory)
    try:
        path = os.path.join(directory, f"{demo.pid}.sock")
        wait_for_socket(path)
        recording = os.path.join(directory + "-recording", "demo.ttrec")
        os.makedirs(os.path.dirname(recording), exist_ok=True)
        recorder = start_recording(demo.pid, directory, recording) if "replay" in ONLY else None
        if ONLY - {"picker", "replay"}:
            asyncio.run(attached_screens(path, size, args.wait, args.out))
        if "picker" in ONLY:
            asyncio.run(picker_screen(directory, size, args.out))
        if recorder is not None:
            if not ONLY - {"picker", "replay"}:
                time.sleep(args.wait)  # something to replay
            stop_recording(recorder)
            asyncio.run(replay_screen(recording, size, args.out))
    finally:
        demo.terminate()
        try:
            demo.wait(10)
        except subprocess.TimeoutExpired:
            demo.kill()
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(directory + "-recording", ignore_errors=True)


if __name__ == "__main__":
    main()
