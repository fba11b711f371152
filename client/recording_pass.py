"""A recording read once more, in another process, right after a replay opened it: the rebuilt
summary of every ``PACKED_EVERY``-th sample comes back packed, so that a jump to a moment not
read before applies at most that many deltas before its window instead of up to ``KEY_EVERY``
(300: the file format's key summaries, which recordings already written keep).

Why another process: the pass is ~6 s of CPU for a day at 200 groups.  In a thread it would
hold the GIL against the app's keys (Python hands it over every 5 ms), and in the app's idle
time it would keep the app from ever being idle; another process runs on another core, only
when nothing else wants it (``SCHED_IDLE``), and the app only keeps the bytes it sends
(``Recording.add_packed``: bytes, which the garbage collector does not walk).  Until it is done
a jump reads as before.

    python -m tasktop.client.recording_pass FILE   # writes msgpack [path, record, time, bytes]...
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import msgpack

from tasktop.wire.recording import KEY_EVERY, Recording, RecordingError

#: Recordings with fewer samples than this are not worth a pass (a jump reads little anyway).
PASS_FROM = 2 * KEY_EVERY
#: Bytes the other process sends at a time.
BURST = 1 << 20


class RecordingPass:
    """The other process walking ``recording``'s file, and the thread giving what it sends to
    ``recording`` (``done`` is set when it ended, whichever way)."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.received = 0
        self.done = threading.Event()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTOP")}  # no probe in it
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, recording.path], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self._thread = threading.Thread(target=self._receive, name="tasktop-recording-pass", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        stream = self.process.stdout
        try:
            while True:
                chunk = stream.read1(BURST)
                if not chunk:
                    break
                unpacker.feed(chunk)
                for item in unpacker:
                    if isinstance(item, list) and len(item) == 4 and isinstance(item[3], bytes):
                        self.received += self.recording.add_packed(*item)
        except (OSError, ValueError):  # closed while reading
            pass
        finally:
            self.process.wait()
            self.done.set()

    def stop(self) -> None:
        """End the other process (a replay closed before the pass ended)."""
        if self.process.poll() is None:
            self.process.kill()
        self.done.wait(5.0)
        self.process.stdout.close()


def start(recording: Recording) -> RecordingPass | None:
    """A pass over ``recording`` when it is long enough to be worth one."""
    if len(recording) < PASS_FROM:
        return None
    try:
        return RecordingPass(recording)
    except OSError:
        return None  # no process to be had: jumps read as before


def main(argv: list[str]) -> int:
    try:  # the replay's own keys first: this runs only on a core nothing else wants
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass
    try:
        recording = Recording(argv[0])
        # In bursts (~170 summaries each): the app wakes up for a few of them, not for each.
        out = open(sys.stdout.fileno(), "wb", buffering=BURST, closefd=False)
        for item in recording.packed_checkpoints():
            out.write(msgpack.packb(list(item), use_bin_type=True))
        out.flush()
    except (RecordingError, BrokenPipeError, IndexError, KeyboardInterrupt):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
