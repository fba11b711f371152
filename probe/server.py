"""The probe thread: one daemon thread that serves the socket, samples, and beats the loops.

Everything runs on one ``selectors`` loop with non-blocking sockets, so no client (slow,
silent, malicious or gone) can make the thread wait, and the probe owns exactly one thread,
one listening socket, one wake-up pipe and its client sockets.  Every failure is contained:
a bad request gets an error reply or a closed connection, and nothing escapes the thread.
"""
from __future__ import annotations

import collections
import errno
import os
import selectors
import socket
import struct
import threading
import time
from typing import Any

from . import hooks
from tasktop.wire import paths
from tasktop import wire
from .handoff import Handoff, exact_sleeps
from .config import Options
from .replies import Replies
from .state import State

# Seconds: the longest the probe waits between two looks at the loops' heartbeats (it looks
# sooner when a loop's timer would be a stall by then: loops.LoopWatches.next_look).
LOOK_AT_MOST = 0.25
# While a busy loop starves the probe thread of the GIL (its waits end on time but it gets the
# GIL back more than STARVED_LATE late), every wake-up costs the loop a hand-off (see
# handoff.py), so the probe looks only every STARVED_LOOK for STARVED_HOLD seconds.  A loop
# that starves the probe is busy, not stalled; a stall (one long callback) keeps the GIL and
# lets the probe in through CPython's switch interval, so it is still seen, within a second.
# A loop's timer found overdue is looked at again when it would be a stall all the same: a
# busy loop runs it by then, and a stall shorter than a second is named by the code that
# blocked (a loaded machine, whose late wake-ups look like starving, has them).
STARVED_LATE = 0.02
STARVED_LOOK = 1.0
STARVED_HOLD = 10.0
# Seconds: a background sample due while a client is asking waits until its requests have
# paused this long (a dump's summary, waits and verdicts come back to back: a sample between
# two of them, 0.2-0.9 s at a million tasks, was the dump's, and its pass undid the one the
# dump's later requests share), unless it has waited SAMPLE_PUT_OFF seconds and PUT_OFF_ANSWERS
# requests, so that a client asking without pause cannot starve the history (counting requests
# too: a dump's three take more than a second at a million tasks).
CLIENT_QUIET = 0.25
SAMPLE_PUT_OFF = 1.0
PUT_OFF_ANSWERS = 20
#: Seconds past due a put-off sample runs anyway, to its end: connections that come and go, or a
#: long reply read slowly, answer nothing and would otherwise put it off for as long as they last.
SAMPLE_PUT_OFF_MOST = 30.0
#: Seconds the listener is left unwatched after ``accept`` failed for want of descriptors or
#: memory: the connection stays pending, and a loop that met it at once would spin.
ACCEPT_BACKOFF = 0.5
_ACCEPT_SHORT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_PEERCRED = struct.Struct("3i")


class _Client:
    __slots__ = ("sock", "inbuf", "outbuf", "last", "frame_started", "hello", "closing", "chunked")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf: collections.deque = collections.deque()  # blocks of frames to send
        self.last = now
        self.frame_started: float | None = None
        self.hello = False
        self.closing = False  # close once the output is flushed
        self.chunked = False  # the request being answered asked for a chunked reply


