"""Group keys and creation-site keys, interned: one object per distinct stack.

Grouping then hashes by identity, and a stack is turned into frame maps once and shared by every
task (and reply) that shows it.  Stacks are looked up by the ids of their codes, not the codes:
hashing a code object hashes its bytecode, names and constants, and a pass describes every task
whose waiter changed.
"""
from __future__ import annotations

from typing import Any

from tasktop.wire.groups import group_id
from tasktop.wire.stacks import SYNTHETIC_FILE, UNWALKED_FUNC

from . import hooks
from .config import Options
from .frames import creation_site, func_name, resolve, to_wire
from .tasks import LOCALS_STATES, classify_codes, innermost_first
from .waiters import primitive_at

MAX_KEYS = 50000  # interned keys (and sites) kept before the table is started afresh

def _unwalked() -> None:
    pass


#: The code of the one frame of the pseudo-groups (``Keys.unwalked``): tasks whose await chain
#: a pass had no time to walk (see ``task_pass``), counted by state until a pass walks them.
_code = _unwalked.__code__.replace(co_name=UNWALKED_FUNC, co_filename=SYNTHETIC_FILE)
UNWALKED_CODE = _code.replace(co_qualname=UNWALKED_FUNC) if hasattr(_code, "co_qualname") else _code


class _WireStack:
    """A stack kept as ``(code, line)`` pairs, turned into frame maps once and then shared by
    every task (and reply) that shows it."""

    __slots__ = ("stack", "_wire", "_wire_source")

    def wire(self) -> list:
        if self._wire is None:
            self._wire = to_wire(self.stack)
        return self._wire

    def wire_source(self) -> list:
        if self._wire_source is None:
            self._wire_source = to_wire(self.stack, True)
        return self._wire_source


class GroupKey(_WireStack):
    """One (kind, state, stack), interned so that grouping hashes by identity."""

    __slots__ = ("kind", "state", "id", "__weakref__")

    def __init__(self, kind: str, state: str, stack: tuple) -> None:
        self.kind, self.state, self.stack = kind, state, stack
        self.id = group_id(kind, state, [(code.co_filename, func_name(code), line) for code, line in stack])
        self._wire = self._wire_source = None


class SiteKey(_WireStack):
    """A creation stack, interned like ``GroupKey``."""

    __slots__ = ("raw", "source")

    def __init__(self, raw: tuple, depth: int) -> None:
        self.source = raw  # the hook's interned tuple (kept: its id is the key)
        self.raw = resolve(raw)  # (code, line) pairs
        self.stack = creation_site(self.raw, depth)
        self._wire = self._wire_source = None


class Chain:
    """What the codes and lines of an await chain tell, worked out once for every task parked
    the same way: the state they name (None: no primitive), the chain innermost first, and
    its group key for each state a task with it was found in, and where in the chain (outermost
    first) the frame is whose ``self`` a task in the state named waits on (None: no such).
    ``parked``: the state of a task with it that waits on a plain future, when the chain alone
    tells it (the state named, but for those whose awaited tasks sit in a frame's locals)."""

    __slots__ = ("named", "flat", "keys", "primitive", "parked")

    def __init__(self, flat: list) -> None:
        self.flat = flat  # kept: the ids of its codes are the key it is found by
        self.named = named = classify_codes(flat[0::2])
        self.keys: dict = {}
        self.primitive = primitive_at(flat[-2::-2], named)
        self.parked = None if named in LOCALS_STATES else named


class Keys:
    """The interned group and site keys of the probe.  Used only from the probe thread."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._keys: dict = {}
        self._chains: dict = {}  # the ids and lines of a chain, outermost first -> Chain
        self._sites: dict = {}  # id of an interned creation stack -> SiteKey
        self._sites_generation = hooks.interned_generation

    def group(self, kind: str, state: str, stack: tuple) -> GroupKey:
        """The one key of a (kind, state, stack of ``(code, line)`` pairs)."""
        flat = [item for pair in stack for item in pair]
        return self.group_flat(kind, state, flat)

    def group_flat(self, kind: str, state: str, flat: list) -> GroupKey:
        """The one key of a (kind, state, ``[code, line, ...]``), looked up by the ids of the
        codes; the key holds the codes, so their ids are not reused while it is kept."""
        ids = list(flat)
        ids[0::2] = map(id, flat[0::2])
        lookup = (kind, state, *ids)
        found = self._keys.get(lookup)
        if found is None:
            if len(self._keys) > MAX_KEYS:
                self._keys.clear()
                self._chains.clear()  # its keys must not live on beside new ones of the same stack
            found = self._keys[lookup] = GroupKey(kind, state, tuple(zip(flat[0::2], flat[1::2])))
        return found

    def chain(self, outer_first: list) -> Chain:
        """The ``Chain`` of an await chain given as ``[code, line, ...]`` outermost first (as
        walked), looked up by the ids of its codes and its line numbers (see ``known``): a task's
        state and group key then cost one lookup, not a classification of its codes and a key
        lookup of their own.  Each entry holds the codes whose ids are its key, so no other
        object can take one of them."""
        ids = list(outer_first)
        ids[0::2] = map(id, outer_first[0::2])
        lookup = tuple(ids)
        found = self._chains.get(lookup)
        if found is None:
            if len(self._chains) > MAX_KEYS:
                self._chains.clear()
            found = self._chains[lookup] = Chain(innermost_first(outer_first))
        return found

    def known(self, ids: list) -> Chain | None:
        """The ``Chain`` of ``[id(code), line, ...]`` outermost first, if one was made (by
        ``chain``); what a pass's first walk of a parked task looks up (see
        ``positions.suspended_run``)."""
        return self._chains.get(tuple(ids))

    def task_key(self, chain: Chain, state: str) -> GroupKey:
        """The group key of a task with ``chain`` in ``state``."""
        key = chain.keys.get(state)
        if key is None:
            key = chain.keys[state] = self.group_flat("task", state, chain.flat)
        return key

    def unwalked(self, state: str) -> GroupKey:
        """The key of the pseudo-group of tasks in ``state`` whose chain was not walked yet."""
        return self.group_flat("task", state, [UNWALKED_CODE, 0])

    def site(self, info: hooks.TaskInfo) -> Any:
        """The record's creation stack as a ``SiteKey``, made once per interned stack (looked
        up by identity: the hook shares one tuple per distinct stack)."""
        site = info.site
        if site is None or type(site) is SiteKey:
            return site
        found = info.site = self.site_key(site)
        return found

    def site_key(self, site: tuple) -> SiteKey:
        """The ``SiteKey`` of one of the hook's interned creation stacks."""
        if self._sites_generation != hooks.interned_generation:
            self._sites.clear()  # the hook let go of its tuples: their ids may be reused
            self._sites_generation = hooks.interned_generation
        found = self._sites.get(id(site))
        if found is None or found.source is not site:
            if len(self._sites) > MAX_KEYS:
                self._sites.clear()
            found = self._sites[id(site)] = SiteKey(site, self.options.creation_depth)
        return found
