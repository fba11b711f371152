"""The socket: garbage, truncated and oversized frames, unknown requests, slow, vanished and
too many clients, other users — none may hurt the host or leak the probe's threads or fds."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import wait_until
from support.targets import EVENT_WAITERS
from tasktop import wire
from tasktop.client.probe_client import ProbeClient, ProbeError


def _raw(target) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(target.path)
    return sock


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _healthy(target) -> None:
    data = target.summary()
    assert data["totals"]["tasks"] == 4
    assert target.proc.poll() is None


def test_socket_and_directory_permissions(spawn):
    target = spawn(EVENT_WAITERS)
    assert stat.S_IMODE(os.stat(target.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(target.path)).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(target.path).st_mode)


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                     # not our protocol at all
    wire.HEADER.pack(5) + b"\xc1\xc1\xc1\xc1\xc1",            # msgpack garbage
    wire.HEADER.pack(3) + b"\x93\x01\x02",                    # valid msgpack, not a map
    wire.HEADER.pack(0xFFFFFFFF),                             # a 4 GiB length
    wire.HEADER.pack(100) + b"\x81",                          # truncated, then gone
    b"\x00",                                                   # half a header
])
def test_garbage_gets_an_error_or_a_close_and_leaks_nothing(spawn, payload):
    target = spawn(EVENT_WAITERS)
    _healthy(target)
    fds, threads = _fds(target.pid), _threads(target.pid)
    for _ in range(20):
        sock = _raw(target)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass
        sock.close()
        if reply:
            (length,) = wire.HEADER.unpack_from(reply)
            answer = wire.decode(reply[4:4 + length])
            assert answer["ok"] is False and answer["error"]
    _healthy(target)
    wait_until(lambda: _fds(target.pid) <= fds, message="fds back to their count")
    assert _threads(target.pid) == threads


def test_unknown_and_bad_requests_get_error_replies_and_the_connection_lives(spawn):
    target = spawn(EVENT_WAITERS)
    with target.client() as client:
        for op, args, text in [("explode", {}, "unknown request"), ("task", {"id": 10**9}, "no task"),
                               ("group", {"id": "nope"}, "no group"), ("task", {}, "")]:
            with pytest.raises(ProbeError) as info:
                client.request(op, **args)
            assert text in str(info.value)
        assert client.summary()["totals"]["tasks"] == 4  # same connection, still served


def test_wrong_protocol_version_is_refused(spawn):
    target = spawn(EVENT_WAITERS)
    sock = _raw(target)
    wire.write_frame(sock, {"op": "hello", "version": 999}, 5)
    reply = wire.read_frame(sock, 5)
    assert reply["ok"] is False and "version" in reply["error"]
    sock.close()
    wire.write_frame(_raw(target), {"op": "summary"}, 5)  # no hello at all
    _healthy(target)


def test_silent_and_slow_clients_do_not_block_others(spawn):
    target = spawn(EVENT_WAITERS)
    silent = [_raw(target) for _ in range(3)]
    half = _raw(target)
    half.sendall(wire.HEADER.pack(50) + b"\x81")  # a frame that never completes
    _healthy(target)  # served while they hang around
    # A client that asks for a lot and never reads does not stall the probe either.
    hog = _raw(target)
    wire.write_frame(hog, {"op": "hello", "version": wire.VERSION}, 5)
    for _ in range(50):
        hog.sendall(wire.encode({"op": "full"}))
    _healthy(target)
    for sock in silent + [half, hog]:
        sock.close()
    _healthy(target)


def test_too_many_clients_are_refused_then_served_again(spawn):
    target = spawn(EVENT_WAITERS)
    held = []
    for _ in range(wire.MAX_CLIENTS):
        client = target.client()
        client.connect()
        held.append(client)
    with pytest.raises(Exception) as info:
        target.client().connect()
    assert "too many clients" in str(info.value)
    for client in held:
        client.close()
    wait_until(lambda: target.summary(), message="served again")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as a second user")
def test_a_second_uid_is_refused(spawn):
    target = spawn(EVENT_WAITERS)
    # Open the socket up on purpose: the file mode must not be the only thing standing.
    os.chmod(os.path.dirname(target.path), 0o755)
    os.chmod(target.path, 0o777)
    code = textwrap.dedent(f"""
        import os, socket, sys
        sys.path[:0] = {sys.path!r}
        from tasktop import wire
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect({target.path!r})
        try:
            wire.write_frame(s, {{"op": "hello", "version": wire.VERSION}}, 5)
        except OSError:
            pass  # refused at accept: the reason is already waiting to be read
        try:
            print(wire.read_frame(s, 5))
        except (OSError, ConnectionError) as exc:
            print("closed", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "permission denied: uid 65534" in out.stdout, out.stdout + out.stderr
    assert "'ok': True" not in out.stdout
    _healthy(target)


def test_client_timeouts_are_one_line_errors(tmp_path):
    # A socket nobody answers on: connect fails with ProbeUnavailable, one line.
    from tasktop.client.probe_client import ProbeUnavailable

    path = str(tmp_path / "dead.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    client = ProbeClient(path, timeout=0.5)
    with pytest.raises(ProbeUnavailable) as info:
        client.connect()
    assert "\n" not in str(info.value)
    listener.close()


def test_client_reconnects_once_when_the_probe_dropped_the_connection(spawn):
    target = spawn(EVENT_WAITERS)
    with target.client() as client:
        client.summary()
        # As the probe does to a connection idle for IDLE_TIMEOUT: the socket is gone.
        client.sock.shutdown(socket.SHUT_RDWR)
        assert client.summary()["totals"]["tasks"] == 4


MANY = r'''
import asyncio
async def main():
    ev = asyncio.Event()
    keep = [asyncio.create_task(ev.wait(), name=f"waiter-{i}") for i in range(20000)]
    print("ready", flush=True)
    await asyncio.sleep(1000)
asyncio.run(main())
'''


def test_a_chunked_full_reply_comes_in_blocks_and_is_the_same_document(spawn):
    """``full`` with ``chunked``: a CHUNKED header, chunks no bigger than a block (the probe
    sends each as it is packed), a last chunk of 0; together the same rows as unchunked."""
    target = spawn(MANY)
    with _raw(target) as sock:
        wire.write_frame(sock, {"op": "hello", "version": wire.VERSION}, 10)
        wire.read_frame(sock, 10)
        wire.write_frame(sock, {"op": "full", "chunked": True}, 10)
        deadline = __import__("time").monotonic() + 30
        (length,) = wire.HEADER.unpack(wire._recv_exact(sock, wire.HEADER.size, deadline))
        assert length == wire.CHUNKED
        sizes, chunks = [], []
        while True:
            (length,) = wire.HEADER.unpack(wire._recv_exact(sock, wire.HEADER.size, deadline))
            if not length:
                break
            sizes.append(length)
            chunks.append(wire._recv_exact(sock, length, deadline))
        chunked = wire.decode(b"".join(chunks))["data"]
    assert len(sizes) > 4 and max(sizes) < 2 * wire.BLOCK
    plain = target.request("full")  # the client asks for chunks too: read_frame joins them
    names = sorted(t["name"] for t in chunked["tasks"])
    assert names == sorted(t["name"] for t in plain["tasks"])
    assert sum(1 for n in names if n.startswith("waiter-")) == 20000


def test_a_full_reply_sends_each_distinct_stack_once_and_the_client_puts_them_back(spawn):
    """20,000 waiters share one stack and one creation stack: the reply holds each once (the
    rows name them by number), so it is a fraction of the rows with their own copies, and
    ``ProbeClient.full`` gives every row its stacks back."""
    target = spawn(MANY)
    with target.client() as client:
        raw = client.request("full", chunked=True)
        rows = [t for t in raw["tasks"] if t["name"].startswith("waiter-")]
        assert len(rows) == 20000
        assert all(type(t["stack"]) is int and type(t["created_by"]) is int for t in rows)
        table = raw["stacks"]
        assert len({repr(s) for s in table}) == len(table) <= 4  # the waiters and main: stacks, creations
        whole = client.full()
    assert "stacks" not in whole
    waiters = [t for t in whole["tasks"] if t["name"].startswith("waiter-")]
    assert len(waiters) == 20000
    assert {t["stack"][0]["func"].rsplit(".", 1)[-1] for t in waiters} == {"wait"}  # 3.9, 3.10: no class
    assert all("main" in [f["func"] for f in t["created_by"]] for t in waiters)
    assert waiters[0]["stack"] == table[rows[0]["stack"]]
    assert 2 * sum(len(wire.encode(t)) for t in rows) < sum(len(wire.encode(t)) for t in waiters)
