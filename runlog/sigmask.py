"""Signals held while a record's last writes are made, and let through for a moment."""

from __future__ import annotations

from .outcome import SIGHUP, SIGINT, SIGTERM


class no_interrupts:
    """SIGINT, SIGTERM and SIGHUP wait while the last writes are made (a second Ctrl-C
    must not leave a record half-finished); they are delivered right after."""

    def __init__(self, signals=(SIGINT, SIGTERM, SIGHUP)):
        self.signals = set(signals)

    def __enter__(self):
        self.old = None
        try:
            import _signal

            self.old = _signal.pthread_sigmask(_signal.SIG_BLOCK, self.signals)
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
