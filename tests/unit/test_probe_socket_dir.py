"""The socket directory: made only the owner's, and a directory the user named that others can
reach refused, never changed (``TASKTOP_DIR=/tmp`` once closed the machine's /tmp to every other
user, from inside the process the probe runs in)."""
from __future__ import annotations

import os
import stat

import pytest

import tasktop.probe
from tasktop.wire import paths


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_named_directory_others_can_reach_is_refused_and_left_as_it_was(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp is
    with pytest.raises(PermissionError, match="open to other users"):
        paths.ensure_socket_dir(str(shared))
    assert _mode(shared) == 0o1777


def test_the_probe_does_not_start_in_such_a_directory_and_says_why(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    assert tasktop.probe.start(directory=str(shared)) is False
    assert not tasktop.probe.is_running()
    assert "open to other users (mode 755)" in tasktop.probe.last_error()
    assert _mode(shared) == 0o755 and not os.listdir(shared)


def test_a_named_directory_is_made_the_owners_alone(tmp_path):
    made = tmp_path / "new" / "sockets"
    assert paths.ensure_socket_dir(str(made)) == str(made)
    assert _mode(made) == 0o700


def test_tasktops_own_directory_is_closed_if_it_was_opened(tmp_path, monkeypatch):
    monkeypatch.delenv("TASKTOP_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    own = tmp_path / "tasktop"
    own.mkdir()
    os.chmod(own, 0o755)
    assert paths.ensure_socket_dir() == str(own) == paths.default_socket_dir()
    assert _mode(own) == 0o700
