"""tasktop's own reader of a CPython 3.14/3.15 process's asyncio tasks, from its memory alone.

The interpreter's reader (``_remote_debugging.RemoteUnwinder``, see ``remote_tasks``) misses two
cases this one covers: on 3.14 it walks only the main thread's task list, and it refuses a
thread with more than 2**16 tasks.  This reader does what it does, by the same published
contract, with no code run in the target: the interpreter puts ``_Py_DebugOffsets`` at the start
of ``_PyRuntime`` (its ``.PyRuntime`` ELF section) and the ``_asyncio`` module its
``_AsyncioDebug`` offsets (the ``.AsyncioDebug`` section), for out-of-process tools exactly like
this.  From them: each interpreter's thread states, each thread's linked list of tasks
(``asyncio_tasks_head``, plus the interpreter's list of tasks whose thread has ended), each
task's name, awaiters and coroutine, and the coroutine's chain of awaited coroutines down to
their code objects (qualified name, file, line from the location table).

Memory is read with ``process_vm_readv`` (as root or the same user, ptrace allowed) in 64 KiB
blocks kept for one pass: tasks, coroutines and code objects sit close together on the heap, so
a few thousand reads cover 100,000 tasks.  The process keeps running meanwhile; a list walk is
bounded and stops on a pointer that leads nowhere, as the interpreter's reader does.

The ``_Py_DebugOffsets`` struct is fixed within a minor version (its reader checks the version
too); ``_LAYOUTS`` names where each field used here sits in the 3.14 and 3.15 structs, and the
values read are checked before use.  Free-threaded builds are not read (``ReadError``).
"""
from __future__ import annotations

import ctypes
import os
import struct
from typing import Any

#: Index (in 8-byte words from the start of ``_Py_DebugOffsets``) of each field read here.
_LAYOUTS = {
    (3, 14): dict(interpreters_head=5, interp_size=6, interp_next=8, threads_head=9, tstate_size=22,
                  tstate_next=24, native_thread_id=28, frame_size=31, executable=33, instr_ptr=34,
                  stackpointer=37, code_size=39, co_filename=40, co_qualname=42, co_linetable=43,
                  co_firstlineno=44, co_code_adaptive=48, ob_type=51, tp_name=53, tp_flags=55,
                  set_used=63, set_table=64, set_mask=65, lv_tag=72, ob_digit=73, bytes_size=75,
                  bytes_sval=76, str_state=78, str_length=79, ascii_size=80, gen_size=83,
                  gi_iframe=85, gi_frame_state=86, llist_next=87, llist_prev=88),
    (3, 15): dict(interpreters_head=5, interp_size=6, interp_next=8, threads_head=9, tstate_size=22,
                  tstate_next=24, native_thread_id=31, frame_size=39, executable=41, instr_ptr=42,
                  stackpointer=45, code_size=47, co_filename=48, co_qualname=50, co_linetable=51,
                  co_firstlineno=52, co_code_adaptive=56, ob_type=59, tp_name=61, tp_flags=63,
                  set_used=75, set_table=76, set_mask=77, lv_tag=84, ob_digit=85, bytes_size=87,
                  bytes_sval=88, str_state=90, str_length=91, ascii_size=92, gen_size=99,
                  gi_iframe=101, gi_frame_state=102, llist_next=103, llist_prev=104),
}
#: ``_AsyncioDebug`` (13 words, the same in 3.14 and 3.15): task object, interpreter, thread.
_ASYNCIO_FIELDS = ("task_size", "task_name", "task_awaited_by", "task_is_task", "task_awaited_by_is_set",
                   "task_coro", "task_node", "interp_asyncio_size", "interp_tasks_head",
                   "tstate_asyncio_size", "running_loop", "running_task", "tstate_tasks_head")