class Server:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.handoff = Handoff(options.stall_ms / 1000.0)
        self.pid = os.getpid()
        self.state = State(options, self.handoff)
        self.state.asking = self._asking
        self.replies = Replies(self.state, self.pid, on_detach=self._detach_requested)
        self.detaching = False  # a client asked the probe to stop: once its reply is out
        # The handler of every request of the protocol's table (a reply's method of its name).
        self.handlers = {op: getattr(self.replies, op) for op in wire.OPS}
        if options.record:
            self._start_flight(options)
        self.path: str | None = None
        self.listener: socket.socket | None = None
        self.selector: selectors.BaseSelector | None = None
        self.clients: dict[int, _Client] = {}
        self.asked_at = -CLIENT_QUIET  # when a client last connected or was answered
        self._listen_at: float | None = None  # when to watch the listener again (see _accept)
        self.answers = 0  # requests answered, in all
        self.thread: threading.Thread | None = None
        self._stop = False
        self._wake_r = self._wake_w = -1

    def _start_flight(self, options: Options) -> None:
        from .flight import FlightRecorder

        flight = FlightRecorder(options.record, options.record_size, options.record_interval,
                                self.replies._process(), self.handoff)
        self.state.flight = self.replies.flight = flight
        self.state.record_pass = self._record_pass

    def _record_pass(self, found, now: float) -> None:
        """One summary to the flight recorder, and the leak verdicts once a minute."""
        from . import verdicts
        from .flight import VERDICTS_EVERY

        flight = self.state.flight
        try:
            flight.sample(self.replies._summary(found), now)
            if now - flight.last_verdicts >= VERDICTS_EVERY:
                flight.last_verdicts = now
                flight.extra("verdicts", verdicts.gather(self.state, 0.0))
        except Exception as exc:  # a probe bug stops the recorder, never the probe
            flight._fail(exc)

    # -- life cycle (called from host threads) -----------------------------------------------
    def open(self) -> None:
        directory = paths.ensure_socket_dir(self.options.directory)
        self.path = os.path.join(directory, f"{self.pid}.sock")
        try:
            os.unlink(self.path)  # a stale socket of a previous process with our pid
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                listener.bind(self.path)
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            listener.listen(wire.MAX_CLIENTS)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self.listener = listener
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.handoff.fd = self.selector.fileno() if hasattr(self.selector, "fileno") else -1

    def start_thread(self) -> None:
        self._stop = False
        self.handoff.active = True
        self.handoff.working = True
        if self.handoff.attach not in hooks.loop_listeners:
            hooks.loop_listeners.append(self.handoff.attach)
        if self.handoff.started not in hooks.start_listeners:
            hooks.start_listeners.append(self.handoff.started)
        self.thread = threading.Thread(target=self._run, name="tasktop-probe", daemon=True)
        self.thread.start()

    def stop_thread(self, timeout: float = 1.0) -> None:
        self._stop = True
        self.handoff.active = False
        for listeners, listener in ((hooks.loop_listeners, self.handoff.attach),
                                    (hooks.start_listeners, self.handoff.started)):
            try:
                listeners.remove(listener)
            except ValueError:
                pass
        self._wake()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.thread = None

    def close(self, unlink: bool = True) -> None:
        """Release every fd; ``unlink=False`` in a forked child, whose parent owns the path."""
        flight = self.state.flight
        if flight is not None:
            flight.close("exit" if unlink else None)
        for client in list(self.clients.values()):
            self._drop(client)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake_r = self._wake_w = -1
        self.handoff.fd = -1
        if self.selector is not None:
            try:
                self.selector.close()
            except Exception:
                pass
            self.selector = None
        if self.listener is not None:
            try:
                self.listener.close()
            except OSError:
                pass
            self.listener = None
        if unlink:
            self.unlink()

    def unlink(self) -> None:
        if self.path and os.getpid() == self.pid:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.options.cancellers_by_profile:
                from . import end_history

                end_history.stop_profiling_here()  # our own calls are not the host's
            self.state.threads.exclude.add(threading.get_ident())
            exact_sleeps()
            hooks.discover_loops()
        except Exception:
            pass
        next_sample = time.monotonic()
        put_off: int | None = None  # requests answered when the sample due fell due
        seen_due = 0.0  # when this loop first saw it due (not the time a long request took)
        next_look = time.monotonic()
        starved_until = 0.0
        failures = 0
        while not self._stop:
            try:
                now = time.monotonic()
                if now >= next_look:
                    self.state.heartbeat(now)
                    if now >= starved_until:
                        next_look = self.state.loops.next_look(now, LOOK_AT_MOST)
                    else:
                        next_look = self.state.loops.next_look(now, STARVED_LOOK, overdue_only=True)
                sample_at = max(next_sample, self.asked_at + CLIENT_QUIET)
                if now >= next_sample and put_off is None:
                    put_off, seen_due = self.answers, now  # when it fell due
                overdue = put_off is not None and now >= seen_due + SAMPLE_PUT_OFF_MOST
                if (put_off is not None and now >= next_sample + SAMPLE_PUT_OFF
                        and self.answers - put_off >= PUT_OFF_ANSWERS) or overdue:
                    sample_at = now  # put off long enough
                if now >= sample_at:
                    self.state.sample(yielding=not overdue)
                    next_sample = sample_at = time.monotonic() + self.state.budget.interval
                    put_off = None
                if self._listen_at is not None and time.monotonic() >= self._listen_at:
                    self._listen()  # after the sample: a connection it cannot take is no client asking
                timeout = max(0.0, min(next_look, sample_at, self._listen_at or sample_at) - time.monotonic())
                if not self.state.loops.watches:
                    timeout = max(0.0, min(sample_at - time.monotonic(), 0.25))
                selector = self.selector
                if selector is None:
                    return
                wake_at = self.handoff.blocking(timeout)
                try:
                    ready = selector.select(timeout)
                finally:
                    self.handoff.resumed()
                if not ready and time.monotonic() - wake_at > STARVED_LATE:
                    starved_until = time.monotonic() + STARVED_HOLD
                for key, _events in ready:
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.fileobj == self._wake_r:
                        try:
                            os.read(self._wake_r, 512)
                        except OSError:
                            pass
                    else:
                        client = key.data
                        if _events & selectors.EVENT_READ:
                            self._readable(client)
                        if _events & selectors.EVENT_WRITE and client.sock.fileno() >= 0:
                            self._writable(client)
                self._expire(time.monotonic())
                failures = 0
                if self.detaching and not any(c.outbuf for c in self.clients.values()):
                    self._detach()
                    return
            except Exception:
                # Never let a bug take the thread down on the first try, nor spin forever.
                failures += 1
                if failures > 100:
                    return
                time.sleep(0.05)

    def _listen(self) -> None:
        """Watch the listener again after ``_accept`` left it (``ACCEPT_BACKOFF``); if that
        fails too (short of memory), again a while later."""
        self._listen_at = None
        if self.listener is None or self.selector is None:
            return
        try:
            self.selector.register(self.listener, selectors.EVENT_READ, None)
        except KeyError:  # watched already
            pass
        except (OSError, ValueError):
            self._listen_at = time.monotonic() + ACCEPT_BACKOFF

    def _asking(self) -> bool:
        """Whether a client waits to be answered: a connection to accept or a request come in
        (a look with no wait, which reads nothing; see ``State.sample``)."""
        selector = self.selector
        if selector is None:
            return False
        try:
            ready = selector.select(0)
        except (OSError, ValueError):
            return False
        return any(events & selectors.EVENT_READ and key.fileobj != self._wake_r for key, events in ready)

    def _detach_requested(self) -> None:
        self.detaching = True

    def _detach(self) -> None:
        """Stop the probe from its own thread (``detach`` request): the thread is not joined,
        it returns once this does."""
        from . import detach

        detach()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError as error:
            if error.errno in _ACCEPT_SHORT:  # the process is out of descriptors: look again later
                self.selector.unregister(self.listener)
                self._listen_at = time.monotonic() + ACCEPT_BACKOFF
            return
        sock.setblocking(False)
        now = time.monotonic()
        client = _Client(sock, now)
        try:
            _pid, uid, _gid = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        except (OSError, AttributeError, struct.error):
            uid = -1
        if uid not in (os.getuid(), 0):
            self._refuse(client, f"permission denied: uid {uid} may not read process {self.pid}")
            return
        if len(self.clients) >= wire.MAX_CLIENTS:
            self._refuse(client, f"too many clients (limit {wire.MAX_CLIENTS})")
            return
        self.clients[sock.fileno()] = client
        self.asked_at = now
        self.selector.register(sock, selectors.EVENT_READ, client)

    def _refuse(self, client: _Client, message: str) -> None:
        try:
            client.sock.send(wire.encode({"ok": False, "error": message}))
        except OSError:
            pass
        client.sock.close()

    def _drop(self, client: _Client) -> None:
        fd = client.sock.fileno()
        self.clients.pop(fd, None)
        if self.selector is not None and fd >= 0:
            try:
                self.selector.unregister(client.sock)
            except (KeyError, ValueError):
                pass
        try:
            client.sock.close()
        except OSError:
            pass

    def _readable(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        if not data:
            self._drop(client)
            return
        now = time.monotonic()
        client.last = now
        if client.closing:
            return
        client.inbuf += data
        while len(client.inbuf) >= wire.HEADER.size and not client.closing:
            (length,) = wire.HEADER.unpack_from(client.inbuf)
            if length > wire.MAX_REQUEST:
                self._fail(client, f"request of {length} bytes is over the limit of {wire.MAX_REQUEST}")
                return
            end = wire.HEADER.size + length
            if len(client.inbuf) < end:
                break
            payload = bytes(client.inbuf[wire.HEADER.size:end])
            del client.inbuf[:end]
            cpu = time.thread_time()
            client.chunked = False
            reply = self._answer(client, payload)
            if client.chunked and reply.get("ok"):
                self._stream(client, reply)
            else:
                self._queue(client, reply)
            reply = None
            self.state.budget.answering += time.thread_time() - cpu
            self.handoff.progress += 1
            self.asked_at = time.monotonic()
            self.answers += 1
        client.frame_started = now if client.inbuf else None

    def _fail(self, client: _Client, message: str) -> None:
        self._queue(client, {"ok": False, "error": message})
        client.closing = True
        client.inbuf.clear()

    def _queue(self, client: _Client, reply: dict) -> None:
        try:
            blocks = wire.encode_blocks(reply)
        except Exception as exc:
            blocks = [wire.encode({"ok": False, "error": f"reply could not be encoded: {exc}"})]
        if sum(map(len, blocks)) - wire.HEADER.size > wire.MAX_REPLY:
            blocks = [wire.encode({"ok": False, "error": "reply too large"})]
        client.outbuf.extend(blocks)
        self._writable(client)

    def _stream(self, client: _Client, reply: dict) -> None:
        """Send a chunked reply as it is packed, each block as soon as it is made: a full
        reply of a million tasks (700 MB) is never whole in the host's memory.  The rows are
        made from the pass's lists, which the next request recycles, so nothing else is
        answered meanwhile; a client that stops reading for ``FRAME_TIMEOUT`` is dropped."""
        sock = client.sock
        try:
            self._flush(client)
            sock.settimeout(wire.FRAME_TIMEOUT)
            sock.sendall(wire.HEADER.pack(wire.CHUNKED))
            for block in wire.iter_blocks(reply):  # a bug while packing drops the client
                sock.sendall(wire.HEADER.pack(len(block)) + block)
            sock.sendall(wire.HEADER.pack(0))
            sock.setblocking(False)
            client.last = time.monotonic()
        except Exception:
            self._drop(client)

    def _flush(self, client: _Client) -> None:
        """Send what is queued for ``client``, waiting for it (before a chunked reply)."""
        client.sock.settimeout(wire.FRAME_TIMEOUT)
        while client.outbuf:
            client.sock.sendall(client.outbuf.popleft())

    def _writable(self, client: _Client) -> None:
        outbuf = client.outbuf
        if outbuf:
            try:
                while outbuf:  # until the socket's buffer is full (BlockingIOError)
                    sent = client.sock.send(outbuf[0])
                    if sent < len(outbuf[0]):
                        outbuf[0] = outbuf[0][sent:]
                        break
                    outbuf.popleft()
                client.last = self.asked_at = time.monotonic()  # a reply still going out
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(client)
                return
        if client.outbuf:
            self.selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        elif client.closing:
            self._drop(client)
        else:
            self.selector.modify(client.sock, selectors.EVENT_READ, client)

    def _expire(self, now: float) -> None:
        for client in list(self.clients.values()):
            stale = now - client.last > wire.IDLE_TIMEOUT
            slow = client.frame_started is not None and now - client.frame_started > wire.FRAME_TIMEOUT
            if stale or slow:
                self._drop(client)

    # -- requests -----------------------------------------------------------------------------------
    def _answer(self, client: _Client, payload: bytes) -> dict:
        try:
            request = wire.decode(payload)
        except wire.ProtocolError as exc:
            client.closing = True
            return {"ok": False, "error": str(exc)}
        op = request.get("op")
        if not client.hello:
            if op != "hello":
                client.closing = True
                return {"ok": False, "error": "expected hello"}
            if request.get("version") != wire.VERSION:
                client.closing = True
                return {"ok": False, "error": f"protocol version {request.get('version')!r} is not "
                                              f"supported (probe speaks {wire.VERSION})"}
            client.hello = True
            return {"ok": True, **self.replies.hello()}
        spec = wire.OPS.get(op) if isinstance(op, str) else None  # an unhashable op is unknown too
        client.chunked = bool(request.get("chunked")) and spec is not None and spec.chunkable
        # A pass answers later requests of its connection only, and only those asking for it.
        self.state.asker, self.state.same_pass = client, bool(request.get("same_pass"))
        try:
            return {"ok": True, "data": self._dispatch(op, spec, request)}
        except (LookupError, ValueError, TypeError) as exc:
            message = exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)
            return {"ok": False, "error": str(message)}
        except Exception as exc:  # a probe bug: report it, keep serving
            return {"ok": False, "error": f"internal error: {exc.__class__.__name__}: {exc}"}
        finally:
            self.state.asker, self.state.same_pass = None, False

    def _dispatch(self, op: Any, spec: wire.Op | None, request: dict) -> Any:
        """The reply's data: ``op``'s handler called with the arguments its ``wire.OPS`` entry
        (``spec``) lists."""
        if spec is None:
            raise ValueError(f"unknown request {op!r}")
        return self.handlers[op](*spec.arguments(request))
