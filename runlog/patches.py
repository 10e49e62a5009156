"""Every process-wide change runlog makes, in one place, each with its undo.

A run changes things that belong to the whole process: argparse (and
jsonargparse's ``parse_args`` when the script imported it), the root
logger, ``logging.basicConfig`` (and ``logging.config``'s ``dictConfig``/``fileConfig``),
``sys.stdout``/``sys.stderr`` (and the stream of a library logger's handler, or a loguru
sink, that prints to them: ``output.library_handlers``), ``sys.excepthook``,
``sys.exit``, ``os._exit``, the SIGTERM/SIGHUP handlers (and ``_signal.signal``/``getsignal``
behind the ``signal`` module's: ``patches_exit.wrap_signal_module``), faulthandler (tracebacks
of fatal signals into run.log), atexit, IPython's events and one environment variable (for the
workers multiprocessing starts anew). Each change is made by one function here that returns its
undo; a ``Patches`` object keeps the undos of one run, applies changes in the
declared ``ORDER`` and undoes them in reverse. An undo puts the original back
only where nobody has replaced runlog's change since (a library that wraps
``sys.excepthook`` after ``start()`` keeps its wrapper).

(The file descriptors 1 and 2 that ``clipboard`` points at /dev/null while a
clipboard tool starts are a local change, undone before it returns.)
"""

from __future__ import annotations

import sys

ORDER = ("argparse", "jsonargparse", "root_logger", "basic_config", "stdout", "stderr", "library_handlers",
         "excepthook", "sys_exit", "os_exit", "signals", "signal_module", "fatal_errors", "atexit", "ipython",
         "environ")


class Patches:
    """The changes one run made to the process, undone together in reverse order."""

    def __init__(self):
        self._undo: list[tuple[str, object]] = []

    def apply(self, name: str, install, *args) -> bool:
        """Make one change: ``install(*args)`` returns its undo, or None if it changed nothing."""
        if name not in ORDER:
            raise ValueError(f"unknown patch {name!r}")
        last = ORDER.index(self._undo[-1][0]) if self._undo else -1
        if ORDER.index(name) < last:
            raise RuntimeError(f"patch {name!r} applied after {self._undo[-1][0]!r}: "
                               f"the order is {', '.join(ORDER)}")
        undo = install(*args)
        if undo is None:
            return False
        self._undo.append((name, undo))
        return True

    def names(self) -> list[str]:
        return [name for name, _ in self._undo]

    def undo(self) -> None:
        """Undo every change, newest first; a failing undo is said, the rest still run."""
        while self._undo:
            name, undo = self._undo.pop()
            try:
                undo()
            except Exception as e:
                from .console import say

                say(f"could not undo {name} ({type(e).__name__}: {e})")


class _Process(Patches):
    """Changes made before any run (at ``import runlog``): never undone, any order."""

    def apply(self, name: str, install, *args) -> bool:
        undo = install(*args)
        return undo is not None


process = _Process()


# ---------------------------------------------------------------- the changes


def _live(thing):
    """What a chain of replacements really leads to, past the ones already undone."""
    seen = 0
    while getattr(thing, "_runlog_undone", False) and seen < 100:
        thing = thing._runlog_previous
        seen += 1
    return thing


def _mark(replacement, previous) -> None:
    try:
        replacement._runlog_undone = False
        replacement._runlog_previous = previous
    except (AttributeError, TypeError):  # an object that takes no attributes
        pass


def _undo_replacement(get, put, replacement, previous):
    """The undo of one replacement. Newest first, it puts back what was there (past any
    replacement undone meanwhile); undone out of order, under a newer replacement, it
    turns itself into a pass-through, which the newer one's undo then skips."""

    def undo():
        if get() is replacement:
            put(_live(previous))
        else:
            try:
                replacement._runlog_undone = True
            except (AttributeError, TypeError):
                pass

    return undo


_levels: list = []  # [level before, level set or None] of each root_logger change, oldest first


