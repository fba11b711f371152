"""What a process is, seen from outside without touching it: whether it runs Python (CPython,
which version), whose it is, whether it has a probe, and whether it may be attached to.

Read from ``/proc`` only (the kernel's view), never by running anything of the process: the
executable's name or the ``libpython3.X`` / ``cpython-3XX`` files it has mapped tell the
version, its command line and environment tell whether remote debugging is off.  The picker
marks every Python process of the user from this, and ``tasktop attach`` refuses from it
before it traces anything (``refusal``), each refusal one line with its remedy.
"""
from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass, field

import psutil

from tasktop.wire import paths

#: The CPython versions the probe runs on, oldest and newest.
OLDEST = (3, 9)
NEWEST = (3, 15)
#: The first CPython with ``sys.remote_exec`` and the no-probe reader (``_remote_debugging``).
REMOTE_DEBUG = (3, 14)

_EXE = re.compile(r"^python(\d)\.(\d+)t?$")
_LIBPYTHON = re.compile(r"/libpython(\d)\.(\d+)t?\.so")
_EXT_TAG = re.compile(r"\.cpython-(\d)(\d+)t?-")
_STDLIB_DIR = re.compile(r"/lib/python(\d)\.(\d+)t?/")


@dataclass
class PythonProcess:
    """One process of this machine as tasktop sees it from outside."""

    pid: int
    uid: int
    user: str
    argv: list = field(default_factory=list)
    exe: str = ""
    #: "CPython", "PyPy", or "" when the process is not Python as far as /proc tells.
    implementation: str = ""
    version: tuple | None = None
    #: Why remote debugging is off in it (3.14+), or "".
    remote_debug_off: str = ""

    @property
    def is_python(self) -> bool:
        return bool(self.implementation)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version)) if self.version else "?"

    @property
    def command(self) -> str:
        return " ".join(self.argv) or os.path.basename(self.exe) or "?"

    def has_probe(self, directory: str | None = None) -> bool:
        return os.path.exists(paths.socket_path(self.pid, directory))

    @property
    def readable(self) -> bool:
        """Whether its tasks can be read without a probe (CPython 3.14+'s own reader)."""
        return self.implementation == "CPython" and self.version is not None and self.version >= REMOTE_DEBUG


def _read(path: str, mode: str = "r"):
    try:
        with open(path, mode) as fh:
            return fh.read()
    except (OSError, ValueError):
        return None


