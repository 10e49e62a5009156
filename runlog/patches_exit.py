"""The other ways a script exits: the ``exit()`` and ``quit()`` builtins and (Python 3.12+)
a ``raise SystemExit`` leaving the script's module frame, changed with ``patches.sys_exit``;
and ``os._exit``, which skips atexit. Each returns its undo, as every change in ``patches``
does.

And a SIGTERM/SIGHUP handler the script sets after ``start()`` (preemption code in the
training loop saving a checkpoint): without ``wrap_signal_module`` it replaced runlog's, and a
run ended by the scheduler's SIGTERM was recorded ``finished``; a ``SIG_DFL`` set back by the
script let the signal kill the process with no record at all. While a run is active, the
C module's ``_signal.signal()`` and ``_signal.getsignal()``, which the ``signal`` module's
call, are wrapped for the handled signals: the script's handler is called from runlog's (as
for one set before ``start()``), and what both functions return is what the script set.
``getsignal`` never shows runlog's own handler, for any signal: a library deciding by it
(Lightning keeps a SIGTERM handler already there and takes SLURM's SIGUSR1 only when free)
must decide as without runlog, whether ``signal`` was imported before ``start()`` or after."""

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
            told(e)
            raise


def told(exc) -> None:
    """This SystemExit was told to ``on_exit`` already: its unwinding is not (``raise_system_exit``)."""
    try:
        exc._runlog_told = True
    except AttributeError:
        pass

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


def fatal_errors(fd: int | None):
    """Write the Python traceback of a fatal signal (a segfault or an ``abort()`` in an
    extension: CUDA, a data loader's C code) to run.log, through ``faulthandler``.

    The process still dies by its signal, as it would have (faulthandler chains to
    what was there and raises the signal again); the run stays unfinished, and the
    CLI shows it lost with the error read from run.log's end. Left alone when the
    script or ``python -X faulthandler`` / ``PYTHONFAULTHANDLER`` enabled it: theirs
    says the same, where they chose; and when one of these signals is handled outside
    Python already (a JVM started through JPype raises SIGSEGVs of its own, for its null
    checks: faulthandler, first to see them, would turn each into a crash). faulthandler
    writes from a signal handler, to a descriptor: it gets a duplicate of run.log's, open
    until the undo; the undo leaves alone a faulthandler the script enabled after ``start()``.
    """
    if fd is None or fd < 0:
        return None
    import _signal
    import faulthandler

    from .sigmask import caught_outside_python

    if faulthandler.is_enabled():
        return None
    outside = caught_outside_python()
    if any(outside >> (getattr(_signal, n) - 1) & 1 for n in _FATAL if hasattr(_signal, n)):
        return None  # a JVM (JPype), Julia: their own SIGSEGVs, which faulthandler's would make fatal
    try:
        own = os.dup(fd)
    except OSError:
        return None
    try:
        os.set_inheritable(own, False)
        # a file object, not the number: faulthandler holds it while it is the one written to,
        # so the undo can tell whether the script enabled its own since (faulthandler says not)
        file = open(own, "wb", buffering=0)  # noqa: SIM115 - closed by the undo
    except (OSError, ValueError):
        os.close(own)
        return None
    try:
        faulthandler.enable(file=file, all_threads=True)
    except (OSError, ValueError, RuntimeError):
        file.close()
        return None
    getrefcount = getattr(sys, "getrefcount", None)
    held = getrefcount(file) if getrefcount is not None else None

    def undo():
        # a process going on after its run must not write into it; a faulthandler the script
        # enabled after start() stays on
        if held is None or getrefcount(file) >= held:
            faulthandler.disable()
        try:
            file.close()
        except OSError:
            pass

    return undo


_FATAL = ("SIGSEGV", "SIGFPE", "SIGABRT", "SIGBUS", "SIGILL")  # the signals faulthandler takes


# While a run is active, runlog sets its own handlers through the C module's functions as
# they were before its wrap (``real_signal_functions``): through the wrap, a SIG_DFL runlog
# sets back to die by a signal would put its handler back instead.
_real: list = []  # [(signal, getsignal) under the active wrap], or empty


def real_signal_functions():
    """``_signal``'s ``signal`` and ``getsignal`` as without runlog's wrap."""
    import _signal

    if _real:
        return _real[-1]
    return _signal.signal, _signal.getsignal


def _num(signum):
    try:
        return int(signum)
    except (TypeError, ValueError):
        return None


def _is(handler, value: int) -> bool:
    """Whether ``handler`` is SIG_DFL or SIG_IGN (``value``) as ``_signal`` takes them: an int
    (signal.signal() passes the enum's value; anything else is an error of ``_signal``'s)."""
    return type(handler) is int and handler == value