def root_logger(handler, level: int):
    """Add ``handler`` to the root logger, lowering its level to ``level`` if needed."""
    import logging

    root = logging.getLogger()
    old_level = root.level
    lowered = root.level == logging.NOTSET or root.level > level
    if lowered:
        root.setLevel(level)
    root.addHandler(handler)
    token = [old_level, level if lowered else None]
    _levels.append(token)

    def undo():
        root.removeHandler(handler)
        if token not in _levels:
            return
        i = _levels.index(token)
        del _levels[i]
        if i < len(_levels):  # a newer change is still there: it inherits what to put back
            newer = _levels[i]
            newer[0] = token[0]
            if newer[1] is None:
                newer[1] = token[1]
        elif token[1] is not None and root.level == token[1]:
            root.setLevel(token[0])

    return undo


def basic_config(make_wrapper, make_config_wrapper=None):
    """Replace ``logging.basicConfig`` by ``make_wrapper(original)``, and, when the script
    loaded ``logging.config``, its ``dictConfig`` and ``fileConfig`` by ``make_config_wrapper``'s."""
    import logging

    undos = []
    for module, name, make in ((logging, "basicConfig", make_wrapper),
                               (sys.modules.get("logging.config"), "dictConfig", make_config_wrapper),
                               (sys.modules.get("logging.config"), "fileConfig", make_config_wrapper)):
        if module is None or make is None or not callable(getattr(module, name, None)):
            continue
        original = getattr(module, name)
        wrapper = make(original)
        _mark(wrapper, original)
        setattr(module, name, wrapper)
        undos.append(_undo_replacement(lambda m=module, n=name: getattr(m, n),
                                       lambda v, m=module, n=name: setattr(m, n, v), wrapper, original))
    return lambda: [u() for u in reversed(undos)]


def std_stream(name: str, replacement):
    """Replace ``sys.stdout`` or ``sys.stderr``."""
    original = getattr(sys, name)
    _mark(replacement, original)
    setattr(sys, name, replacement)
    return _undo_replacement(lambda: getattr(sys, name), lambda v: setattr(sys, name, v),
                             replacement, original)


