"""tasktop's in-process probe.

Enable it with ``TASKTOP=1`` in the environment (no code change: ``tasktop.pth`` starts it at
interpreter start-up), with ``tasktop run -- CMD``, or by calling :func:`start`.  It runs in
one daemon thread and serves snapshots over a Unix socket (see :mod:`tasktop.wire`).

The probe depends on the standard library and msgpack only, and nothing it does may raise
into the host: :func:`start` and :func:`stop` swallow their own failures and report them as
``False`` / through :func:`last_error`.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading

from .config import Options

__all__ = ["start", "stop", "detach", "is_running", "socket_path", "last_error"]

_lock = threading.Lock()
_server = None
_options: Options | None = None
_error: str | None = None
_registered = False
_fork_hooks = False  # os.register_at_fork has no way back: registered once, idle without a probe
_paused_for_fork = False
_orig_exit = os._exit
_orig_kill = os.kill
_orig_raise_signal = getattr(signal, "raise_signal", None)
# Signals whose default action ends the process.
_DEADLY = {getattr(signal, name) for name in (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGABRT", "SIGFPE", "SIGSEGV", "SIGPIPE", "SIGALRM",
    "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGBUS", "SIGSYS", "SIGTRAP", "SIGXCPU", "SIGXFSZ",
    "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR") if hasattr(signal, name)}


def start(**overrides) -> bool:
    """Start the probe (idempotent).  Keyword arguments override the ``TASKTOP_*`` options:
    ``directory``, ``interval``, ``creation_stacks``, ``creation_depth``, ``tracemalloc``,
    ``stall_ms``, ``end_history``, ``cancellers_by_profile``, ``record``, ``record_size``,
    ``record_interval``.  Returns whether the probe is running."""
    global _options, _error
    try:
        with _lock:
            if _server is not None:
                return True
            options = Options.from_env()
            for name, value in overrides.items():
                if not hasattr(options, name):
                    raise TypeError(f"unknown probe option {name!r}")
                setattr(options, name, value)
            _options = options
            return _start_locked(options)
    except Exception as exc:
        _error = f"{exc.__class__.__name__}: {exc}"
        return False


def _start_locked(options: Options) -> bool:
    global _server, _error
    from . import hooks
    from .server import Server

    if options.tracemalloc:
        import tracemalloc

        if not tracemalloc.is_tracing():
            tracemalloc.start(max(1, options.tracemalloc))
    hooks.install(depth=options.creation_depth, record_sites=options.creation_stacks)
    if options.end_history:
        from . import end_history

        end_history.install(profile=options.cancellers_by_profile)
        hooks.on_done = end_history.task_done
    server = Server(options)
    try:
        server.open()
        server.start_thread()
    except Exception:
        server.close()
        hooks.uninstall()
        raise
    _server = server
    _error = None
    _register_process_hooks()
    return True


def stop() -> None:
    """Stop the probe: the thread ends, the socket is closed and removed, hooks go quiet."""
    global _server
    try:
        with _lock:
            server, _server = _server, None
            if server is None:
                return
            from . import hooks

            hooks.uninstall()
            server.stop_thread()
            server.close()
    except Exception:
        pass


def detach() -> None:
    """Stop the probe and put back what it changed in the process: the asyncio hooks
    (``hooks.restore``), ``os._exit``, ``os.kill``, ``signal.raise_signal`` and the atexit
    handler.  What ``tasktop detach`` asks for; :func:`start` may start it again."""
    stop()
    try:
        with _lock:
            if _server is not None:  # started again meanwhile
                return
            from . import hooks

            hooks.restore()
            _unregister_process_hooks()
            end_history = sys.modules.get(__name__ + ".end_history")
            if end_history is not None:
                end_history.unwatch_direct_cancels()  # the monitoring id it holds (3.12+)
    except Exception:
        pass


def is_running() -> bool:
    return _server is not None


def socket_path() -> str | None:
    """The path of this process's probe socket, when the probe runs."""
    server = _server
    return server.path if server is not None else None


def last_error() -> str | None:
    """Why the last :func:`start` failed, if it did."""
    return _error


# -- process hooks ---------------------------------------------------------------------------------
def _register_process_hooks() -> None:
    global _registered, _fork_hooks
    if _registered:
        return
    _registered = True
    atexit.register(stop)
    if hasattr(os, "register_at_fork") and not _fork_hooks:
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                            after_in_child=_after_fork_child)
        _fork_hooks = True
    os._exit = _exit  # multiprocessing's fork children leave through os._exit, skipping atexit
    # A process that ends itself with a signal skips atexit too: uvicorn (and so gunicorn's
    # UvicornWorker) re-raises SIGTERM with the default handler once it has shut down.
    os.kill = _kill
    if _orig_raise_signal is not None:
        signal.raise_signal = _raise_signal


def _unregister_process_hooks() -> None:
    """Undo _register_process_hooks, except what somebody has wrapped over since."""
    global _registered
    if not _registered:
        return
    _registered = False
    atexit.unregister(stop)
    if os._exit is _exit:
        os._exit = _orig_exit
    if os.kill is _kill:
        os.kill = _orig_kill
    if _orig_raise_signal is not None and signal.raise_signal is _raise_signal:
        signal.raise_signal = _orig_raise_signal


def _exit(code):
    server = _server
    if server is not None:
        try:
            server.unlink()
        except Exception:
            pass
    _orig_exit(code)


def _about_to_die(signum) -> None:
    """Remove our socket if raising ``signum`` on ourselves is going to end the process."""
    try:
        server = _server
        if server is None or signum not in _DEADLY or signal.getsignal(signum) != signal.SIG_DFL:
            return
        if hasattr(signal, "pthread_sigmask") and signum in signal.pthread_sigmask(signal.SIG_BLOCK, ()):
            return  # blocked: it will not end us now
        server.unlink()
    except Exception:
        pass


def _kill(pid, signum):
    if pid == os.getpid():
        _about_to_die(signum)
    return _orig_kill(pid, signum)


def _raise_signal(signum):
    _about_to_die(signum)
    return _orig_raise_signal(signum)


def _before_fork() -> None:
    # Stop our thread so that the fork does not copy a thread in the middle of its work
    # (and CPython 3.12+ does not warn that a multi-threaded process forked).
    global _paused_for_fork
    try:
        server = _server
        if server is not None and server.thread is not None:
            server.stop_thread(timeout=0.5)
            _paused_for_fork = True
    except Exception:
        pass


def _after_fork_parent() -> None:
    global _paused_for_fork
    try:
        server = _server
        if _paused_for_fork and server is not None:
            server.start_thread()
    except Exception:
        pass
    _paused_for_fork = False


def _after_fork_child() -> None:
    """The child gets its own probe at its own pid; the parent's socket is left alone."""
    global _server, _lock, _paused_for_fork
    _lock = threading.Lock()
    _paused_for_fork = False
    server, _server = _server, None
    if server is None:
        return
    try:
        server.close(unlink=False)
    except Exception:
        pass
    try:
        with _lock:
            _start_locked(_options or Options.from_env())
    except Exception:
        pass
