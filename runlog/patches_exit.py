"""The other ways a script exits: the ``exit()`` and ``quit()`` builtins and (Python 3.12+)
a ``raise SystemExit`` leaving the script's module frame, changed with ``patches.sys_exit``;
and ``os._exit``, which skips atexit. Each returns its undo, as every change in ``patches``
does."""

from __future__ import annotations

import os
import sys


class _Quit:
    """``exit(n)`` / ``quit(n)`` (site's builtins raise SystemExit without sys.exit)."""

    def __init__(self, previous, on_exit):
        self._runlog_previous, self._on_exit, self._runlog_undone = previous, on_exit, False

    def __call__(self, code=None):
        if not self._runlog_undone:
            try:
                self._on_exit(code)
            except Exception:
                pass
        try:
            return self._runlog_previous(code)
        except SystemExit as e:
            try:
                e._runlog_told = True  # its unwinding is not told again (raise_system_exit)
            except AttributeError:
                pass
            raise

    def __repr__(self):
        return repr(self._runlog_previous)


def quitter(name: str, on_exit, undo_replacement):
    import builtins

    previous = getattr(builtins, name, None)
    if previous is None:  # python -S: no site, no exit()/quit()
        return None
    wrapper = _Quit(previous, on_exit)
    setattr(builtins, name, wrapper)
    return undo_replacement(lambda: getattr(builtins, name, None),
                             lambda v: setattr(builtins, name, v), wrapper, previous)


def raise_system_exit(on_exit):
    """``raise SystemExit(main())`` never calls sys.exit. Python 3.12+ tells of each exception
    leaving a frame (``sys.monitoring``'s PY_UNWIND: a call per frame an exception leaves,
    nothing on other paths); the module frame's is kept. 3.11 has no such hook."""
    mon = getattr(sys, "monitoring", None)
    if mon is None:
        return None
    from .args.frames import main_module_code

    code = main_module_code()
    tool = next((t for t in (3, 4) if mon.get_tool(t) is None), None)
    if code is None or tool is None:
        return None
    try:
        mon.use_tool_id(tool, "runlog")

        def unwound(where, _offset, exc):
            if where is code and isinstance(exc, SystemExit) and not getattr(exc, "_runlog_told", False):
                try:
                    on_exit(exc.code)
                except Exception:
                    pass

        mon.register_callback(tool, mon.events.PY_UNWIND, unwound)
        mon.set_events(tool, mon.events.PY_UNWIND)
    except (ValueError, RuntimeError, TypeError):
        return None

    def undo():
        try:
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.PY_UNWIND, None)
            mon.free_tool_id(tool)
        except (ValueError, RuntimeError):
            pass

    return undo


def os_exit(on_exit, mark, undo_replacement):
    """Call ``on_exit(status)`` when ``os._exit(status)`` is called, then exit as before.

    A script (or a library working around a hang at exit) that ends with
    ``os._exit`` skips atexit, which would have finished the run. Forked workers
    end with ``os._exit`` too: ``on_exit`` acts only in the run's own process.
    """
    previous = os._exit

    def _exit(status):
        if not _exit._runlog_undone:
            try:
                on_exit(status)
            except BaseException:  # the exit goes on, whatever the record does
                pass
        previous(status)

    mark(_exit, previous)
    os._exit = _exit
    return undo_replacement(lambda: os._exit, lambda v: setattr(os, "_exit", v), _exit, previous)
