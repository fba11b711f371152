"""What the probe and its clients share: the wire protocol (``protocol``), where a probe's
socket lives (``paths``) and the names of the states both sides speak of.  Standard library and
msgpack only: the probe imports it inside the target process.

``from tasktop import wire`` gives the protocol's names directly (``wire.encode``,
``wire.HEADER``...).
"""
from .protocol import *  # noqa: F401,F403 - the protocol is this package's face
from .protocol import _recv_exact  # noqa: F401 - read by tests and benchmarks
