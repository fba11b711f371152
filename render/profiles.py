"""``tasktop dump --format folded|pprof``: a snapshot as a profile for the usual viewers.

A snapshot of tasks and threads grouped by stack is already a profile: Go's goroutine profile
is the same thing for goroutines.  Two formats reach the tools people have:

``folded``
    Brendan Gregg's collapsed stacks, read by ``flamegraph.pl``, speedscope, inferno and
    Grafana: one line per group, ``frame;frame;…;frame COUNT``, outermost frame first.  The
    first frame is a root naming the kind and state (``task [Queue.get]``) so a flame graph
    splits by what is waited on before it splits by code.  Frames read as py-spy's
    ``func (file:line)``, with the file as :func:`frame_file` spells it.
``pprof``
    A gzipped ``profile.proto`` (github.com/google/pprof), for ``go tool pprof`` and every
    viewer of that format.  One sample per group with two values, ``tasks/count`` (tasks and
    threads) and ``blocked/milliseconds`` (the sum over the members of how long each has been
    blocked), and the labels ``kind``, ``state`` and ``group``.

Both are built from the group list, completed from the members when the snapshot has them
(``full``): the probe's summary carries only the largest groups, and only the members give
the exact blocked sums.

The protobuf is written with ``pure-protobuf``: a maintained, pure-Python protobuf library
whose messages are annotated dataclasses, so the schema below reads like ``profile.proto``
itself, with no generated code and no protoc, and without pinning Google's ``protobuf``
runtime, whose versions often clash in the application environments tasktop is installed into.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Annotated, Iterable, List, Optional

from pure_protobuf.annotations import Field, uint
from pure_protobuf.message import BaseMessage

from tasktop.wire.groups import groups_of, missing_groups  # noqa: F401 - the CLI reads them here

from . import stacks


# -- the groups of a snapshot --------------------------------------------------------------------
# -- folded ---------------------------------------------------------------------------------------
def frame_file(path: str) -> str:
    """The file of a frame as exports spell it: standard-library and installed-package files by
    their module path (``asyncio/queues.py``), the application's own files in full.  Unlike the
    dump text, this does not depend on the directory tasktop runs in."""
    return stacks.display_path(path or "?")


def folded_frame(frame: dict) -> str:
    """``func (file:line)``, with the folded format's separators (``;`` and newlines) replaced."""
    text = f"{frame.get('func') or '?'} ({frame_file(frame.get('file', '?'))}:{frame.get('line', 0)})"
    return _clean(text)


def _clean(text: str) -> str:
    return text.replace(";", ",").replace("\n", " ").replace("\r", " ")


def root_frame(group: dict) -> str:
    """The synthetic outermost frame of a group: ``task [Queue.get]``."""
    return _clean(f"{group.get('kind', '?')} [{group.get('state', '?')}]")


def folded(data: dict) -> str:
    """Collapsed stacks, one line per group, largest first."""
    lines = []
    for group in groups_of(data):
        frames = [root_frame(group)] + [folded_frame(f) for f in reversed(group.get("stack") or [])]
        lines.append(f"{';'.join(frames)} {group.get('count', 0)}")
    return "".join(line + "\n" for line in lines)


# -- profile.proto ---------------------------------------------------------------------------------
# The messages of github.com/google/pprof/proto/profile.proto that tasktop writes (field numbers
# and types as there; fields it never sets are left out, which readers take as their defaults).
@dataclass
class ValueType(BaseMessage):
    type: Annotated[int, Field(1)] = 0  # index into string_table
    unit: Annotated[int, Field(2)] = 0


@dataclass
class Label(BaseMessage):
    key: Annotated[int, Field(1)] = 0
    str: Annotated[int, Field(2)] = 0
    num: Annotated[int, Field(3)] = 0
    num_unit: Annotated[int, Field(4)] = 0


@dataclass
class Sample(BaseMessage):
    location_id: Annotated[List[uint], Field(1, packed=True)] = field(default_factory=list)  # leaf first
    value: Annotated[List[int], Field(2, packed=True)] = field(default_factory=list)
    label: Annotated[List[Label], Field(3)] = field(default_factory=list)


@dataclass
class Mapping(BaseMessage):
    id: Annotated[uint, Field(1)] = 0
    memory_start: Annotated[uint, Field(2)] = 0
    memory_limit: Annotated[uint, Field(3)] = 0
    file_offset: Annotated[uint, Field(4)] = 0
    filename: Annotated[int, Field(5)] = 0
    build_id: Annotated[int, Field(6)] = 0
    has_functions: Annotated[bool, Field(7)] = False
    has_filenames: Annotated[bool, Field(8)] = False
    has_line_numbers: Annotated[bool, Field(9)] = False
    has_inline_frames: Annotated[bool, Field(10)] = False


@dataclass
class Line(BaseMessage):
    function_id: Annotated[uint, Field(1)] = 0
    line: Annotated[int, Field(2)] = 0


