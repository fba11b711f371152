"""``tasktop attach PID``: start the probe inside a CPython process started without it, and
``tasktop detach PID``: stop it again.

How the probe gets in (``client.inject``): on 3.14+ the process is asked with
``sys.remote_exec``, which it serves as soon as its main thread runs bytecode; if the main
thread is idle in a system call instead (an event loop waiting in ``epoll_wait``) and the
request is still unserved, it is woken by running the same script there by ptrace, at that safe
point (see ``_start``).  On 3.9-3.13 ptrace is the only way.

What runs inside is ``BOOT``, a short script that starts a thread and returns at once: the
thread puts this installation's ``tasktop`` (and msgpack, unless the process has its own) on
the end of ``sys.path`` through a directory of two symlinks (``_library_dir``; never the whole
site-packages, whose other packages would shadow nothing but could be picked up by the
application's optional imports), and calls ``tasktop.probe.start``.  The probe then finds the
running loops and hooks task creation exactly as with ``TASKTOP=1``; tasks made before have
no creation site, and the views say "created before the probe".

The script runs only when asked: ``attach`` leaves a token file (``PID.attach``) next to the
socket and the script removes it first, so a ``sys.remote_exec`` request served late (after
the ptrace wake-up already started the probe, or after a detach) does nothing.  What went
wrong inside is written to ``PID.attach-error`` and reported as one line.
"""
from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass

from tasktop.wire import paths

from . import inject, processes
from .probe_client import ProbeClient, ProbeError, ProbeUnavailable

#: Seconds a 3.14+ process is given to serve ``sys.remote_exec`` before its idle main thread
#: is woken by ptrace.
WAKE_AFTER = 0.2
TIMEOUT = 15.0
#: Seconds the main thread alone is tried for the ptrace wake-up on 3.14+ (see ``_start``).
MAIN_ONLY_FOR = 1.0

BOOT = '''\
# Written by `tasktop attach`: run inside the process by sys.remote_exec or by ptrace.
def _tasktop_attach():
    import os, sys, threading
    directory = {directory!r}
    token = os.path.join(directory, "%d.attach" % os.getpid())
    try:
        os.unlink(token)
    except OSError:
        return  # not asked for now: an attach already served, or detached since
    def boot():
        error = None
        try:
            if {library!r} not in sys.path:
                sys.path.append({library!r})
            try:
                import msgpack
            except ImportError:
                sys.path.append({msgpack!r})
            import tasktop.probe as probe
            if not probe.start(directory=directory):
                error = probe.last_error() or "the probe did not start"
        except BaseException as exc:
            error = "%s: %s" % (type(exc).__name__, exc)
        if error:
            try:
                with open(os.path.join(directory, "%d.attach-error" % os.getpid()), "w") as fh:
                    fh.write(error.splitlines()[0] if error.strip() else "unknown error")
            except BaseException:
                pass
    threading.Thread(target=boot, name="tasktop-attach", daemon=True).start()
try:
    _tasktop_attach()
except BaseException:
    pass
try:
    del _tasktop_attach
except BaseException:
    pass
'''
#: What ptrace runs: the boot script, in a namespace of its own (not the host's ``__main__``).
PTRACE_CODE = '''\
try:
    exec(compile(open({boot!r}).read(), {boot!r}, "exec"), {{"__name__": "__tasktop_attach__"}})
except BaseException:
    pass
'''


class AttachError(Exception):
    """Attaching (or detaching) is impossible; the message is one line with the remedy."""


@dataclass
class Attached:
    pid: int
    socket: str
    how: str  # "already attached", "sys.remote_exec", "ptrace (in epoll_wait)"
    seconds: float
    version: tuple | None = None

    @property
    def already(self) -> bool:
        return self.how == "already attached"


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _answers(path: str) -> dict | None:
    """The probe's hello at ``path``, None if nothing listens there; a probe of another
    protocol version is an ``AttachError``."""
    try:
        with ProbeClient(path, timeout=5.0) as client:
            return client.hello
    except ProbeUnavailable:
        return None
    except ProbeError as exc:
        if "protocol version" in str(exc):
            raise AttachError(f"the process already has a probe of another tasktop version ({exc}): "
                              f"use the tasktop it was started with") from None
        return None


# -- where the target finds tasktop ----------------------------------------------------------------
def _package_dir(module) -> str:
    return os.path.dirname(os.path.abspath(module.__file__))


