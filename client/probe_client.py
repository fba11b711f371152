"""The client side of the wire protocol: a blocking connection to one probe.

Used by ``tasktop dump``/``ls`` directly and by the TUI from a worker thread; widgets never see
it.  Every failure is one of two exceptions with a one-line message: ``ProbeUnavailable``
(nothing to talk to) and ``ProbeError`` (the probe answered with an error).
"""
from __future__ import annotations

import os
import socket
from typing import Any

from tasktop.wire import paths
from tasktop import wire
from tasktop.wire.shapes import Ends, Summary, Waits


class ProbeUnavailable(Exception):
    """No probe answers at that socket (no socket, refused, closed, timed out)."""


class ProbeError(Exception):
    """The probe answered a request with an error."""


class Requests:
    """The typed requests of the wire protocol (``wire.OPS``, the table the probe serves), over
    whatever ``request(op, **args)`` the subclass provides (one connection, or a pool)."""

    def request(self, op: str, **args: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self, complete: bool = False) -> Summary:
        """With ``complete`` the probe walks every await chain first (seconds at a million tasks
        just after it attached); else the chains it had no time for are counted in pseudo-groups
        (``(await chain not walked yet)``) and filled in by its next passes."""
        return self.request("summary", complete=True) if complete else self.request("summary")

    def full(self) -> dict:
        return wire.with_stacks(self.request("full", chunked=True))

    def full_rows_packed(self) -> dict:
        """``full`` with its ``tasks`` left packed (``wire.Rows``: unpacked one at a time as
        they are iterated), for a command that prints them once: with a million rows unpacked
        at once, ``tasktop dump --full`` took 6.8 GB (13 GB with ``--json``) beside the target."""
        return wire.with_stacks(self.request("full", chunked=True, _packed=("data", "tasks")))

    def group(self, group_id: str, offset: int = 0, limit: int = 100) -> dict:
        return self.request("group", id=group_id, offset=offset, limit=limit)

    def task(self, task_id: int) -> dict:
        return self.request("task", id=task_id)

    def thread(self, ident: int) -> dict:
        return self.request("thread", ident=ident)

    def threads(self) -> list:
        return self.request("threads")

    def memory(self, top: int = 20) -> dict:
        return self.request("memory", top=top)

    def stalls(self) -> list:
        return self.request("stalls")

    def verdicts(self, budget_s: float = 2.0, same_pass: bool = False) -> dict:
        """``same_pass``: from the pass of this connection's last complete request, if it is
        still the latest (see ``wire.SAME_PASS_S``)."""
        return self.request("verdicts", budget_s=budget_s, **({"same_pass": True} if same_pass else {}))

    def ends(self, group_id: str = "", task_id: int = 0) -> Ends:
        """How tasks ended, per group (``group_id``: that group's; ``task_id``: that task's too)."""
        return self.request("ends", group=group_id, task=task_id)

    def waits(self, same_pass: bool = False) -> Waits:
        """What tasks and threads wait on, most waiters first (``same_pass``: see ``verdicts``)."""
        return self.request("waits", **({"same_pass": True} if same_pass else {}))

    def detach(self) -> dict:
        """Stop the probe (``tasktop detach``): it answers, then removes its socket."""
        return self.request("detach")


class ProbeClient(Requests):
    def verdicts(self, budget_s: float = 2.0, same_pass: bool = False) -> dict:
        """The proof may take its whole budget, after a pass over every task: wait for both."""
        timeout, self.timeout = self.timeout, max(self.timeout, budget_s + 30.0)
        try:
            return super().verdicts(budget_s, same_pass)
        finally:
            self.timeout = timeout

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.hello: dict = {}

    @classmethod
    def for_pid(cls, pid: int, directory: str | None = None, timeout: float = 10.0) -> "ProbeClient":
        return cls(paths.socket_path(pid, directory), timeout)

    def __enter__(self) -> "ProbeClient":
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self.hello.get("pid")

    def connect(self) -> dict:
        self.close()
        if not os.path.exists(self.path):
            raise ProbeUnavailable(f"no probe socket at {self.path}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            self.sock = sock
            self.hello = self._exchange({"op": "hello", "version": wire.VERSION})
        except PermissionError:
            sock.close()
            self.sock = None
            raise ProbeUnavailable(f"permission denied on {self.path}") from None
        except (OSError, wire.ProtocolError) as exc:
            sock.close()
            self.sock = None
            if isinstance(exc, ProbeError):
                raise
            raise ProbeUnavailable(f"no probe answers at {self.path}: {_reason(exc)}") from None
        return self.hello

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _exchange(self, request: dict, packed: tuple = ()) -> dict:
        assert self.sock is not None
        try:
            wire.write_frame(self.sock, request, self.timeout)
        except (BrokenPipeError, ConnectionResetError):
            # The probe may have refused us at accept (another uid, too many clients):
            # its reason is waiting to be read.
            reply = wire.read_frame(self.sock, min(self.timeout, 2.0))
            raise ProbeError(str(reply.get("error") or "the probe closed the connection"))
        reply = wire.read_frame(self.sock, self.timeout, packed=packed)
        if not reply.get("ok"):
            raise ProbeError(str(reply.get("error") or "the probe refused the request"))
        return reply

    def request(self, op: str, **args: Any) -> Any:
        """Send one request and return its ``data``; reconnects once if the probe went away."""
        fresh = self.sock is None
        if fresh:
            self.connect()
        packed = args.pop("_packed", ())  # (not sent: how to decode the reply, see wire.decode)
        try:
            return self._exchange({"op": op, **args}, packed).get("data")
        except ProbeError:
            raise
        except (OSError, wire.ProtocolError) as exc:
            self.close()
            if not fresh:  # the probe may have closed an idle connection: try once more
                return self.request(op, _packed=packed, **args)
            raise ProbeUnavailable(f"lost the probe at {self.path}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0]
