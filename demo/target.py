"""The built-in demo target: a small order service that leaks in the classic ways.

``python -m tasktop.demo`` (what ``tasktop demo`` starts with ``TASKTOP=1``) runs an
asyncio service plus a few threads, each stuck the way real services get stuck, so that every
view of tasktop has something true to show.  It needs nothing but the standard library: it
runs from a bare ``python probe/demo.py`` too.

What piles up, and where (function names are what tasktop shows):

Main event loop (``MainThread``)
    * ``consume_orders`` x8 wait on ``orders.get()``: an ``asyncio.Queue`` that nothing ever
      fills or closes.  State ``Queue.get``.
    * ``publish_events`` x3 wait on ``events.put()``: the queue is bounded and nobody drains
      it.  State ``Queue.put``.
    * ``refresh_prices`` x4 tickers that were never stopped.  State ``sleep``.
    * ``wait_for_shutdown`` x3, one per plugin, waiting for a shutdown event that only SIGTERM
      sets.  State ``Event.wait``.
    * ``rebuild_index`` took ``index_lock`` and waits for a snapshot download that never
      completes (state ``future``); ``update_inventory`` x5 queue up behind it (state
      ``Lock.acquire``).
    * ``wait_for_settlement`` x2 wait on a Condition that is never notified
      (``Condition.wait``).
    * ``fetch_thumbnail`` x4 share a Semaphore(2): two hold it while waiting for the CDN
      (``Event.wait``), two wait for it (``Semaphore.acquire``).
    * ``sync_warehouses`` gathers ``sync_region`` x3 (state ``gather``; the children wait on
      an Event), and ``generate_invoices`` awaits the ``export_ledger`` task directly (state
      ``await task``): the awaiter graph has edges.
    * ``export_ledger`` reads a stream whose peer never writes (``stream read``), and
      ``listen_for_invalidations`` waits in ``loop.sock_recv`` on a silent socket
      (``socket read``).
    * ``serve_requests`` simulates ``--rate`` requests per second; each ``handle_request``
      spawns a ``send_receipt`` task that waits for a delivery acknowledgement nobody sends
      (state ``future``), and caches a response nobody evicts: the task count and the memory
      grow steadily, up to ``--max-leak`` requests.
    * ``build_daily_report`` calls ``compress_report`` every ``--stall-every`` seconds, which
      blocks the loop for 0.3 s with ``time.sleep``: a stall named by the blocking code.

Second event loop (thread ``metrics-loop``)
    * ``flush_metrics`` ticker (``sleep``), ``collect_gauges`` x2 on an empty queue
      (``Queue.get``), and ``run_metrics`` waiting to be told to stop (``Event.wait``).

Threads
    * ``ledger-writer-1``/``-2`` block in ``write_ledger`` on a ``threading.Lock`` that the
      main thread took at start-up and never released (``Lock.acquire``).
    * ``audit-worker`` waits on an empty ``queue.Queue`` (``Queue.get``).
    * ``replica-reader`` waits in ``replicate_changes`` for a socket that never receives data
      (``socket read``).
    * ``leader-election`` waits in ``wait_for_leader`` on a ``threading.Event`` (``Event.wait``).
    * ``thumbnail_0..3``: a ThreadPoolExecutor whose workers sit idle.

Everything is deterministic apart from timing: the same tasks and threads are created in
the same order on every run, and the values the service makes up come from ``--seed``.  The
demo prints nothing (except ``ready <pid>`` with ``--ready``) and exits with status 0 on
SIGINT, SIGTERM or after ``--duration`` seconds, releasing every thread on the way out.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import queue
import random
import signal
import socket
import sys
import threading
import time
from typing import Sequence

#: How long ``compress_report`` blocks the loop: well over the probe's 100 ms stall threshold.
STALL_SECONDS = 0.3
#: Bytes cached per request: enough for the memory view to show a slope, slow enough to be safe.
CACHE_ENTRY_BYTES = 512
#: How long start-up may wait for a thread to reach its blocking call before giving up on it.
SETTLE_TIMEOUT = 5.0

SYMBOLS = ("ACME", "GLOBX", "INITech", "UMBR")
PLUGINS = ("billing", "search", "notifications")
REGIONS = ("eu-west", "us-east", "ap-south")
ROUTES = ("/orders", "/orders/{id}", "/cart", "/checkout")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tasktop.demo",
        description="A small asyncio + threads service that leaks in the classic ways "
                    "(a target for tasktop).")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="simulated requests per second, each leaking one task (default 5)")
    parser.add_argument("--stall-every", type=float, default=5.0, metavar="SECONDS",
                        help="block the event loop for 0.3 s this often; 0 never (default 5)")
    parser.add_argument("--max-leak", type=int, default=100_000, metavar="N",
                        help="stop leaking after N requests (default 100000)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="exit cleanly after this long (default: run until SIGINT/SIGTERM)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the made-up prices, events and payloads (default 0)")
    parser.add_argument("--ready", action="store_true",
                        help="print 'ready <pid>' once everything is set up")
    return parser.parse_args(argv)


def _rng(seed: int, component: str) -> random.Random:
    # One generator per component: the values one component draws do not depend on how the
    # others were scheduled (a str seed is hashed with SHA-512, not with PYTHONHASHSEED).
    return random.Random(f"{seed}:{component}")


# -- main event loop: the service ---------------------------------------------------------------
class Mailer:
    """Sends receipts and waits for the mail gateway's acknowledgement, which never comes."""

    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future] = {}

    async def deliver(self, order_id: int, receipt: bytes) -> None:
        ack = asyncio.get_running_loop().create_future()
        self.pending[order_id] = ack  # the gateway would resolve it; there is no gateway
        await ack