def _library_dir() -> tuple[str, str]:
    """``(library, msgpack_library)``: a directory holding only a ``tasktop`` symlink to this
    installation, and one holding only ``msgpack``; made once per installation, owned by us and
    writable by nobody else (root runs what is in it inside other people's processes)."""
    import msgpack

    import tasktop.probe

    tasktop_dir = os.path.dirname(_package_dir(tasktop.probe))
    msgpack_dir = _package_dir(msgpack)
    key = hashlib.sha256(f"{tasktop_dir}\0{msgpack_dir}".encode()).hexdigest()[:12]
    root = os.path.join(tempfile.gettempdir(), f"tasktop-lib-{os.geteuid()}-{key}")
    library, msgpack_library = os.path.join(root, "lib"), os.path.join(root, "msgpack")
    if not os.path.isdir(root):
        scratch = tempfile.mkdtemp(prefix=f"tasktop-lib-{os.geteuid()}-", dir=tempfile.gettempdir())
        os.chmod(scratch, 0o755)
        for directory, name, target in ((library, "tasktop", tasktop_dir), (msgpack_library, "msgpack", msgpack_dir)):
            made = os.path.join(scratch, os.path.basename(directory))
            os.mkdir(made, 0o755)
            os.symlink(target, os.path.join(made, name))
        try:
            os.rename(scratch, root)
        except OSError:  # another tasktop made it meanwhile
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise AttachError(f"{root} is not tasktop's own (owner uid {st.st_uid}, mode {st.st_mode & 0o777:o}): "
                          f"remove it and try again")
    return library, msgpack_library


def _readable_by(path: str, uid: int, gids: set) -> bool:
    """Whether user ``uid`` (groups ``gids``) can read ``path`` (every directory on the way
    searchable), from the permission bits."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(1, len(parts) + 1):
        here = os.sep.join(parts[:i]) or os.sep
        try:
            st = os.stat(here)
        except OSError:
            return False
        need = 0o5 if stat.S_ISDIR(st.st_mode) else 0o4
        if here != path and not stat.S_ISDIR(st.st_mode):
            return False
        bits = (st.st_mode >> 6) if st.st_uid == uid else (st.st_mode >> 3) if st.st_gid in gids else st.st_mode
        if bits & need != need and not (here != path and bits & 0o1):
            return False
    return True


def _gids(pid: int) -> set:
    status = _read(f"/proc/{pid}/status") or ""
    found = set()
    for line in status.splitlines():
        if line.startswith(("Gid:", "Groups:")):
            found.update(int(g) for g in line.split()[1:] if g.isdigit())
    return found


def _ensure_socket_dir(directory: str | None) -> str:
    """``paths.ensure_socket_dir``, its refusal one line of ours."""
    try:
        return paths.ensure_socket_dir(directory)
    except PermissionError as exc:
        raise AttachError(str(exc)) from None


def _socket_dir_for(proc: processes.PythonProcess, ours: str | None = None) -> str:
    """Where the target's probe puts its socket: ours, or (root attaching to another user's
    process) that user's default directory, made for them."""
    if proc.uid == os.getuid():
        return _ensure_socket_dir(ours)
    directory = os.path.join(tempfile.gettempdir(), f"tasktop-{proc.uid}")
    try:
        os.mkdir(directory, 0o700)
        gid = int((_read(f"/proc/{proc.pid}/status") or "Gid: 0").split("Gid:")[1].split()[0])
        os.chown(directory, proc.uid, gid)
    except FileExistsError:
        pass
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != proc.uid:
        raise AttachError(f"{directory} does not belong to user {proc.user}: remove it and try again")
    return directory


