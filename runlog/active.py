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


_forks_watched = False


def watch_forks() -> None:
    """Once per process: in a forked worker, the active run is marked as a copy (it never
    finishes there: only the process that started a run finishes it)."""
    global _forks_watched
    if _forks_watched or not hasattr(os, "register_at_fork"):
        return
    _forks_watched = True
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    run = _run  # as it was in the parent: get() would already say "not ours"
    if run is not None and hasattr(run, "forked_copy"):
        run.forked_copy()