def wrap_signal_module(names, deadly, on_signal, chained, in_children, mark, undo_replacement):
    """Wrap the C module's ``_signal.signal``/``_signal.getsignal``: ``signal.signal()`` and
    ``signal.getsignal()`` (Python functions in signal.py, 3.6 to 3.13) call them through the
    module at each call, so the wrap holds for a ``signal`` imported after ``start()`` (the
    README's ``import runlog; runlog.start()`` first, then torch or Lightning), for asyncio's
    ``add_signal_handler`` and for a ``from signal import signal``, without importing
    ``signal`` here (its enums cost ``start()`` a millisecond).

    ``names`` (SIGTERM/SIGHUP): a handler, or SIG_DFL, the script sets stays under runlog's;
    ``deadly`` (SIGUSR1/SIGUSR2/SIGXCPU): a SIG_DFL the script sets back (Lightning's teardown
    restoring what getsignal() told it) gets runlog's handler under it again, a handler of the
    script's replaces runlog's. From ``patches``: ``chained(on_signal, previous)`` makes
    runlog's handler over one of the script's; ``in_children(installed, add)`` has forked
    children put the script's back (or stops it; given a function, the child calls it);
    ``mark`` and ``undo_replacement`` as for its other replacements. Returns the undo, or None."""
    try:
        import _signal as mod
    except ImportError:  # pragma: no cover - not CPython
        return None
    real_signal, real_getsignal = mod.signal, mod.getsignal
    dfl = int(mod.SIG_DFL)
    handled = {getattr(mod, n) for n in names if hasattr(mod, n)}
    taken = {getattr(mod, n) for n in deadly if hasattr(mod, n)}
    shown: dict = {}  # signum → (runlog's handler installed, what the script set, its fork entry)

    def getsignal(signalnum):
        current = real_getsignal(signalnum)
        got = shown.get(_num(signalnum))
        if got is not None and current is got[0]:
            return got[1]
        seen = 0  # runlog's own handler, under nothing the script set: what it stands in for
        while getattr(current, "_runlog_signal", False) is True and seen < 100:
            current, seen = current._runlog_previous, seen + 1
        return current

    def forget(n) -> None:
        old = shown.pop(n, None)
        if old is not None:
            in_children(old[2], add=False)

    def signal(signalnum, handler):
        n = _num(signalnum)
        under = not signal._runlog_undone and getattr(handler, "_runlog_signal", False) is not True and (
            (n in handled and (callable(handler) or _is(handler, dfl))) or (n in taken and _is(handler, dfl)))
        if not under:  # ignored, the script's own for a deadly signal, another signal, runlog's back
            before = getsignal(signalnum)
            real_signal(signalnum, handler)  # raises as without runlog
            forget(n)
            return before
        before = getsignal(signalnum)
        ours = chained(on_signal, handler)
        real_signal(signalnum, ours)  # off the main thread: ValueError, as without runlog
        forget(n)
        installed = [(n, ours, handler)]
        shown[n] = (ours, handler, installed)
        in_children(installed)
        return before

    getsignal.__doc__, signal.__doc__ = real_getsignal.__doc__, real_signal.__doc__
    getsignal.__name__, signal.__name__ = "getsignal", "signal"
    mark(signal, real_signal)
    mark(getsignal, real_getsignal)
    mod.signal, mod.getsignal = signal, getsignal
    mine = (real_signal, real_getsignal)
    _real.append(mine)
    undo_signal = undo_replacement(lambda: mod.signal, lambda v: setattr(mod, "signal", v),
                                   signal, real_signal)
    undo_get = undo_replacement(lambda: mod.getsignal, lambda v: setattr(mod, "getsignal", v),
                                getsignal, real_getsignal)

    def unwrap() -> None:
        undo_get()
        undo_signal()
        if mine in _real:
            _real.remove(mine)

    def in_child() -> None:  # a forked child has no run: its signal functions are Python's own
        for ours, _handler, _installed in shown.values():
            ours._runlog_undone = True
        shown.clear()
        unwrap()

    in_children(in_child)

    def undo():
        in_children(in_child, add=False)
        unwrap()
        for n, (ours, handler, installed) in list(shown.items()):
            in_children(installed, add=False)
            ours._runlog_undone = True  # from now on it only calls the script's handler
            try:
                if real_getsignal(n) is ours:
                    real_signal(n, handler)
            except (ValueError, OSError):
                pass  # not the main thread now: ours stays, and only chains
        shown.clear()

    return undo