def _write(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``path`` afresh (never through a link somebody left there)."""
    fd, scratch = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tasktop-")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(scratch, mode)
    os.replace(scratch, path)


def _link(pid: int, socket: str, directory: str | None = None) -> str:
    """The path ``tasktop PID`` looks at: the socket itself, or a link to it in our directory."""
    ours = paths.socket_path(pid, directory)
    if os.path.abspath(ours) != os.path.abspath(socket):
        _ensure_socket_dir(directory)
        _remove(ours)
        os.symlink(socket, ours)
    return ours


# -- attach ----------------------------------------------------------------------------------------
#: How to get in: ``auto`` is ptrace injection wherever tasktop can inject (its own Python
#: below 3.14), else ``sys.remote_exec`` (3.14+ targets).  See ``way_for``.
WAYS = ("auto", "ptrace", "remote-exec")


def attach(pid: int, timeout: float = TIMEOUT, directory: str | None = None, via: str = "auto") -> Attached:
    """Start the probe in ``pid`` (a no-op if it has one); return once it answers.  ``directory``:
    our socket directory, if not the default (``TASKTOP_DIR``, ...); ``via``: one of ``WAYS``."""
    started = time.monotonic()
    proc = processes.describe(pid)
    ours = paths.socket_path(pid, directory)
    if proc is not None and os.path.exists(ours) and _answers(ours):
        return Attached(pid, ours, "already attached", time.monotonic() - started, proc.version)
    reason = processes.refusal(proc, pid)
    if reason:
        raise AttachError(reason)
    assert proc is not None and proc.version is not None
    way = way_for(proc, via)
    mine, directory = directory, _socket_dir_for(proc, directory)
    socket = paths.socket_path(pid, directory)
    if os.path.exists(socket) and _answers(socket):
        return Attached(pid, _link(pid, socket, mine), "already attached", time.monotonic() - started, proc.version)
    library, msgpack_library = _library_dir()
    if proc.uid != os.getuid():
        gids = _gids(pid)
        for place in (library, msgpack_library, directory):  # the directories themselves, then what they link to
            if not _readable_by(place, proc.uid, gids):
                raise AttachError(f"process {pid} runs as user {proc.user}, who cannot reach {place} (tasktop's "
                                  f"files for it, in {tempfile.gettempdir()}): set TMPDIR to a directory every "
                                  f"user can reach, such as /var/tmp, and try again")
        for needed in (os.path.join(library, "tasktop", "probe"), os.path.join(msgpack_library, "msgpack")):
            if not _readable_by(needed, proc.uid, gids):
                raise AttachError(f"process {pid} runs as user {proc.user}, who cannot read tasktop's "
                                  f"installation ({os.path.realpath(needed)}): install tasktop where that user "
                                  f"can read it, or run tasktop as that user")
    if not _same_file(f"/proc/{pid}/root{library}", library):
        raise AttachError(f"process {pid} does not see this machine's {tempfile.gettempdir()} (a container?): "
                          f"run tasktop inside its container")
    boot = os.path.join(directory, "attach.py")
    _write(boot, BOOT.format(directory=directory, library=library, msgpack=msgpack_library))
    token, error_file = os.path.join(directory, f"{pid}.attach"), os.path.join(directory, f"{pid}.attach-error")
    _remove(error_file)
    _write(token, "", 0o600)
    if proc.uid != os.getuid():
        os.chown(token, proc.uid, -1)
    try:
        how = _start(proc, boot, token, started + timeout, way)
        _wait(proc, socket, error_file, started + timeout)
    except inject.PtraceRefused:
        _remove(token)
        raise AttachError(processes.ptrace_denied(proc)) from None
    except inject.InjectError as exc:
        _remove(token)
        raise AttachError(str(exc)) from None
    except AttachError:
        _remove(token)
        raise
    return Attached(pid, _link(pid, socket, mine), how, time.monotonic() - started, proc.version)


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except PermissionError:
        return True  # cannot tell: the target's own error will say
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def way_for(proc: processes.PythonProcess, via: str = "auto") -> str:
    """``ptrace`` or ``remote-exec`` for ``proc``, as asked (``via``) and as possible.

    ptrace injection is preferred on 3.14+ too: the interpreter serves a ``sys.remote_exec``
    request at whatever bytecode its main thread runs next, and inside a ``namedtuple``'s
    ``__new__`` (globals with empty builtins) it cannot import the module that opens the
    script, and says so on the process's stderr.  ``sys.remote_exec`` remains where tasktop
    cannot inject (its own Python is 3.14+: no injection library there)."""
    if via not in WAYS:
        raise AttachError(f"unknown way in {via!r}: one of {', '.join(WAYS)}")
    remote = proc.version is not None and proc.version >= processes.REMOTE_DEBUG
    if via == "auto":
        return "ptrace" if not remote or inject.injector_available() else "remote-exec"
    if via == "remote-exec" and not remote:
        raise AttachError(f"sys.remote_exec needs CPython 3.14+ in the process (it runs "
                          f"{'.'.join(map(str, proc.version or ()))}): use --via ptrace")
    return via


def _start(proc: processes.PythonProcess, boot: str, token: str, deadline: float, way: str = "ptrace") -> str:
    """Have the process run ``boot`` (``way``: see ``way_for``); return how.

    With ``remote-exec`` (3.14+) the interpreter runs the request itself, at its main thread's
    next bytecode, and the boot script removes ``token`` first thing: while the token is there
    the request has not been served.  Only then, and only while the main thread waits in a
    safe system call, is it woken by ptrace, on the main thread alone: the injected code
    passes through the eval loop, which serves the pending request there (nested, on the same
    thread, so never at the same time as it), and then finds the token gone.  A one-time look
    is not enough: it can catch an idle main thread between two system calls (in ``futex``
    for the GIL), and an idle loop would then never serve the request; the main thread of a
    busy process is never stopped once its request is served.  A main thread that never waits
    in a safe call for ``MAIN_ONLY_FOR`` seconds (blocked on a lock, say, while the loops run in
    other threads) is given up on: another thread runs the script, and the request stays
    pending until the main thread runs bytecode, when it finds the token gone and does nothing
    (the script stays where it is, so it still opens)."""
    code = PTRACE_CODE.format(boot=boot)
    if way == "remote-exec":
        inject.remote_exec(proc.pid, boot, proc.version, proc.exe)
        wake = time.monotonic() + WAKE_AFTER
        while os.path.exists(token):
            now = time.monotonic()
            if now > deadline:
                break  # _wait says it did not start, and why
            main_only = now < wake + MAIN_ONLY_FOR
            if now >= wake and (not main_only or inject.safe_syscall(proc.pid, proc.pid) is not None):
                try:
                    call = inject.ptrace_run(proc.pid, code, timeout=min(WAKE_AFTER, max(0.0, deadline - now)),
                                             main_only=main_only)
                except inject.NoSafePoint:
                    continue  # it woke up meanwhile: it may serve the request by itself
                except inject.InjectError:
                    if not os.path.exists(token):
                        break  # served meanwhile
                    raise
                return f"sys.remote_exec, woken by ptrace in {call}"
            time.sleep(0.01)
        return "sys.remote_exec"
    call = inject.ptrace_run(proc.pid, code, timeout=max(0.5, deadline - time.monotonic()))
    return f"ptrace (in {call})"


def _wait(proc: processes.PythonProcess, socket: str, error_file: str, deadline: float) -> None:
    """Until the probe at ``socket`` answers, or the boot reports why it cannot."""
    while True:
        error = _read(error_file)
        if error is not None:
            _remove(error_file)
            raise AttachError(f"the probe did not start in process {proc.pid}: {error}")
        if os.path.exists(socket) and _answers(socket):
            return
        if not paths.pid_alive(proc.pid):
            raise AttachError(f"process {proc.pid} exited while tasktop was attaching")
        if time.monotonic() > deadline:
            raise AttachError(f"process {proc.pid} did not start the probe within {TIMEOUT:.0f}s "
                              f"(its main thread never ran Python code: stuck in C code?)")
        time.sleep(0.01)


# -- detach ----------------------------------------------------------------------------------------
def detach(pid: int, timeout: float = 5.0, directory: str | None = None) -> bool:
    """Stop the probe of ``pid``; False if it had none.  Returns once its socket is gone."""
    ours = paths.socket_path(pid, directory)
    if not paths.pid_alive(pid):
        _remove(ours) if os.path.islink(ours) else None
        raise AttachError(f"no process with pid {pid} (it has exited)")
    socket = os.path.realpath(ours) if os.path.islink(ours) else ours
    for leftover in (f"{pid}.attach", f"{pid}.attach-error"):  # a late remote_exec does nothing
        _remove(os.path.join(os.path.dirname(socket), leftover))
    if not os.path.exists(socket):
        _remove(ours)
        return False
    try:
        with ProbeClient(ours, timeout=timeout) as client:
            client.detach()
    except ProbeUnavailable:
        _remove(ours)
        return False
    except ProbeError as exc:
        raise AttachError(f"process {pid}'s probe cannot be detached: {exc}") from None
    deadline = time.monotonic() + timeout
    while os.path.exists(socket):
        if time.monotonic() > deadline:
            raise AttachError(f"process {pid}'s probe did not stop within {timeout:.0f}s")
        time.sleep(0.01)
    _remove(ours) if os.path.islink(ours) else None
    return True


def python_note(proc_version: tuple | None) -> str:
    """When the tool's and the target's Python versions differ, what that changes, or ""."""
    if proc_version is None or tuple(proc_version) == tuple(sys.version_info[:2]):
        return ""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    theirs = ".".join(map(str, proc_version))
    return (f"note: the process runs Python {theirs} and tasktop {mine}: unless the process has msgpack "
            f"of its own, its probe packs replies with msgpack's pure-Python packer (slower replies; "
            f"install tasktop under Python {theirs} to avoid that)")