@dataclass
class Location(BaseMessage):
    id: Annotated[uint, Field(1)] = 0
    mapping_id: Annotated[uint, Field(2)] = 0
    address: Annotated[uint, Field(3)] = 0
    line: Annotated[List[Line], Field(4)] = field(default_factory=list)


@dataclass
class Function(BaseMessage):
    id: Annotated[uint, Field(1)] = 0
    name: Annotated[int, Field(2)] = 0
    system_name: Annotated[int, Field(3)] = 0
    filename: Annotated[int, Field(4)] = 0
    start_line: Annotated[int, Field(5)] = 0


@dataclass
class Profile(BaseMessage):
    sample_type: Annotated[List[ValueType], Field(1)] = field(default_factory=list)
    sample: Annotated[List[Sample], Field(2)] = field(default_factory=list)
    mapping: Annotated[List[Mapping], Field(3)] = field(default_factory=list)
    location: Annotated[List[Location], Field(4)] = field(default_factory=list)
    function: Annotated[List[Function], Field(5)] = field(default_factory=list)
    string_table: Annotated[List[str], Field(6)] = field(default_factory=list)
    time_nanos: Annotated[int, Field(9)] = 0
    duration_nanos: Annotated[int, Field(10)] = 0
    period_type: Annotated[Optional[ValueType], Field(11)] = None
    period: Annotated[int, Field(12)] = 0
    comment: Annotated[List[int], Field(13, packed=True)] = field(default_factory=list)
    default_sample_type: Annotated[int, Field(14)] = 0


class _Strings:
    """profile.proto's string table: every string once, ``""`` at index 0."""

    def __init__(self) -> None:
        self.table: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.table)
            self.table.append(text)
        return found


def profile(data: dict) -> Profile:
    """The ``profile.proto`` message for a snapshot (see the module docstring for its layout)."""
    s = _Strings()
    prof = Profile(
        sample_type=[ValueType(s("tasks"), s("count")), ValueType(s("blocked"), s("milliseconds"))],
        period_type=ValueType(s("tasks"), s("count")),
        period=1,
        time_nanos=int((data.get("time") or 0) * 1e9),
    )
    # One mapping that says "symbols are all here", so pprof does not try to symbolize.
    proc = data.get("process") or {}
    prof.mapping.append(Mapping(id=1, filename=s(proc.get("executable") or "python"), has_functions=True,
                                has_filenames=True, has_line_numbers=True))
    functions: dict[tuple, int] = {}
    locations: dict[tuple, int] = {}

    def location_id(frame: dict) -> int:
        func, path, line = frame.get("func") or "?", frame.get("file") or "?", int(frame.get("line") or 0)
        key = (func, path, line)
        loc = locations.get(key)
        if loc is None:
            fid = functions.get((func, path))
            if fid is None:
                fid = functions[(func, path)] = len(functions) + 1
                prof.function.append(Function(id=fid, name=s(func), system_name=s(func), filename=s(path)))
            loc = locations[key] = len(locations) + 1
            prof.location.append(Location(id=loc, mapping_id=1, line=[Line(function_id=fid, line=line)]))
        return loc

    for group in groups_of(data):
        count = int(group.get("count") or 0)
        blocked = group.get("blocked_total_s")
        if blocked is None:  # no members: every one has been blocked at least the group's minimum
            blocked = (group.get("blocked_min_s") or 0.0) * count
        prof.sample.append(Sample(
            location_id=[location_id(f) for f in group.get("stack") or ()],
            value=[count, int(round(blocked * 1000))],
            label=[Label(key=s("kind"), str=s(group.get("kind") or "?")),
                   Label(key=s("state"), str=s(group.get("state") or "?")),
                   Label(key=s("group"), str=s(group.get("id") or "?"))],
        ))
    argv = " ".join(proc.get("argv") or []) or proc.get("executable") or "?"
    prof.comment.append(s(f"tasktop dump of pid {proc.get('pid', '?')}: {argv}"))
    prof.default_sample_type = s("tasks")
    prof.string_table = s.table
    return prof


def pprof(data: dict) -> bytes:
    """The gzipped ``profile.proto`` of a snapshot, as pprof reads it from a file."""
    return gzip.compress(bytes(profile(data)), mtime=0)


def read_pprof(blob: bytes) -> Profile:
    """A profile written by :func:`pprof` (or any gzipped or plain ``profile.proto``) read back."""
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    return Profile.loads(blob)


def sample_stacks(prof: Profile) -> Iterable[tuple[list[str], list[int], dict]]:
    """Each sample as (frames ``func (file:line)`` innermost first, values, labels): the view
    of a profile that tests and humans check."""
    table = prof.string_table
    functions = {f.id: f for f in prof.function}
    locations = {loc.id: loc for loc in prof.location}
    for sample in prof.sample:
        frames = []
        for lid in sample.location_id:
            for line in locations[lid].line:
                fn = functions[line.function_id]
                frames.append(f"{table[fn.name]} ({table[fn.filename]}:{line.line})")
        labels = {table[label.key]: table[label.str] for label in sample.label}
        yield frames, list(sample.value), labels
