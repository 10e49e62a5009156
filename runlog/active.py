"""The one active run of this process (forked workers have none of their own)."""

from __future__ import annotations

import os

_run = None


def get():
    """The active run, or None once it finished or in a forked worker."""
    run = _run
    if run is not None and (run.finished or getattr(run, "pid", None) != os.getpid()):
        return None
    return run


def set(run) -> None:  # noqa: A001 - the module's own verb
    global _run
    _run = run


def clear(run) -> None:
    global _run
    if _run is run:
        _run = None
