"""What the leak check changes in the process while it is active, and how it undoes it.

Four things, installed when the first test is to be checked and undone when the session ends:
the probe's task-factory hooks (where each task is created), ``threading.Thread.start`` (where
each thread is started), asyncio's ``_set_running_loop`` (a loop stops running: its pending
tasks are about to become garbage) and the runners' ``_cancel_all_tasks`` (``asyncio.run`` and
``asyncio.Runner`` cancel what is left).  The last two only call back; what to do with the
loop is the current check's business.
"""
from __future__ import annotations

import functools
import sys
import threading
import weakref
from typing import Any, Callable

from .options import CREATION_DEPTH

#: Modules whose ``_cancel_all_tasks(loop)`` cancels what is left when a runner shuts its loop
#: down: asyncio.run and asyncio.Runner (pytest-asyncio 1.x), and the backports of Runner that
#: pytest-asyncio and anyio use on 3.9 and 3.10.
RUNNER_MODULES = ("asyncio.runners", "backports.asyncio.runner.runner", "anyio._backends._asyncio")


class Patches:
    """What the plugin changes in the process while it is active, and how it undoes it."""

    def __init__(self) -> None:
        self.thread_sites: "weakref.WeakKeyDictionary[threading.Thread, tuple]" = weakref.WeakKeyDictionary()
        self.on_loop_stop: Callable[[Any], None] | None = None
        self.on_runner_cancel: Callable[[Any], None] | None = None
        self._runners: list = []  # (module, original _cancel_all_tasks, ours)
        self._installed_hooks = False
        self._orig_start: Callable | None = None
        self._start: Callable | None = None
        self._orig_set_running: Callable | None = None
        self._set_running: Callable | None = None
        self._uvloop_init: tuple | None = None  # (uvloop.Loop, our __init__)

    def install(self) -> None:
        from tasktop.probe import hooks
        from tasktop.probe.frames import frame_stack
        from asyncio import events
        import asyncio

        if not hooks._active:  # the probe may be running already, with its own settings
            hooks.install(depth=CREATION_DEPTH)
            self._installed_hooks = True
        self._hook_uvloop()

        orig_start = threading.Thread.start
        sites = self.thread_sites

        @functools.wraps(orig_start)
        def start(thread, *args, **kwargs):
            try:
                sites[thread] = frame_stack(sys._getframe(1), CREATION_DEPTH + 10)
            except Exception:
                pass
            return orig_start(thread, *args, **kwargs)

        threading.Thread.start = start  # type: ignore[method-assign]
        self._orig_start, self._start = orig_start, start

        orig_set_running = events._set_running_loop
        get_running = events._get_running_loop

        def set_running_loop(loop):
            if loop is None and self.on_loop_stop is not None:
                try:
                    stopping = get_running()
                    if stopping is not None:
                        self.on_loop_stop(stopping)
                except Exception:
                    pass
            return orig_set_running(loop)

        events._set_running_loop = set_running_loop
        asyncio._set_running_loop = set_running_loop
        self._orig_set_running, self._set_running = orig_set_running, set_running_loop

        import asyncio.runners  # noqa: F401 - so that it is in sys.modules

        self.patch_runners()

    def _hook_uvloop(self) -> None:
        """Give uvloop loops made from now on the probe's task factory, so that their tasks have
        creation stacks: uvloop calls neither ``BaseEventLoop.__init__`` nor, when it was
        imported before the hooks were in place (by a conftest), their ``_set_running_loop``."""
        from tasktop.probe import hooks

        cls = getattr(sys.modules.get("uvloop"), "Loop", None)
        if not isinstance(cls, type) or "__init__" in vars(cls):
            return  # no uvloop yet (the hooks will see it run), or hooked already
        base_init = cls.__init__

        def __init__(loop, *args, **kwargs):
            base_init(loop, *args, **kwargs)
            if hooks._active:
                try:
                    hooks.note_loop(loop, None)
                except Exception:
                    pass

        try:
            cls.__init__ = __init__
        except (TypeError, AttributeError):
            return
        self._uvloop_init = (cls, __init__)

    def patch_runners(self) -> None:
        """Wrap ``_cancel_all_tasks`` of the runner modules imported by now (idempotent: a
        runner module may be imported late, as anyio imports its backend on first use)."""
        done = {id(module) for module, _orig, _ours in self._runners}
        for name in RUNNER_MODULES:
            module = sys.modules.get(name)
            orig_cancel = getattr(module, "_cancel_all_tasks", None)
            if orig_cancel is None or id(module) in done:
                continue

            def cancel_all_tasks(loop, _orig=orig_cancel):
                if self.on_runner_cancel is not None:
                    try:
                        self.on_runner_cancel(loop)
                    except Exception:
                        pass
                return _orig(loop)

            module._cancel_all_tasks = cancel_all_tasks
            self._runners.append((module, orig_cancel, cancel_all_tasks))

    def uninstall(self) -> None:
        from asyncio import events
        import asyncio

        self.on_loop_stop = None
        self.on_runner_cancel = None
        for module, orig_cancel, ours in self._runners:
            if getattr(module, "_cancel_all_tasks", None) is ours:
                module._cancel_all_tasks = orig_cancel
        self._runners.clear()
        if self._uvloop_init is not None:
            cls, ours = self._uvloop_init
            if vars(cls).get("__init__") is ours:
                del cls.__init__
            self._uvloop_init = None
        if self._start is not None and threading.Thread.start is self._start:
            threading.Thread.start = self._orig_start  # type: ignore[method-assign]
        if self._set_running is not None:
            for module in (events, asyncio):
                if getattr(module, "_set_running_loop", None) is self._set_running:
                    module._set_running_loop = self._orig_set_running
        if self._installed_hooks:
            from tasktop.probe import hooks, is_running

            if not is_running():  # the probe, started since, keeps its hooks
                hooks.uninstall()
            self._installed_hooks = False
