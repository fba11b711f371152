"""Two ways to have a running CPython process run a few lines of Python, from outside.

``remote_exec``: PEP 768's ``sys.remote_exec`` (CPython 3.14+).  The target runs the script
itself at its next safe point, when its main thread next executes bytecode: at once in a busy
process, never in one whose main thread waits in ``epoll_wait``.  It must be called by a
Python of the target's own version, so it is called by the target's own executable
(``/proc/PID/exe``) unless tasktop's Python is that version.

``ptrace_run``: ptrace injection (any CPython): ``pyinjector`` stops one thread of the target,
has it ``dlopen`` ``hypno``'s small library and call its ``run_python_code``, which runs the
code under ``PyGILState_Ensure`` (CPython's stable ABI: one library serves 3.9 to 3.15).  That is only safe
where the stopped thread is at a clean boundary, so a thread is used only while it is stopped
*inside* a system call that CPython makes with the GIL released (``epoll_wait``, ``poll``,
``select``, sleeps; never ``futex``, which is also how a thread waits for the GIL): there it
holds no lock of the interpreter or of libc, and the interrupted call is restarted afterwards.
A thread running Python or C code is let go untouched (detached at once) and tried again a few
milliseconds later.  A busy loop thread is in its ``epoll_wait`` between two batches of events.
"""
from __future__ import annotations

import os
import platform
import re
import struct
import subprocess
import sys
import time

#: System calls during which a stopped thread is at a clean boundary (see the module's doc).
SAFE_SYSCALLS = {
    "x86_64": {7: "poll", 23: "select", 35: "nanosleep", 230: "clock_nanosleep", 232: "epoll_wait",
               270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 441: "epoll_pwait2"},
    "aarch64": {22: "epoll_pwait", 72: "pselect6", 73: "ppoll", 101: "nanosleep",
                115: "clock_nanosleep", 441: "epoll_pwait2"},
}
RETRY = 0.005  # seconds between two looks for a thread at a safe point


class InjectError(Exception):
    """The code could not be run in the target; the message is one line for the user."""


class PtraceRefused(InjectError):
    """The kernel refused to let us trace the target (EPERM)."""


class NoSafePoint(InjectError):
    """No thread of the target was seen stopped in a safe system call before the timeout."""


class RemoteDebugOff(InjectError):
    """The target refuses ``sys.remote_exec`` (``-X disable-remote-debug`` or the variable)."""


# -- PEP 768 --------------------------------------------------------------------------------------
_SEND = "import sys; sys.remote_exec(int(sys.argv[1]), sys.argv[2])"


def remote_exec(pid: int, script: str, version: tuple, exe: str) -> None:
    """Ask ``pid`` (CPython ``version``, 3.14+, executable ``exe``) to run the file ``script``
    at its next safe point.  Returns once the request is written, not once it has run."""
    if tuple(sys.version_info[:2]) == tuple(version) and hasattr(sys, "remote_exec"):
        try:
            sys.remote_exec(pid, script)  # type: ignore[attr-defined]
        except PermissionError as exc:
            raise PtraceRefused(f"the kernel refused to let tasktop read process {pid}'s memory ({exc.strerror})") from None
        except (RuntimeError, OSError, ValueError) as exc:
            raise _remote_error(pid, str(exc)) from None
        return
    if not re.match(r"^python\d\.\d+t?$", os.path.basename(exe)):
        raise InjectError(f"process {pid} runs an embedded Python ({os.path.basename(exe)}): "
                          f"sys.remote_exec needs a Python {version[0]}.{version[1]} executable")
    try:
        done = subprocess.run([f"/proc/{pid}/exe", "-I", "-S", "-c", _SEND, str(pid), script],
                              capture_output=True, text=True, timeout=30)
    except PermissionError:  # /proc/PID/exe is behind the kernel's ptrace access check
        raise PtraceRefused(f"the kernel refused to let tasktop reach process {pid}") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise InjectError(f"cannot run process {pid}'s Python to reach it: {exc}") from None
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        message = lines[-1]
        if message.startswith("PermissionError"):
            raise PtraceRefused(f"the kernel refused to let tasktop read process {pid}'s memory")
        raise _remote_error(pid, message.split(": ", 1)[-1])


def _remote_error(pid: int, message: str) -> InjectError:
    if "not enabled" in message:
        return RemoteDebugOff(f"process {pid} has remote debugging switched off: restart it without "
                              f"-X disable-remote-debug and PYTHON_DISABLE_REMOTE_DEBUG, or with TASKTOP=1")
    return InjectError(f"sys.remote_exec into process {pid} failed: {message}")


