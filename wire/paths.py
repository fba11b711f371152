"""Where probe sockets live, and how clients find them.

One directory per user, mode 0700, so other users cannot even reach the sockets; one socket
per process, named by pid, mode 0600.  The probe additionally checks each peer's uid with
SO_PEERCRED, so a socket that somebody made reachable is still refused to other users.
"""
from __future__ import annotations

import os
import stat
import tempfile


def socket_dir(directory: str | None = None) -> str:
    """The per-user socket directory (not created): ``directory``, else ``TASKTOP_DIR``, else
    the one tasktop names itself (``default_socket_dir``)."""
    if directory:
        return directory
    env = os.environ.get("TASKTOP_DIR")
    if env:
        return env
    return default_socket_dir()


def default_socket_dir() -> str:
    """The socket directory tasktop names itself: ``$XDG_RUNTIME_DIR/tasktop``, else
    ``<tmp>/tasktop-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "tasktop")
    return os.path.join(tempfile.gettempdir(), f"tasktop-{os.getuid()}")


def ensure_socket_dir(directory: str | None = None) -> str:
    """Create the socket directory if needed, and refuse one that others could tamper with.

    A directory of tasktop's own name that others can reach is closed (mode 700).  One the
    user named (``directory``, ``TASKTOP_DIR``) is refused instead, never changed: closing
    ``TASKTOP_DIR=/tmp`` would lock every other user of the machine out of ``/tmp``."""
    path = socket_dir(directory)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass
    st = os.lstat(path)
    reason = _refusal(path, st)
    if reason is not None:
        raise PermissionError(reason)
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def refusal(directory: str | None = None) -> str | None:
    """Why a probe would refuse the socket directory as it is now; None if it would not (or
    the directory is not there yet: it would make it).  Nothing is made or changed."""
    path = socket_dir(directory)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return _refusal(path, st)


def _refusal(path: str, st: os.stat_result) -> str | None:
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != os.getuid():
        return f"{path} belongs to uid {st.st_uid}"
    if st.st_mode & 0o077 and os.path.abspath(path) != os.path.abspath(default_socket_dir()):
        return (f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o}): the socket "
                f"directory must be one only you can reach (mode 700), such as a new one")
    return None


def socket_path(pid: int, directory: str | None = None) -> str:
    return os.path.join(socket_dir(directory), f"{pid}.sock")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_sockets(directory: str | None = None) -> list[tuple[int, str]]:
    """(pid, path) of every probe socket in the directory, sorted by pid."""
    path = socket_dir(directory)
    try:
        names = os.listdir(path)
    except OSError:
        return []
    found = []
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext == "sock" and stem.isdigit():
            found.append((int(stem), os.path.join(path, name)))
    return sorted(found)
