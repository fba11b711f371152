"""A replay's move holds the garbage collector off while it reads and redraws, and gives it
back as it found it: on after the move (an exception included), off when it was off."""
from __future__ import annotations

import gc

import pytest

from tasktop.tui.replay import young_collections_deferred


def test_the_collector_is_given_back_as_it_was():
    assert gc.isenabled()
    with young_collections_deferred():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with young_collections_deferred():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with young_collections_deferred():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the host's choice stands
    finally:
        gc.enable()