async def consume_orders(orders: asyncio.Queue, worker: int) -> None:
    while True:
        order = await orders.get()  # nothing ever puts: a consumer pool with no producer
        order["shipped_by"] = worker
        orders.task_done()


async def publish_events(events: asyncio.Queue, source: str, rng: random.Random) -> None:
    while True:
        event = {"source": source, "order": rng.randrange(10**6), "kind": "order.updated"}
        await events.put(event)  # bounded, and nobody consumes: blocked once it is full


async def refresh_prices(symbol: str, prices: dict, rng: random.Random, interval: float = 1.0) -> None:
    while True:  # a ticker nobody stops
        prices[symbol] = round(rng.uniform(10, 500), 2)
        await asyncio.sleep(interval)


async def wait_for_shutdown(plugin: str, stopping: asyncio.Event) -> None:
    await stopping.wait()  # meant to be cancelled when the plugin unloads; it never unloads


async def download_snapshot(url: str) -> bytes:
    done = asyncio.get_running_loop().create_future()  # the download's callback is lost
    return await done


async def rebuild_index(index_lock: asyncio.Lock) -> None:
    async with index_lock:
        await download_snapshot("https://snapshots.internal/index.tar")


async def update_inventory(sku: str, index_lock: asyncio.Lock, stock: dict) -> None:
    async with index_lock:  # queued behind rebuild_index forever
        stock[sku] = stock.get(sku, 0) + 1


async def wait_for_settlement(payment: str, settled: asyncio.Condition) -> None:
    async with settled:
        await settled.wait()  # nobody calls notify()


async def fetch_thumbnail(url: str, slots: asyncio.Semaphore, cdn_ready: asyncio.Event) -> None:
    async with slots:
        await cdn_ready.wait()  # the first two hold the semaphore here; the rest queue for it


async def sync_region(region: str, api_ready: asyncio.Event) -> None:
    await api_ready.wait()


async def sync_warehouses(api_ready: asyncio.Event) -> None:
    await asyncio.gather(*(sync_region(region, api_ready) for region in REGIONS))


async def export_ledger(sock: socket.socket) -> bytes:
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        header = await reader.readexactly(8)  # the peer never writes
        return header
    finally:
        writer.close()


async def generate_invoices(ledger_sock: socket.socket) -> None:
    export = asyncio.create_task(export_ledger(ledger_sock), name="export-ledger")
    await export  # one task awaiting another directly


