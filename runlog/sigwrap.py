"""A SIGTERM/SIGHUP handler the script sets after ``start()`` (preemption code in the training
loop saving a checkpoint): runlog's handler stays under it.

Without this, ``signal.signal(SIGTERM, on_term)`` replaced runlog's handler and a run ended
by the scheduler's SIGTERM was recorded ``finished``; a ``SIG_DFL`` set back by the script
let the signal kill the process with no record at all. While a run is active, the
``signal`` module's ``signal()`` and ``getsignal()`` are wrapped for the handled signals:
the script's handler is called from runlog's (as for one set before ``start()``), and
what both functions return is what the script set. Only when the script imported
``signal`` by ``start()`` (it does, to set a handler; so do torch and subprocess):
importing it here would cost ``start()`` a millisecond.
"""

from __future__ import annotations

import sys


def install(names, on_signal, chained, in_children, mark, undo_replacement):
    """Wrap ``signal.signal``/``signal.getsignal`` for the signals ``names``. From ``patches``:
    ``chained(on_signal, previous)`` makes runlog's handler over one of the script's;
    ``in_children(installed, add)`` has forked children put the script's back (or stops
    it); ``mark`` and ``undo_replacement`` as for its other replacements. Returns the undo,
    or None."""
    mod = sys.modules.get("signal")
    if mod is None or not callable(getattr(mod, "signal", None)):
        return None
    real_signal, real_getsignal = mod.signal, mod.getsignal
    handled = {int(getattr(mod, n)) for n in names if hasattr(mod, n)}
    shown: dict = {}  # signum → (runlog's handler installed, what the script set, its fork entry)

    def _num(signum):
        try:
            return int(signum)
        except (TypeError, ValueError):
            return None

    def getsignal(signalnum):
        current = real_getsignal(signalnum)
        got = shown.get(_num(signalnum))
        if got is not None and current is got[0]:
            return got[1]
        return current

    def signal(signalnum, handler):
        n = _num(signalnum)
        if n not in handled or signal._runlog_undone or handler == mod.SIG_IGN or getattr(
                handler, "_runlog_previous", None) is not None:  # ignored, or runlog's own back
            before = getsignal(signalnum)
            real_signal(signalnum, handler)
            old = shown.pop(n, None)
            if old is not None:
                in_children(old[2], add=False)
            return before
        if not (callable(handler) or handler == mod.SIG_DFL):
            return real_signal(signalnum, handler)  # let signal() say what is wrong with it
        before = getsignal(signalnum)
        ours = chained(on_signal, handler)
        real_signal(signalnum, ours)  # off the main thread: ValueError, as without runlog
        old = shown.pop(n, None)
        if old is not None:
            in_children(old[2], add=False)
        installed = [(n, ours, handler)]
        shown[n] = (ours, handler, installed)
        in_children(installed)
        return before

    getsignal.__doc__, signal.__doc__ = real_getsignal.__doc__, real_signal.__doc__
    mark(signal, real_signal)
    mark(getsignal, real_getsignal)
    mod.signal, mod.getsignal = signal, getsignal
    undo_signal = undo_replacement(lambda: mod.signal, lambda v: setattr(mod, "signal", v),
                                           signal, real_signal)
    undo_get = undo_replacement(lambda: mod.getsignal, lambda v: setattr(mod, "getsignal", v),
                                        getsignal, real_getsignal)

    def undo():
        undo_get()
        undo_signal()
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