#: ``PyFrameState`` values (pycore_genobject.h), renumbered in 3.15: (awaiting another
#: coroutine or iterator, {completed, cleared}: no frame to read).
_FRAME_STATES = {(3, 14): (-1, {1, 4}), (3, 15): (2, {5})}
_LONG_SUBCLASS, _UNICODE_SUBCLASS = 1 << 24, 1 << 28  # tp_flags
_BLOCK = 1 << 16
_U64, _I8, _I32 = struct.Struct("<Q").unpack_from, struct.Struct("<b").unpack_from, struct.Struct("<i").unpack_from
#: Blocks kept at most (32 MiB): the task lists run through the heap in allocation order, so
#: recent blocks are the ones read again; code objects and types are kept apart (``TaskReader``).
_MAX_BLOCKS = 512
#: More tasks than this on one list is taken for a list changed under the walk.
MAX_TASKS_PER_LIST = 10_000_000


class ReadError(Exception):
    """The process's memory could not be read as a 3.14/3.15 interpreter's; one line for the user."""


class ProcessGone(ReadError):
    """The process exited before or during the read."""


class NotAllowed(ReadError):
    """Reading the process's memory is not allowed (another user's, or ptrace restricted)."""


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


try:
    _readv = ctypes.CDLL(None, use_errno=True).process_vm_readv
except (OSError, AttributeError):  # not Linux
    _readv = None
else:
    _readv.argtypes = [ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_ulong, ctypes.POINTER(_Iovec),
                   ctypes.c_ulong, ctypes.c_ulong]
    _readv.restype = ctypes.c_ssize_t