# -- ptrace ---------------------------------------------------------------------------------------
def safe_syscall(pid: int, tid: int) -> str | None:
    """The name of the safe system call thread ``tid`` is in now, or None (running, in another
    call, gone, or a machine whose calls are not in ``SAFE_SYSCALLS``).  ``PtraceRefused`` when
    the kernel hides it from us: it would not let us trace the thread either."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as fh:
            first = fh.read().split(" ", 1)[0]
    except PermissionError:  # the kernel's ptrace access check, the same as for tracing it
        raise PtraceRefused(f"the kernel refused to let tasktop trace process {pid}") from None
    except OSError:
        return None
    try:
        number = int(first)
    except ValueError:  # "running"
        return None
    return SAFE_SYSCALLS.get(platform.machine(), {}).get(number)


def _threads(pid: int) -> list[int]:
    """The target's threads, its main thread first."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []
    return [pid] + [t for t in tids if t != pid] if pid in tids else tids


def _library() -> tuple[str, int]:
    """hypno's injection library, and the address (from its load address) of its code buffer."""
    try:
        from hypno.api import INJECTION_LIB_PATH, MAGIC
    except ImportError:
        raise InjectError(
            f"attaching to Python 3.9-3.13, or to an idle 3.14+ process, needs ptrace injection "
            f"(the hypno and pyinjector packages), which is not installed for this tasktop's Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}: pip install hypno, or install tasktop "
            f"under Python 3.9-3.13") from None
    path = str(INJECTION_LIB_PATH)
    with open(path, "rb") as fh:
        lib = fh.read()
    magic = lib.find(MAGIC)
    address = _address_of(lib, magic - 1)  # the buffer: a NUL (nothing to run), then the magic
    if magic < 1 or address is None:
        raise InjectError("hypno's injection library is not as tasktop expects: reinstall hypno")
    return path, address


def _address_of(elf: bytes, offset: int) -> int | None:
    """The address (relative to the load address) of file offset ``offset`` of a 64-bit ELF
    shared library: from its ``PT_LOAD`` program headers."""
    if elf[:5] != b"\x7fELF\x02":
        return None
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and p_offset <= offset < p_offset + p_filesz:
            return offset - p_offset + p_vaddr
    return None


def _poke(pid: int, address: int, data: bytes) -> None:
    """Write ``data`` into the stopped tracee's memory (the tracer may write /proc/PID/mem)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        os.pwrite(fd, data, address)
    finally:
        os.close(fd)


def _peek(pid: int, address: int, size: int) -> bytes:
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return os.pread(fd, size, address)
    finally:
        os.close(fd)


def injector_available() -> bool:
    """Whether ``ptrace_run`` can run here (pyinjector and hypno are installed for tasktop's
    own Python below 3.14, on Linux)."""
    try:
        import pyinjector.api  # noqa: F401

        _library()
    except (ImportError, InjectError):
        return False
    return True


def ptrace_run(pid: int, code: str, timeout: float = 5.0, main_only: bool = False) -> str:
    """Run ``code`` in ``pid`` on the first of its threads found stopped in a safe system call
    (main thread first; only the main thread with ``main_only``); return the call it was in.
    ``code`` runs to its end before this returns, on that thread, holding the GIL: it should
    start a thread and return.

    hypno's library is loaded as it is, its code buffer empty, so that its constructor runs
    nothing: Python run there would run inside ``dlopen``, holding the dynamic loader's lock,
    and deadlock with any thread that imports an extension module meanwhile (it holds the GIL
    while it waits for that lock).  The code is written into the loaded buffer through
    ``/proc/PID/mem`` and run by a call of its own (``run_python_code``), after ``dlopen``
    has returned."""
    try:
        from pyinjector.api import InjectorError, LinuxInjectorPermissionError, attach
    except ImportError:
        _library()  # says what to install
        raise InjectError("the pyinjector package is missing: reinstall tasktop") from None
    path, buffer = _library()
    payload = code.encode() + b"\0"
    deadline = time.monotonic() + timeout
    while True:
        threads = [t for t in _threads(pid) if t == pid or not main_only]
        if not threads:
            raise InjectError(f"no process with pid {pid} (it has exited)")
        for tid in threads:
            if safe_syscall(pid, tid) is None:
                continue
            try:
                with attach(tid) as injector:
                    call = safe_syscall(pid, tid)  # stopped now: where, exactly?
                    if call is None:
                        continue  # it moved on meanwhile: let go of it as it was
                    handle = injector.inject(path.encode())
                    try:
                        base, = struct.unpack("<Q", _peek(pid, handle, 8))  # link_map.l_addr
                        _poke(pid, base + buffer, payload)
                        injector.call(handle, "run_python_code")
                        _poke(pid, base + buffer, b"\0")
                    finally:
                        injector.uninject(handle)
                    return call
            except LinuxInjectorPermissionError:
                raise PtraceRefused(f"the kernel refused to let tasktop trace process {pid} "
                                    f"(ptrace: operation not permitted)") from None
            except InjectorError as exc:
                if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                    continue
                raise InjectError(f"ptrace injection into process {pid} failed: "
                                  f"{exc.error_str or exc.ret_val}") from None
            except OSError as exc:
                raise InjectError(f"ptrace injection into process {pid} failed: {exc}") from None
        if time.monotonic() > deadline:
            raise NoSafePoint(
                f"none of process {pid}'s threads waited in a system call where code can run "
                f"safely within {timeout:.0f}s (all busy in Python or C code): try again")
        time.sleep(RETRY)
