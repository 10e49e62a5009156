"""Signals held while a record's last writes are made, and let through for a moment."""

from __future__ import annotations

from .outcome import SIGHUP, SIGINT, SIGTERM


def held() -> set:
    """The signals that end a run: SIGINT, SIGTERM, SIGHUP, and those that kill a process
    nobody handles them in (``exits.DEADLY_SIGNALS``)."""
    import _signal

    return {SIGINT, SIGTERM, SIGHUP} | {getattr(_signal, name) for name in ("SIGUSR1", "SIGUSR2", "SIGXCPU")
                                        if hasattr(_signal, name)}


def caught_outside_python() -> int:
    """The signals with a handler set outside Python since it started (``faulthandler.register``,
    an extension's C code), which ``getsignal()`` still calls SIG_DFL: Linux's SigCgt mask."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigCgt:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


class no_interrupts:
    """The signals that end a run wait while the last writes are made (a second Ctrl-C
    must not leave a record half-finished), and while runlog's threads are born (a signal
    landing on one would wait out the script's time.sleep); delivered right after."""

    def __init__(self, signals=None):
        self.signals = signals  # None: every signal that ends a run (``held()``)

    def __enter__(self):
        self.old = None
        try:
            import _signal

            self.old = _signal.pthread_sigmask(
                _signal.SIG_BLOCK, held() if self.signals is None else set(self.signals))
        except (ImportError, AttributeError, OSError, ValueError):
            pass
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            import _signal

            _signal.pthread_sigmask(_signal.SIG_SETMASK, self.old)


class unmasked:
    """SIGINT delivered again for a moment (inside ``no_interrupts``), blocked again after."""

    def __init__(self, active: bool):
        self.active = active

    def __enter__(self):
        if self.active:
            import _signal

            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {SIGINT})

    def __exit__(self, *exc):
        if self.active:
            import _signal

            _signal.pthread_sigmask(_signal.SIG_BLOCK, {SIGINT})