def _uid(pid: int) -> int | None:
    status = _read(f"/proc/{pid}/status")
    for line in (status or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # the real uid
    return None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _version_from(exe: str, maps: str) -> tuple[str, tuple | None]:
    """``(implementation, version)`` from the executable's name and the mapped files."""
    name = os.path.basename(exe)
    if "pypy" in name or "libpypy" in maps:
        return "PyPy", None
    found = _EXE.match(name) or _LIBPYTHON.search(maps)
    if found is None and re.match(r"^python\d?$", name):  # python3 itself, not a link
        found = _EXT_TAG.search(maps) or _STDLIB_DIR.search(maps)
    if found is None:
        return "", None
    return "CPython", (int(found.group(1)), int(found.group(2)))


def _interpreter_options(argv: list) -> list[str]:
    """The interpreter's own options of a command line (before the script, ``-c`` or ``-m``),
    ``-X`` and ``-W`` joined to their values (``-Xdev``)."""
    options: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if not arg.startswith("-") or arg in ("-c", "-m", "-", "--"):
            break
        if arg in ("-X", "-W"):
            arg += next(args, "")
        options.append(arg)
    return options


def _remote_debug_off(pid: int, argv: list) -> str:
    """Why ``sys.remote_exec`` is refused in the process (3.14+), or "" (PEP 768's switches)."""
    options = _interpreter_options(argv)
    if "-Xdisable-remote-debug" in options:
        return "-X disable-remote-debug"
    if any(opt[1:].isalpha() and ("E" in opt or "I" in opt) for opt in options if not opt.startswith(("-X", "-W"))):
        return ""  # -E / -I: the PYTHON* variables are ignored
    environ = _read(f"/proc/{pid}/environ", "rb")
    for item in (environ or b"").split(b"\0"):
        if item.startswith(b"PYTHON_DISABLE_REMOTE_DEBUG=") and item != b"PYTHON_DISABLE_REMOTE_DEBUG=":
            return "PYTHON_DISABLE_REMOTE_DEBUG"
    return ""


def describe(pid: int) -> PythonProcess | None:
    """The process ``pid`` as tasktop sees it, or None when it does not exist (any more)."""
    uid = _uid(pid)
    if uid is None:
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    exe = exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe
    argv = []
    raw = _read(f"/proc/{pid}/cmdline", "rb")
    if raw:
        argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    maps = _read(f"/proc/{pid}/maps") or ""
    implementation, version = _version_from(exe, maps)
    if not exe and not maps and argv:  # another user's: exe and maps are hidden, argv is not
        implementation, version = _version_from(argv[0], "")
    proc = PythonProcess(pid=pid, uid=uid, user=_user(uid), argv=argv, exe=exe,
                         implementation=implementation, version=version)
    if proc.implementation == "CPython" and version is not None and version >= REMOTE_DEBUG:
        proc.remote_debug_off = _remote_debug_off(pid, argv)
    return proc


def python_processes(uid: int | None = None) -> list[PythonProcess]:
    """Every Python process of user ``uid`` (default: ours; root: everybody's), by pid; not this one."""
    if uid is None and os.geteuid() != 0:
        uid = os.getuid()
    found = []
    for pid in psutil.pids():
        if pid == os.getpid():
            continue
        proc = describe(pid)
        if proc is not None and proc.is_python and (uid is None or proc.uid == uid):
            found.append(proc)
    return found


# -- may tasktop trace it? -----------------------------------------------------------------------
CAP_SYS_PTRACE = 19


def _has_cap_sys_ptrace() -> bool:
    status = _read("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    return os.geteuid() == 0


def ptrace_scope() -> int | None:
    """Yama's ``kernel.yama.ptrace_scope`` (None: no Yama, classic rules)."""
    text = _read("/proc/sys/kernel/yama/ptrace_scope")
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _is_ancestor(pid: int) -> bool:
    """Whether this process is an ancestor of ``pid`` (Yama scope 1 lets only them trace)."""
    try:
        return any(parent.pid == os.getpid() for parent in psutil.Process(pid).parents())
    except psutil.Error:
        return False


def dumpable(pid: int) -> bool:
    """Whether the process is dumpable (False after ``prctl(PR_SET_DUMPABLE, 0)``, or once it
    changed its user, group or capabilities): the kernel then lets only ``CAP_SYS_PTRACE``
    trace it or read its memory, whoever owns it.  Told by its private /proc files, which the
    kernel gives to root instead of to the process's user (the /proc/PID directory keeps it)."""
    try:
        return os.stat(f"/proc/{pid}/environ").st_uid == os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return True  # gone, or cannot tell: the attempt itself will say


def _without_cap(what: str, proc: PythonProcess) -> str:
    """The refusal when tasktop runs as root but without CAP_SYS_PTRACE (a container, or a
    bounding set that drops it), which ``what`` needs."""
    return (f"tasktop runs as root but without the CAP_SYS_PTRACE capability, which {what} needs "
            f"(a container, or capabilities dropped): give it CAP_SYS_PTRACE (docker run --cap-add "
            f"SYS_PTRACE, or setcap cap_sys_ptrace+ep on tasktop's Python), or run tasktop as "
            f"user {proc.user}")


def ptrace_refusal(proc: PythonProcess) -> str:
    """Why the kernel will not let this process trace ``proc`` (with the remedy), or ""."""
    privileged = _has_cap_sys_ptrace()
    if proc.uid != os.getuid() and not privileged:
        if os.geteuid() == 0:
            return _without_cap(f"tracing process {proc.pid} of user {proc.user}", proc)
        return (f"process {proc.pid} belongs to user {proc.user}, not to you: run tasktop as that user "
                f"or as root (sudo tasktop attach {proc.pid})")
    if not privileged and not dumpable(proc.pid):
        return not_dumpable(proc)
    scope = ptrace_scope()
    if scope == 3:
        return ("ptrace is switched off on this machine (kernel.yama.ptrace_scope = 3, until reboot): "
                "start the process with TASKTOP=1 instead")
    if scope == 2 and not privileged:
        return (f"only root may trace processes here (kernel.yama.ptrace_scope = 2): "
                f"sudo tasktop attach {proc.pid}, or give tasktop's Python CAP_SYS_PTRACE")
    if scope == 1 and not privileged and not _is_ancestor(proc.pid):
        return (f"only a process's parents may trace it here (kernel.yama.ptrace_scope = 1): "
                f"sudo tasktop attach {proc.pid}, or set kernel.yama.ptrace_scope = 0 "
                f"(sudo sysctl kernel.yama.ptrace_scope=0)")
    return ""


def not_dumpable(proc: PythonProcess) -> str:
    if os.geteuid() == 0:
        return _without_cap(f"tracing process {proc.pid} (it is not dumpable)", proc)
    return (f"process {proc.pid} is not dumpable (it called prctl(PR_SET_DUMPABLE, 0), or changed its "
            f"user or capabilities), so only root may trace it: sudo tasktop attach {proc.pid}, or "
            f"start it with TASKTOP=1")


def ptrace_denied(proc: PythonProcess) -> str:
    """Why the kernel said EPERM to tracing ``proc`` or reading its memory, when none of the
    rules read beforehand (``ptrace_refusal``) foresaw it, with the remedy."""
    found = ptrace_refusal(proc)
    if found:
        return found  # it changed meanwhile (it made itself non-dumpable, say)
    if os.geteuid() == 0 and not _has_cap_sys_ptrace():
        return _without_cap(f"tracing process {proc.pid}", proc)
    return (f"the kernel refused to let tasktop trace process {proc.pid} (ptrace: operation not permitted), "
            f"though it is yours and dumpable: a security module (SELinux, AppArmor) or another user "
            f"namespace (a container) forbids it; run tasktop as root in the process's container, or "
            f"start the process with TASKTOP=1")


def refusal(proc: PythonProcess | None, pid: int) -> str:
    """Why ``tasktop attach`` cannot start a probe in ``pid`` (one line with the remedy), or ""."""
    if proc is None:
        return f"no process with pid {pid} (it has exited)"
    if (proc.uid != os.getuid() or not proc.exe) and not _has_cap_sys_ptrace():
        # Its executable and maps are hidden from us (another user's, or not dumpable): the
        # kernel's refusal is what to say, not what they would have told.
        reason = ptrace_refusal(proc)
        if reason:
            return reason
    if not proc.is_python:
        what = os.path.basename(proc.exe or (proc.argv[0] if proc.argv else "")) or "?"
        return (f"process {pid} ({what}) is not a Python process as far as /proc tells: "
                f"tasktop attaches to CPython {_v(OLDEST)} to {_v(NEWEST)}")
    if proc.implementation != "CPython":
        return (f"process {pid} runs {proc.implementation}, not CPython: tasktop attaches to CPython only; "
                f"start it with TASKTOP=1 instead")
    if proc.version is None:
        return f"process {pid}'s Python version cannot be told from /proc: start it with TASKTOP=1 instead"
    if proc.version < OLDEST:
        return (f"process {pid} runs Python {proc.version_text}; the probe needs {_v(OLDEST)} or newer "
                f"(threads alone: tasktop dump {pid})")
    if proc.version > NEWEST:
        return (f"process {pid} runs Python {proc.version_text}, newer than this tasktop knows "
                f"(up to {_v(NEWEST)}): upgrade tasktop (pip install -U tasktop)")
    if proc.remote_debug_off:
        return (f"process {pid} has remote debugging switched off ({proc.remote_debug_off}): "
                f"restart it without {proc.remote_debug_off}, or with TASKTOP=1")
    return ptrace_refusal(proc)


def _v(version: tuple) -> str:
    return ".".join(map(str, version))