class ProcessMemory:
    """Reads of another process's memory, in 64 KiB blocks kept until ``clear``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.blocks: dict[int, bytes] = {}
        self.reads = 0

    def raw(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``address`` (fewer where the mapping ends)."""
        if not 0 < address < 1 << 64 or address + size >= 1 << 64:
            raise ReadError(f"cannot read address {address:#x} of process {self.pid}")
        buf = ctypes.create_string_buffer(size)
        local, remote = _Iovec(ctypes.addressof(buf), size), _Iovec(address, size)
        self.reads += 1
        got = _readv(self.pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got < 0:
            err = ctypes.get_errno()
            if err == 3:  # ESRCH
                raise ProcessGone(f"process {self.pid} exited while its tasks were being read")
            if err in (1, 13):  # EPERM, EACCES
                raise NotAllowed(f"not allowed to read the memory of process {self.pid} "
                                f"(another user's process, or ptrace not allowed)")
            raise ReadError(f"cannot read address {address:#x} of process {self.pid}: {os.strerror(err)}")
        return buf.raw[:got]

    def block(self, index: int) -> bytes:
        found = self.blocks.get(index)
        if found is None:
            try:
                found = self.raw(index * _BLOCK, _BLOCK)
            except ProcessGone:
                raise
            except ReadError:
                found = b""
            if len(found) < _BLOCK:  # the block starts or ends outside a mapping: page by page
                found = self._pages(index * _BLOCK, found)
            if len(self.blocks) >= _MAX_BLOCKS:
                self.blocks.clear()
            self.blocks[index] = found
        return found

    def _pages(self, start: int, head: bytes) -> bytes:
        """The block from ``start``, pages that cannot be read left as zeros."""
        pages = [head[i:i + 4096] for i in range(0, len(head) // 4096 * 4096, 4096)]
        for offset in range(len(pages) * 4096, _BLOCK, 4096):
            try:
                page = self.raw(start + offset, 4096)
            except ProcessGone:
                raise
            except ReadError:
                page = b""
            pages.append(page.ljust(4096, b"\0"))
        return b"".join(pages)

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address``; unreadable parts come back as zeros."""
        first, last = address // _BLOCK, (address + size - 1) // _BLOCK
        offset = address - first * _BLOCK
        if first == last:
            return self.block(first)[offset:offset + size]
        data = b"".join(self.block(i) for i in range(first, last + 1))
        return data[offset:offset + size]

    def span(self, address: int, size: int) -> tuple[bytes, int]:
        """``(buffer, offset)`` where the ``size`` bytes at ``address`` are: no copy when they
        lie in one block (the hot path: one object)."""
        index, offset = divmod(address, _BLOCK)
        if offset + size <= _BLOCK:
            block = self.blocks.get(index)
            return (self.block(index) if block is None else block), offset
        return self.read(address, size), 0

    def u64(self, address: int) -> int:
        index, offset = divmod(address, _BLOCK)
        if offset <= _BLOCK - 8:
            block = self.blocks.get(index)
            return _U64(self.block(index) if block is None else block, offset)[0]
        return _U64(self.read(address, 8))[0]

    def forget(self, address: int) -> None:
        """Read the block of ``address`` afresh next time (and the next block: a field there)."""
        self.blocks.pop(address // _BLOCK, None)
        self.blocks.pop(address // _BLOCK + 1, None)

    def clear(self) -> None:
        self.blocks.clear()


def elf_sections(path: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """``(e_type, vaddr of the load segment at file offset 0, {section: (vaddr, size)})`` of a
    64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise ReadError(f"{path} is not a 64-bit little-endian ELF file")
        e_type, = struct.unpack_from("<H", head, 16)
        e_phoff, e_shoff = struct.unpack_from("<QQ", head, 32)
        e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHHHH", head, 54)
        f.seek(e_phoff)
        phdrs = f.read(e_phentsize * e_phnum)
        base = 0
        for i in range(e_phnum):
            p_type, _flags, p_offset, p_vaddr = struct.unpack_from("<IIQQ", phdrs, i * e_phentsize)
            if p_type == 1 and p_offset == 0:  # PT_LOAD
                base = p_vaddr
                break
        f.seek(e_shoff)
        shdrs = f.read(e_shentsize * e_shnum)
        entries = [struct.unpack_from("<IIQQQQ", shdrs, i * e_shentsize) for i in range(e_shnum)]
        names_at, names_size = entries[e_shstrndx][4], entries[e_shstrndx][5]
        f.seek(names_at)
        names = f.read(names_size)
    sections = {}
    for name_off, _type, _flags, addr, _offset, size in entries:
        name = names[name_off:names.index(b"\0", name_off)].decode("ascii", "replace")
        sections[name] = (addr, size)
    return e_type, base, sections


def _section_addresses(pid: int) -> dict[str, int]:
    """Where ``.PyRuntime`` and ``.AsyncioDebug`` are in ``pid``, from the ELF files it maps
    whose names say Python (the executable, libpython, the ``_asyncio`` extension)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ProcessGone(f"process {pid} has exited") from None
    except OSError as exc:
        raise ReadError(f"cannot read the memory map of process {pid}: {exc.strerror}") from None
    try:
        exe = os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    starts: dict[str, int] = {}
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or int(parts[2], 16) != 0:
            continue
        path = parts[5].strip()
        name = os.path.basename(path)
        wanted = path == exe or name.startswith(("python", "libpython", "_asyncio"))
        if path.startswith("/") and wanted and path not in starts:
            starts[path] = int(parts[0].split("-")[0], 16)
    found: dict[str, int] = {}
    for path, start in starts.items():
        try:
            e_type, base, sections = elf_sections(f"/proc/{pid}/root{path}" if os.path.exists(
                f"/proc/{pid}/root{path}") else path)
        except (OSError, ReadError, struct.error, ValueError):
            continue
        bias = start - base if e_type == 3 else 0  # ET_DYN is loaded anywhere, ET_EXEC where linked
        for section in (".PyRuntime", ".AsyncioDebug"):
            if section in sections and section not in found:
                found[section] = sections[section][0] + bias
    return found


class _Offsets:
    """The fields of ``_Py_DebugOffsets`` and ``_AsyncioDebug`` read here, as attributes."""

    def __init__(self, words: tuple, asyncio_words: tuple | None, version: tuple[int, int]) -> None:
        for name, index in _LAYOUTS[version].items():
            setattr(self, name, words[index])
        for name, value in zip(_ASYNCIO_FIELDS, asyncio_words or (0,) * 13):
            setattr(self, name, value)
        checks = [(self.gi_frame_state, self.gen_size), (self.gi_iframe, self.gen_size),
                  (self.co_code_adaptive, self.code_size), (self.co_qualname, self.code_size),
                  (self.native_thread_id, self.tstate_size), (self.stackpointer, self.frame_size)]
        if asyncio_words:
            checks += [(self.tstate_tasks_head, self.tstate_asyncio_size), (self.task_node, self.task_size),
                       (self.task_coro, self.task_size), (self.interp_tasks_head, self.interp_asyncio_size)]
        if self.ob_type != 8 or any(not 0 <= field < size <= 1 << 20 for field, size in checks):
            raise ReadError("the interpreter's debug offsets are not as expected for its version")


class TaskReader:
    """One read of every asyncio task of a 3.14/3.15 process (``read``), in the raw shape of
    ``remote_tasks.READER``'s output, so the same code groups either."""

    def __init__(self, pid: int) -> None:
        if _readv is None:
            raise ReadError("reading another process's memory needs Linux (process_vm_readv)")
        self.pid = pid
        self.mem = ProcessMemory(pid)
        where = _section_addresses(pid)
        if ".PyRuntime" not in where:
            raise ReadError(f"process {pid} is not a CPython 3.14+ process (no .PyRuntime section found)")
        self.runtime = where[".PyRuntime"]
        head = self.mem.raw(self.runtime, 8 * 128)
        if head[:8] != b"xdebugpy":
            raise ReadError(f"process {pid} has no interpreter debug offsets where expected")
        words = struct.unpack_from("<127Q", head, 8)
        words = (0,) + words  # index 0 is the cookie
        hexversion, free_threaded = words[1], words[2]
        self.version = (hexversion >> 24, (hexversion >> 16) & 0xFF)
        if self.version not in _LAYOUTS:
            raise ReadError(f"process {pid} runs Python {self.version[0]}.{self.version[1]}, "
                            f"whose task lists tasktop cannot read itself")
        if free_threaded:
            raise ReadError(f"process {pid} runs a free-threaded build, whose task lists tasktop "
                            f"cannot read itself")
        self.asyncio = where.get(".AsyncioDebug")
        asyncio_words = struct.unpack("<13Q", self.mem.raw(self.asyncio, 13 * 8)) if self.asyncio else None
        self.off = _Offsets(words, asyncio_words, self.version)
        self.yield_from, self.finished = _FRAME_STATES[self.version]
        self.astray = 0  # lists of the last read whose walk forward went astray
        self.types: dict[int, tuple[str, int]] = {}
        self.codes: dict[int, Any] = {}
        self.lines: dict[tuple[int, int], int] = {}

    # -- objects ---------------------------------------------------------------------------
    def type_of(self, obj: int) -> tuple[int, str, int]:
        """``(type address, tp_name, tp_flags)`` of the object at ``obj``."""
        tp = self.mem.u64(obj + self.off.ob_type)
        found = self.types.get(tp)
        if found is None:
            name_at = self.mem.u64(tp + self.off.tp_name)
            raw = self.mem.read(name_at, 64) if name_at else b""
            flags = self.mem.u64(tp + self.off.tp_flags)
            found = self.types[tp] = (raw.split(b"\0", 1)[0].decode("utf-8", "replace"), flags)
        return (tp,) + found

    def string(self, obj: int) -> str:
        """A ``str`` object's text (compact strings, as every code name and task name is)."""
        state, = struct.unpack("<I", self.mem.read(obj + self.off.str_state, 4))
        length = self.mem.u64(obj + self.off.str_length)
        if length > 1 << 20:
            return "?"
        kind, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
        if not compact:
            return "?"
        if ascii_:
            return self.mem.read(obj + self.off.ascii_size, length).decode("ascii", "replace")
        width = {1: 1, 2: 2, 4: 4}.get(kind)
        if width is None:
            return "?"
        data = self.mem.read(obj + self.off.ascii_size + 16, length * width)  # after utf8_length, utf8
        return data.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[width], "replace")

    def integer(self, obj: int) -> int:
        buf, at = self.mem.span(obj, self.off.ob_digit + 8)
        tag, = _U64(buf, at + self.off.lv_tag)
        digits = tag >> 3
        if digits == 1:  # the common case: below 2**30
            value = _I32(buf, at + self.off.ob_digit)[0] & 0x3FFFFFFF
        else:
            words = struct.unpack(f"<{min(digits, 8)}I", self.mem.read(obj + self.off.ob_digit, 4 * min(digits, 8)))
            value = sum(d << (30 * i) for i, d in enumerate(words))
        return -value if tag & 3 == 2 else value

    def task_name(self, obj: int) -> str:
        """A task's name: a ``str``, or the number of ``Task-N`` kept as an int until asked."""
        if not obj:
            return "?"
        _tp, _name, flags = self.type_of(obj)
        if flags & _UNICODE_SUBCLASS:
            return self.string(obj)
        if flags & _LONG_SUBCLASS:
            return f"Task-{self.integer(obj)}"
        return "?"

    def code(self, addr: int) -> Any:
        """``(qualname, filename, first line, location table, address of the bytecode)``."""
        found = self.codes.get(addr)
        if found is None:
            data = self.mem.read(addr, self.off.code_size)
            q, = struct.unpack_from("<Q", data, self.off.co_qualname)
            f, = struct.unpack_from("<Q", data, self.off.co_filename)
            lt, = struct.unpack_from("<Q", data, self.off.co_linetable)
            first, = struct.unpack_from("<i", data, self.off.co_firstlineno)
            size = self.mem.u64(lt + self.off.bytes_size) if lt else 0
            table = self.mem.read(lt + self.off.bytes_sval, size) if 0 < size < 1 << 20 else b""
            found = self.codes[addr] = (self.string(q) if q else "?", self.string(f) if f else "?",
                                        first, table, addr + self.off.co_code_adaptive)
        return found

    def line(self, code_addr: int, instr_ptr: int) -> int:
        """The line being run at ``instr_ptr``, as ``frame.f_lineno`` would say."""
        _q, _f, first, table, bytecode = self.code(code_addr)
        lasti = (instr_ptr - bytecode) // 2
        key = (code_addr, lasti)
        found = self.lines.get(key)
        if found is None:
            found = self.lines[key] = line_of(table, first, lasti)
        return found

    # -- coroutines ------------------------------------------------------------------------
    def coroutine_frames(self, coro: int) -> list[tuple[str, str, int]]:
        """The coroutine chain from ``coro`` down to what it awaits, innermost first."""
        off, mem = self.off, self.mem
        out: list[tuple[str, str, int]] = []
        seen = set()
        while coro and coro not in seen and len(out) < 256:
            seen.add(coro)
            gen, at = mem.span(coro, off.gen_size)  # the frame is inside the generator object
            tp, = _U64(gen, at + off.ob_type)
            found = self.types.get(tp)
            name = found[0] if found else self.type_of(coro)[1]
            if name not in ("coroutine", "generator", "async_generator"):
                break
            state, = _I8(gen, at + off.gi_frame_state)
            if state in self.finished:
                break
            frame = at + off.gi_iframe
            executable = _U64(gen, frame + off.executable)[0] & ~7  # a tagged stack reference
            if not executable:
                break
            instr, = _U64(gen, frame + off.instr_ptr)
            code = self.code(executable)
            out.append((code[1], code[0], self.line(executable, instr)))
            if state != self.yield_from:
                break
            sp, = _U64(gen, frame + off.stackpointer)
            if not sp:
                break
            # What ``await`` waits on: the top of its stack (3.15 keeps a NULL reference above it).
            awaited = mem.u64(sp - 8) & ~7
            if not awaited:
                awaited = mem.u64(sp - 16) & ~7
            if not awaited or mem.u64(awaited + off.ob_type) != tp:
                break  # a future or another iterator: the chain of coroutines ends here
            coro = awaited
        out.reverse()
        return out

    def awaiters(self, task: bytes) -> list[int]:
        awaited_by, = struct.unpack_from("<Q", task, self.off.task_awaited_by)
        if not awaited_by:
            return []
        if not task[self.off.task_awaited_by_is_set]:
            return [awaited_by]
        used = self.mem.u64(awaited_by + self.off.set_used)
        mask = self.mem.u64(awaited_by + self.off.set_mask)
        table = self.mem.u64(awaited_by + self.off.set_table)
        if not table or mask > 1 << 20 or used > mask + 1:
            return []
        entries = self.mem.read(table, (mask + 1) * 16)
        return [key for key in struct.unpack_from(f"<{2 * (mask + 1)}Q", entries)[::2] if key]

    # -- lists -----------------------------------------------------------------------------
    def _walk(self, head: int, link: int, back: int, seen: set) -> tuple[list[int], bool]:
        """``(nodes, whole)``: the nodes from ``head`` following the link at offset ``link``
        (next or prev), until back at ``head`` (``whole``) or astray: a NULL link (the node
        after it ended: its links are cleared), one to a node already seen, or one to a node
        whose link the other way (``back``) does not lead back (it ended, and its memory now
        holds a task of another list)."""
        u64 = self.mem.u64
        nodes, previous = [], head
        node = u64(head + link)
        while node != head:
            if not node or node in seen or u64(node + back) != previous:
                # Most often the link came from a block read before the node after it ended:
                # read both again, fresh; if they still lead astray, the walk stops here.
                self.mem.forget(previous + link)
                node = u64(previous + link)
                if node == head:
                    break
                self.mem.forget(node + back)
                if not node or node in seen or u64(node + back) != previous:
                    return nodes, False
            if len(seen) >= MAX_TASKS_PER_LIST:
                raise ReadError(f"a task list of process {self.pid} has more than {MAX_TASKS_PER_LIST:,} tasks")
            seen.add(node)
            nodes.append(node)
            previous, node = node, u64(node + link)
        return nodes, True

    def task_list(self, head: int) -> tuple[list[int], bool]:
        """``(nodes, whole)`` of the list whose head node is at ``head``.  The process keeps
        changing it: a walk forward that goes astray is completed by one backward from the head,
        so only tasks created or ended right where it went astray can be missed (``astray``)."""
        seen: set = set()
        forward, backward = self.off.llist_next, self.off.llist_prev
        nodes, whole = self._walk(head, forward, backward, seen)
        if not whole:
            self.astray += 1
            back, _whole = self._walk(head, backward, forward, seen)
            nodes.extend(reversed(back))
        return nodes, whole

    def task_lists(self) -> list[tuple[int, list[int]]]:
        """``(thread id, task addresses)`` of every list.  A walk gone astray can have followed
        a node that ended and came back as another list's: a task is on one list only, so a
        node met on several goes to one walked whole, and no list's head is taken for a task."""
        walked = [(tid, head) + self.task_list(head) for tid, head in self.threads()]
        heads = {head for _tid, head, _nodes, _whole in walked}
        owner: dict[int, int] = {}
        for index in sorted(range(len(walked)), key=lambda i: not walked[i][3]):  # whole walks first
            for node in walked[index][2]:
                owner.setdefault(node, index)
        return [(tid, [node - self.off.task_node for node in nodes
                       if owner[node] == index and node not in heads])
                for index, (tid, _head, nodes, _whole) in enumerate(walked)]

    def threads(self) -> list[tuple[int, int]]:
        """``(native thread id, tasks list head)`` of every thread of every interpreter, then
        ``(0, head)`` of each interpreter's list of tasks whose thread has ended."""
        out = []
        interp = self.mem.u64(self.runtime + self.off.interpreters_head)
        interps = 0
        while interp and interps < 256:
            interps += 1
            tstate = self.mem.u64(interp + self.off.threads_head)
            count = 0
            while tstate and count < 100_000:
                count += 1
                tid = self.mem.u64(tstate + self.off.native_thread_id)
                out.append((tid, tstate + self.off.tstate_tasks_head))
                tstate = self.mem.u64(tstate + self.off.tstate_next)
            out.append((0, interp + self.off.interp_tasks_head))
            interp = self.mem.u64(interp + self.off.interp_next)
        return out

    def read(self) -> dict:
        """Every task, as ``remote_tasks.READER`` prints them (see there): ``version``,
        interned ``frames`` and ``stacks``, and ``threads`` with their tasks."""
        if not self.asyncio:  # asyncio's C module is not loaded: no task can exist
            return {"version": list(self.version), "frames": [], "stacks": [], "threads": []}
        self.mem.clear()
        self.astray = 0
        frames: list = []
        frame_ids: dict = {}
        stacks: list = []
        stack_ids: dict = {}
        coro_stacks: dict[tuple, int] = {}
        threads, by_address = [], {}
        for tid, addresses in self.task_lists():
            tasks = []
            for address in addresses:
                task = self.mem.read(address, self.off.task_size)
                if not task[self.off.task_is_task]:
                    continue
                coro, = _U64(task, self.off.task_coro)
                chain = tuple(self.coroutine_frames(coro)) if coro else ()
                index = coro_stacks.get(chain)
                if index is None:
                    ids = []
                    for key in chain:
                        found = frame_ids.get(key)
                        if found is None:
                            found = frame_ids[key] = len(frames)
                            frames.append(list(key))
                        ids.append(found)
                    index = stack_ids.setdefault(tuple(ids), len(stacks))
                    if index == len(stacks):
                        stacks.append(ids)
                    coro_stacks[chain] = index
                name_at, = _U64(task, self.off.task_name)
                entry = [address, self.task_name(name_at), index, self.awaiters(task)]
                by_address[address] = entry
                tasks.append(entry)
            if tasks:
                threads.append({"thread": tid, "tasks": tasks})
        for thread in threads:  # each awaiter with its own stack, as the interpreter's reader gives
            for entry in thread["tasks"]:
                entry[3] = [[a, by_address[a][2]] for a in entry[3] if a in by_address]
        self.mem.clear()
        return {"version": list(self.version), "frames": frames, "stacks": stacks, "threads": threads,
                "lists_changed": self.astray}


def _varint(table: bytes, i: int) -> tuple[int, int]:
    byte = table[i]
    value, shift = byte & 63, 6
    i += 1
    while byte & 64:
        byte = table[i]
        value |= (byte & 63) << shift
        shift += 6
        i += 1
    return value, i


def line_of(table: bytes, first_line: int, lasti: int) -> int:
    """The line of the instruction at ``lasti`` (in code units) from a code object's location
    table (``co_linetable``, the format of CPython 3.11+, InternalDocs/code_objects.md); 0 where
    the table says the instruction has no line."""
    line, addr, i = first_line, 0, 0
    try:
        while i < len(table):
            head = table[i]
            i += 1
            code, length = (head >> 3) & 15, (head & 7) + 1
            delta: int | None = 0
            if code == 15:
                delta = None
            elif code == 14:
                value, i = _varint(table, i)
                delta = -(value >> 1) if value & 1 else value >> 1
                for _ in range(3):
                    _v, i = _varint(table, i)
            elif code == 13:
                value, i = _varint(table, i)
                delta = -(value >> 1) if value & 1 else value >> 1
            elif code >= 10:
                delta, i = code - 10, i + 2
            else:
                i += 1
            if delta is not None:
                line += delta
            if addr <= lasti < addr + length:
                return line if delta is not None else 0
            addr += length
    except IndexError:
        pass
    return 0


def read_tasks(pid: int) -> dict:
    """Every asyncio task of ``pid`` (CPython 3.14 or 3.15), read from its memory (``TaskReader``)."""
    return TaskReader(pid).read()