async def listen_for_invalidations(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    while True:
        message = await loop.sock_recv(sock, 4096)  # the peer never sends
        if not message:
            return


def compress_report(rows: list) -> bytes:
    time.sleep(STALL_SECONDS)  # blocking work on the event loop: the loop stalls
    return repr(rows).encode()


async def build_daily_report(every: float, prices: dict) -> None:
    while True:
        await asyncio.sleep(every)
        compress_report(sorted(prices.items()))


async def handle_request(service: "Service", n: int) -> None:
    route = ROUTES[n % len(ROUTES)]
    # Unique ids: the pending acknowledgement is all that keeps a leaked task alive (asyncio
    # holds tasks weakly), so a reused id would let the older task be collected mid-wait.
    order_id = 100_000 + n
    if service.leaked < service.options.max_leak:
        service.leaked += 1
        payload = service.request_rng.getrandbits(CACHE_ENTRY_BYTES * 8).to_bytes(CACHE_ENTRY_BYTES, "big")
        service.response_cache[route, order_id] = payload  # a cache nobody evicts
        asyncio.create_task(send_receipt(service.mailer, order_id), name=f"receipt-{order_id}")


async def send_receipt(mailer: Mailer, order_id: int) -> None:
    await mailer.deliver(order_id, b"receipt %d" % order_id)


async def serve_requests(service: "Service", rate: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        # Requests arrive on a fixed schedule (no drift), so the task count grows steadily.
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        await handle_request(service, n)


class Service:
    """The main loop's service: every primitive is made inside the running loop (3.9 binds
    asyncio primitives to the loop current at construction).  Each task is created on its own
    line, with no helper in between, so that its creation site names that line."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.request_rng = _rng(options.seed, "requests")
        self.response_cache: dict = {}
        self.leaked = 0
        self.mailer = Mailer()
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        seed, keep, spawn = self.options.seed, self.tasks.append, asyncio.create_task
        orders: asyncio.Queue = asyncio.Queue()
        for worker in range(8):
            keep(spawn(consume_orders(orders, worker), name=f"order-consumer-{worker}"))
        events: asyncio.Queue = asyncio.Queue(maxsize=16)
        for source in ("checkout", "inventory", "billing"):
            rng = _rng(seed, f"events:{source}")
            keep(spawn(publish_events(events, source, rng), name=f"publisher-{source}"))
        prices: dict = {}
        for symbol in SYMBOLS:
            rng = _rng(seed, f"prices:{symbol}")
            keep(spawn(refresh_prices(symbol, prices, rng), name=f"prices-{symbol}"))
        for plugin in PLUGINS:
            keep(spawn(wait_for_shutdown(plugin, self.stopping), name=f"plugin-{plugin}"))

        index_lock = asyncio.Lock()
        keep(spawn(rebuild_index(index_lock), name="rebuild-index"))  # runs first: it gets the lock
        stock: dict = {}
        for sku in ("SKU-1001", "SKU-1002", "SKU-1003", "SKU-1004", "SKU-1005"):
            keep(spawn(update_inventory(sku, index_lock, stock), name=f"inventory-{sku}"))
        settled = asyncio.Condition()
        for payment in ("pay-7731", "pay-7732"):
            keep(spawn(wait_for_settlement(payment, settled), name=f"settlement-{payment}"))
        slots, cdn_ready = asyncio.Semaphore(2), asyncio.Event()
        for i in range(4):
            url = f"https://cdn.internal/img/{i}.jpg"
            keep(spawn(fetch_thumbnail(url, slots, cdn_ready), name=f"thumbnail-{i}"))

        keep(spawn(sync_warehouses(asyncio.Event()), name="sync-warehouses"))
        ledger, ledger_peer = socket.socketpair()
        invalidations, invalidations_peer = socket.socketpair()
        invalidations.setblocking(False)
        self.sockets += [ledger, ledger_peer, invalidations, invalidations_peer]
        keep(spawn(generate_invoices(ledger), name="generate-invoices"))
        keep(spawn(listen_for_invalidations(invalidations), name="cache-invalidations"))

        if self.options.stall_every > 0:
            keep(spawn(build_daily_report(self.options.stall_every, prices), name="daily-report"))
        if self.options.rate > 0:
            keep(spawn(serve_requests(self, self.options.rate), name="http-server"))

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _name_current(name: str) -> None:
    # asyncio.run names its task "Task-<n>", numbered across the process: name it for the views.
    task = asyncio.current_task()
    if task is not None:
        task.set_name(name)


async def run_service(options: argparse.Namespace) -> None:
    _name_current("main")
    loop = asyncio.get_running_loop()
    service = Service(options)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, service.stopping.set)
    service.start()
    try:
        # Let every task take its first step and reach the place where it stays.
        for _ in range(10):
            await asyncio.sleep(0)
        if options.ready:
            print(f"ready {os.getpid()}", flush=True)
        try:
            await asyncio.wait_for(service.stopping.wait(), options.duration)
        except asyncio.TimeoutError:
            pass
    finally:
        for task in service.tasks:
            task.cancel()
        await asyncio.gather(*service.tasks, return_exceptions=True)
        service.close()
        # asyncio.run cancels the leaked receipts (tasks nobody kept) after we return.


# -- the second event loop ---------------------------------------------------------------------
async def flush_metrics(interval: float = 0.5) -> None:
    while True:
        await asyncio.sleep(interval)


async def collect_gauges(samples: asyncio.Queue) -> None:
    while True:
        await samples.get()


async def run_metrics(loop_box: list, ready: threading.Event) -> None:
    _name_current("metrics-main")
    stop = asyncio.Event()
    loop_box.append((asyncio.get_running_loop(), stop))
    samples: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(flush_metrics(), name="flush-metrics")]
    tasks += [asyncio.create_task(collect_gauges(samples), name=f"gauges-{i}") for i in range(2)]
    await asyncio.sleep(0)
    ready.set()
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class MetricsLoop:
    """A second event loop in its own thread, as metrics exporters and sync-to-async bridges run."""

    def __init__(self) -> None:
        self.box: list = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="metrics-loop", daemon=True)

    def _run(self) -> None:
        asyncio.run(run_metrics(self.box, self.ready))

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(SETTLE_TIMEOUT)

    def stop(self) -> None:
        if self.box:
            loop, stop = self.box[0]
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already closed
                pass
        if self.thread.ident is not None:
            self.thread.join(SETTLE_TIMEOUT)


# -- threads -----------------------------------------------------------------------------------
class Threads:
    """Threads stuck on a lock, a queue, a socket and an event, and an idle thread pool.

    Each one checks ``stopping`` when it wakes, so :meth:`stop` can release them one by one."""

    def __init__(self, seed: int) -> None:
        self.stopping = False
        self.ledger_lock = threading.Lock()
        self.audit_queue: queue.Queue = queue.Queue()
        self.replica, self.replica_peer = socket.socketpair()
        self.leader_elected = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="thumbnail")
        self.rng = _rng(seed, "threads")
        self.threads: list[threading.Thread] = []
        self.blocking: list[threading.Event] = []
        self.holding = False

    def _thread(self, target, name: str, *args) -> None:
        about_to_block = threading.Event()
        self.blocking.append(about_to_block)
        thread = threading.Thread(target=target, name=name, args=(about_to_block, *args), daemon=True)
        self.threads.append(thread)

    def start(self) -> None:
        self.ledger_lock.acquire()  # taken at start-up, "released later": never
        self.holding = True
        for i in (1, 2):
            self._thread(write_ledger, f"ledger-writer-{i}", self)
        self._thread(audit_worker, "audit-worker", self)
        self._thread(replicate_changes, "replica-reader", self)
        self._thread(wait_for_leader, "leader-election", self)
        for thread in self.threads:
            thread.start()
        # Four jobs that wait for each other force four workers to exist, then leave them idle.
        barrier = threading.Barrier(4)
        jobs = [self.pool.submit(resize_image, barrier, self.rng.randrange(64, 4096)) for _ in range(4)]
        concurrent.futures.wait(jobs, SETTLE_TIMEOUT)
        for event in self.blocking:
            event.wait(SETTLE_TIMEOUT)

    def stop(self) -> None:
        """Release every thread and wait for it (safe after a start that was interrupted)."""
        self.stopping = True
        if self.holding:
            self.holding = False
            self.ledger_lock.release()
        self.audit_queue.put(None)
        self.replica_peer.shutdown(socket.SHUT_WR)
        self.leader_elected.set()
        for thread in self.threads:
            if thread.ident is not None:
                thread.join(SETTLE_TIMEOUT)
        self.pool.shutdown(wait=True)
        self.replica.close()
        self.replica_peer.close()


def write_ledger(about_to_block: threading.Event, threads: Threads) -> None:
    while True:
        about_to_block.set()
        with threads.ledger_lock:  # held by the main thread since start-up
            if threads.stopping:
                return


def audit_worker(about_to_block: threading.Event, threads: Threads) -> None:
    while True:
        about_to_block.set()
        entry = threads.audit_queue.get()  # nobody writes audit entries any more
        if entry is None:
            return


def replicate_changes(about_to_block: threading.Event, threads: Threads) -> None:
    while True:
        about_to_block.set()
        change = threads.replica.recv(65536)  # the primary never sends
        if not change:
            return


def wait_for_leader(about_to_block: threading.Event, threads: Threads) -> None:
    about_to_block.set()
    threads.leader_elected.wait()  # no election ever happens


def resize_image(barrier: threading.Barrier, size: int) -> int:
    barrier.wait(SETTLE_TIMEOUT)
    return size // 2


# -- entry point -------------------------------------------------------------------------------
def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until SIGINT/SIGTERM or ``--duration``; always returns 0."""
    options = parse_args(argv)
    # Until the event loop installs its own handlers (and after it removes them), a signal
    # becomes KeyboardInterrupt, which ends the demo as quietly as a signal during the run.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    threads = Threads(options.seed)
    metrics = MetricsLoop()
    try:
        metrics.start()  # first, so the task ids of both loops are the same on every run
        threads.start()
        asyncio.run(run_service(options))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        metrics.stop()
        threads.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
