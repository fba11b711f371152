"""The probe's background samples give way to a client's requests: none starts between requests
that come back to back (a dump's summary, waits and verdicts), and a client that never pauses
still cannot keep them from coming."""
from __future__ import annotations

import socket
import time

from conftest import wait_until

SAMPLED = r'''
import asyncio, sys, time
import tasktop.probe.server as server
import tasktop.probe.state as state

if len(sys.argv) > 2:  # how long a sample may be put off at most (30 s in earnest)
    server.SAMPLE_PUT_OFF_MOST = float(sys.argv[2])
original = state.State.sample

def sample(self, *args, **kwargs):  # notes when each background sample starts
    with open(sys.argv[1], "a") as f:
        f.write(f"{time.monotonic()}\n")
    original(self, *args, **kwargs)

state.State.sample = sample

async def main():
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(50)]
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def _asking(target, seconds: float) -> tuple[float, float]:
    """Summaries back to back on one connection for ``seconds``: when the first was sent and
    the last answered (``time.monotonic``, the clock the target writes)."""
    with target.client() as client:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            client.summary()
        return start, time.monotonic()


def _samples(path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def test_no_sample_starts_between_requests_that_come_back_to_back(spawn, tmp_path):
    log = tmp_path / "samples"
    target = spawn(SAMPLED, args=(str(log),), TASKTOP_INTERVAL="0.05")  # a sample due every 50 ms
    first, last = _asking(target, 0.4)
    assert not [t for t in _samples(log) if first < t < last]
    wait_until(lambda: [t for t in _samples(log) if t > last], message="a sample once the client paused")


def test_a_client_that_never_pauses_still_lets_samples_through(spawn, tmp_path):
    log = tmp_path / "samples"
    target = spawn(SAMPLED, args=(str(log),), TASKTOP_INTERVAL="0.05")
    first, last = _asking(target, 2.5)
    assert [t for t in _samples(log) if first < t < last]


BUSY = r'''
import asyncio, sys, time
import tasktop.probe.budget as budget
import tasktop.probe.state as state

budget.BUDGET = 0.5  # samples as often as asked, however long they take
original = state.State.sample

def sample(self, *args, **kwargs):  # notes when each sample starts and ends, and whether it gave way
    with open(sys.argv[1], "a") as f:
        f.write(f"start\n")
    original(self, *args, **kwargs)
    with open(sys.argv[1], "a") as f:
        f.write(f"end {self._gave_way}\n")

state.State.sample = sample

async def main():
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(asyncio.sleep(3600)) for _ in range(100000)]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_sample_running_when_a_client_asks_gives_way_and_the_next_runs_to_its_end(spawn, tmp_path):
    log = tmp_path / "samples"
    target = spawn(BUSY, args=(str(log),), TASKTOP_INTERVAL="0.05")
    for _attempt in range(5):  # a sample that ends before the request is seen cannot give way
        seen = len(_lines(log))
        wait_until(lambda: len(_lines(log)) > seen and _lines(log)[-1] == "start", interval=0.001,
                   message="a sample running")
        running = len(_lines(log)) - 1  # its line; its end is the next
        with target.client() as client:
            client.summary()
        wait_until(lambda: len(_lines(log)) > running + 1, message="that sample's end")
        if _lines(log)[running + 1] == "end True":
            break
    assert _lines(log)[running + 1] == "end True"
    # The next one runs to its end, asked or not.
    wait_until(lambda: len(_lines(log)) > running + 2, interval=0.001, message="the next sample")
    with target.client() as client:
        client.summary()
    wait_until(lambda: len(_lines(log)) > running + 3, message="the next sample's end")
    assert _lines(log)[running + 3] == "end False"


LONG_ASKED = r'''
import asyncio, sys, time
import tasktop.probe.budget as budget
import tasktop.probe.server as server
import tasktop.probe.state as state

budget.BUDGET = 0.5  # samples as often as asked, however long they take
server.SAMPLE_PUT_OFF = 0.0  # as if each request took longer than that (a first dump at a million)
original = state.State.sample

def sample(self, *args, **kwargs):
    with open(sys.argv[1], "a") as f:
        f.write(f"{time.monotonic()}\n")
    original(self, *args, **kwargs)

state.State.sample = sample

async def main():
    loop = asyncio.get_running_loop()
    queues = [asyncio.Queue() for _ in range(8)]
    tasks = [loop.create_task(queues[n % 8].get()) for n in range(50000)]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def test_no_sample_starts_inside_a_dump_whose_requests_are_long(spawn, tmp_path):
    """A dump's requests, each longer than a sample may be put off for, still come first: a
    sample is run past them only once a client has made many requests meanwhile."""
    log = tmp_path / "samples"
    target = spawn(LONG_ASKED, args=(str(log),), TASKTOP_INTERVAL="0.05")
    with target.client() as client:
        first = time.monotonic()
        for _ in range(2):  # as `tasktop dump`, twice
            client.summary(complete=True)
            client.waits(same_pass=True)
            client.verdicts(2.0, same_pass=True)
        last = time.monotonic()
    assert not [t for t in _samples(log) if first < t < last]


def test_connections_that_ask_nothing_put_a_sample_off_for_a_while_only(spawn, tmp_path):
    """Connections that come and go without a request count as a client asking, and answer
    nothing: a sample they keep putting off runs once it is SAMPLE_PUT_OFF_MOST overdue."""
    log = tmp_path / "samples"
    target = spawn(SAMPLED, args=(str(log), "1.0"), TASKTOP_INTERVAL="0.05")
    wait_until(lambda: _samples(log), message="a first sample")
    start = time.monotonic()
    deadline = start + 15.0
    while time.monotonic() < deadline and not [t for t in _samples(log) if t > start + 0.5]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target.path)  # accepted, then closed unasked: a client was there
        sock.close()
        time.sleep(0.02)  # a new connection every 20 ms, well within CLIENT_QUIET (0.25 s)
    assert [t for t in _samples(log) if t > start + 0.5]


CROWDED = r'''
import asyncio, os, resource, sys, time
import tasktop.probe.server as server
import tasktop.probe.state as state

log = open(sys.argv[1], "a", buffering=1)  # opened while descriptors are left
accept = server.Server._accept

def counted(self):
    log.write("accept\n")
    accept(self)

server.Server._accept = counted
sample = state.State.sample

def sampled(self, *args, **kwargs):
    log.write("sample\n")
    sample(self, *args, **kwargs)

state.State.sample = sampled

async def main():
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(50)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def test_a_process_out_of_descriptors_does_not_make_the_probe_spin(spawn, tmp_path):
    """A connection the probe cannot accept (the process has no descriptor left) stays pending:
    the probe looks at it again a while later, not in a loop that holds a core and the GIL."""
    log = tmp_path / "log"
    target = spawn(CROWDED, args=(str(log),), TASKTOP_INTERVAL="0.1")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(target.path)  # queued by the kernel; the probe's accept fails (EMFILE)
    try:
        lines = lambda: log.read_text().splitlines()  # noqa: E731
        wait_until(lambda: "accept" in lines(), message="an accept tried")
        tried = lines().index("accept")
        # Three samples later (0.3 s and more at TASKTOP_INTERVAL=0.1), the accepts tried since.
        wait_until(lambda: lines()[tried:].count("sample") >= 3, message="three samples")
        assert lines()[tried:].count("accept") < 20
    finally:
        sock.close()