def excepthook(on_exception):
    """Call ``on_exception(type, value, tb)`` for an uncaught exception, then the previous hook."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if not hook._runlog_undone:
            try:
                on_exception(exc_type, exc, tb)
            except Exception:
                pass
        previous(exc_type, exc, tb)

    _mark(hook, previous)
    sys.excepthook = hook
    return _undo_replacement(lambda: sys.excepthook, lambda v: setattr(sys, "excepthook", v),
                             hook, previous)


def sys_exit(on_exit):
    """Call ``on_exit(status)`` when the script calls ``sys.exit(status)``, then exit as before."""
    previous = sys.exit

    def exit(status=None):
        if not exit._runlog_undone:
            try:
                on_exit(status)
            except Exception:
                pass
        try:
            previous(status)
        except SystemExit as e:
            told(e)
            raise

    _mark(exit, previous)
    sys.exit = exit
    from .patches_exit import quitter, raise_system_exit, told

    undos = [_undo_replacement(lambda: sys.exit, lambda v: setattr(sys, "exit", v), exit, previous)]
    undos += [quitter(name, on_exit, _undo_replacement) for name in ("exit", "quit")]
    undos.append(raise_system_exit(on_exit))

    return lambda: [u() for u in reversed(undos) if u is not None]


def os_exit(on_exit):
    """Call ``on_exit(status)`` when ``os._exit(status)`` is called (patches_exit.py)."""
    from .patches_exit import os_exit as install

    return install(on_exit, _mark, _undo_replacement)


def signals(names, on_signal, only_default: bool = False):
    """Handle the named signals with ``on_signal(signum, frame, previous)``.

    Signals ignored on purpose (``nohup``) or handled outside Python are left
    alone, and so is everything outside the main thread (Python allows no
    handler there); with ``only_default``, so is a signal the script handles.
    Returns None when nothing was changed.
    """
    import _signal as signal  # the C module: the same functions without signal's enums (~1 ms)
    import threading

    from .patches_exit import real_signal_functions
    from .sigmask import caught_outside_python

    if threading.current_thread() is not threading.main_thread():
        return None
    installed = []
    set_signal, getsignal = real_signal_functions()  # past the wrap of the script's (patches_exit)
    outside = caught_outside_python() if only_default else 0
    for name in names:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            prev = getsignal(signum)
            if prev in (signal.SIG_IGN, None) or (only_default and prev != signal.SIG_DFL):
                continue
            if only_default and outside >> (signum - 1) & 1:  # faulthandler.register(): not free
                continue
            handler = _signal_handler(on_signal, prev)
            set_signal(signum, handler)
            installed.append((signum, handler, prev))
        except (ValueError, OSError):
            pass
    if not installed:
        return None
    _in_forked_children.append(installed)
    _reset_in_forked_children()

    def undo():
        if installed in _in_forked_children:
            _in_forked_children.remove(installed)
        set_signal, getsignal = real_signal_functions()
        for signum, handler, prev in reversed(installed):
            try:
                if getsignal(signum) is handler:
                    set_signal(signum, _live(prev))
                else:
                    handler._runlog_undone = True
            except (ValueError, OSError):
                pass  # not the main thread now: ours stays, and only chains

    return undo


# A forked worker (multiprocessing, DataLoader) must not keep runlog's handlers: they act
# only in the run's own process, and a Python-level SIGTERM handler in a worker blocked in
# a semaphore can miss the signal (Pool.terminate() then waits for it forever). In the
# child, the signals go back to what they were before runlog.
_in_forked_children: list = []
_fork_hook = False


def _reset_in_forked_children() -> None:
    global _fork_hook
    if _fork_hook or not hasattr(__import__("os"), "register_at_fork"):
        return
    _fork_hook = True
    import os

    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    from .patches_exit import real_signal_functions

    set_signal, getsignal = real_signal_functions()
    for installed in _in_forked_children:
        if callable(installed):  # the wrap of the script's signal functions goes too
            installed()
            continue
        for signum, handler, prev in installed:
            try:
                if getsignal(signum) is handler:
                    set_signal(signum, prev)
            except (ValueError, OSError, TypeError):
                pass
    _in_forked_children.clear()


def signal_module(names, deadly, on_signal):
    """A handler the script sets after ``start()`` for one of ``names`` stays under runlog's, and
    so does a SIG_DFL set back for one of ``deadly``; getsignal() never shows runlog's own,
    whenever the script imports ``signal`` (``patches_exit.wrap_signal_module``)."""
    from .patches_exit import wrap_signal_module

    def in_children(installed, add: bool = True):
        if add:
            _in_forked_children.append(installed)
            _reset_in_forked_children()
        elif installed in _in_forked_children:
            _in_forked_children.remove(installed)

    return wrap_signal_module(names, deadly, on_signal, _signal_handler, in_children, _mark,
                              _undo_replacement)


def _signal_handler(on_signal, prev):
    def handler(signum, frame):
        if handler._runlog_undone:  # undone under a newer handler: act as the one before
            return _as_before(signum, frame, prev)
        return on_signal(signum, frame, prev)

    _mark(handler, prev)
    handler._runlog_signal = True  # the script's getsignal() sees prev instead (patches_exit)
    return handler


def _as_before(signum, frame, prev):
    import _signal as signal
    import os

    from .patches_exit import real_signal_functions

    prev = _live(prev)
    if callable(prev):
        return prev(signum, frame)
    if prev == signal.SIG_IGN:
        return None
    real_signal_functions()[0](signum, signal.SIG_DFL)  # die as the signal would have killed us
    os.kill(os.getpid(), signum)


def at_exit(fn):
    import atexit

    atexit.register(fn)
    return lambda: atexit.unregister(fn)


def ipython_event(ip, event: str, fn):
    try:
        ip.events.register(event, fn)
    except Exception:
        return None

    def undo():
        try:
            ip.events.unregister(event, fn)
        except Exception:
            pass

    return undo


def environ(name: str, value: str):
    """Set an environment variable for the processes started from now on (multiprocessing's
    spawned workers read it: ``joined.owner_dir``)."""
    import os

    previous = os.environ.get(name)
    os.environ[name] = value

    def undo():
        if os.environ.get(name) != value:
            return  # someone set it since: theirs
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous

    return undo
