"""tasktop's reader of another process's tasks (``client.remote_memory``): the parts that need no
process, checked against the running interpreter itself."""
from __future__ import annotations

import asyncio
import inspect
import json
import sys
import types

import pytest

from tasktop.client import remote_memory


def _code_objects():
    """Every code object of a few stdlib modules, compiled from their source, nested ones included."""
    modules = (json.decoder, asyncio.tasks, asyncio.queues, asyncio.base_events)
    todo = [compile(inspect.getsource(m), m.__file__, "exec") for m in modules]
    out = []
    while todo:
        code = todo.pop()
        out.append(code)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return out


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the location table format is 3.11's")
def test_line_of_reads_the_location_table_as_the_interpreter_does():
    codes = _code_objects()
    assert len(codes) > 200
    checked = 0
    for code in codes:
        for start, end, line in code.co_lines():
            for unit in range(start // 2, end // 2):
                assert remote_memory.line_of(code.co_linetable, code.co_firstlineno, unit) == (line or 0), \
                    (code, unit)
                checked += 1
    assert checked > 5000


def test_a_process_that_is_gone_is_one_line():
    with pytest.raises(remote_memory.ProcessGone, match=r"^process 999999999 has exited$"):
        remote_memory.TaskReader(999_999_999)
