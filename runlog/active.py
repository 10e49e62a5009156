"""The one active run of this process (forked workers have none of their own), and runlog's
short-lived threads (git's status, the machine facts), which a fork waits for.

A fork beside another running thread copies every lock that thread held (an import's,
logging's, the record's) into a child where nobody will ever release it; Python 3.12+ says
so on each such fork ("This process is multi-threaded, use of fork() may lead to
deadlocks"). A script forks right after ``start()`` often (a DataLoader's workers, a Pool),
while these threads still run (tens of milliseconds, git's status). So a fork of the
process first waits for them to be gone, at most ``FORK_WAIT_S``, then forks anyway; a thread
waited for in vain is not waited for again (a Pool's sixteen forks during a slow ``git status``
would each wait the whole while). The
threads are raw ``_thread`` ones (``threading.Thread.start()`` waits for the new thread to
be scheduled: most of a millisecond of ``start()``).
"""

from __future__ import annotations

import _thread
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


# ---------------------------------------------------------------- runlog's threads

FORK_WAIT_S = 2.0

_lock = _thread.allocate_lock()
_running: dict[int, int | None] = {}  # token → the thread's native id, once it began
_given_up: dict[int, None] = {}  # tokens a fork already waited for in vain
_ending: dict[int, None] = {}  # native ids of threads returned, perhaps not gone yet (a dict: set() is ours)
_count = 0
_hooked = False


def start_thread(fn, *args) -> None:
    """Run ``fn(*args)`` on a thread of runlog's own, which a fork waits for."""
    global _count
    with _lock:
        _count += 1
        token = _count
        _running[token] = None
    _wait_in_forks()
    try:
        _thread.start_new_thread(_body, (token, fn, args))
    except BaseException:
        with _lock:
            _running.pop(token, None)
        raise


def _body(token: int, fn, args) -> None:
    native = _native_id()
    with _lock:
        if token in _running:
            _running[token] = native
    try:
        fn(*args)
    finally:
        with _lock:
            _running.pop(token, None)
            _given_up.pop(token, None)
            if native is not None:
                _ending[native] = None


def _native_id():
    get = getattr(_thread, "get_native_id", None)
    return get() if get is not None else None


def _wait_in_forks() -> None:
    global _hooked
    if _hooked or not hasattr(os, "register_at_fork"):
        return
    _hooked = True
    os.register_at_fork(before=_before_fork, after_in_child=_threads_after_fork_in_child)


def _before_fork() -> None:
    if not _ending and all(token in _given_up for token in list(_running)):
        return
    if _native_id() in _running.values():  # one of these threads forks: it cannot wait for itself
        return
    import time

    from .sigmask import no_interrupts

    deadline = time.monotonic() + FORK_WAIT_S
    with no_interrupts():  # a Ctrl-C here would be lost in a fork hook: it lands after the fork
        while any(token not in _given_up for token in list(_running)):
            if time.monotonic() >= deadline:
                with _lock:
                    _given_up.update(dict.fromkeys(_running))
                break
            time.sleep(0.0005)
        # returned, but the OS thread ends a moment later; Linux lists the live ones
        while _ending and time.monotonic() < deadline:
            with _lock:
                for native in list(_ending):
                    if not os.path.exists(f"/proc/self/task/{native}"):
                        _ending.pop(native, None)
            if _ending and not os.path.isdir("/proc/self/task"):
                _ending.clear()  # no way to tell here: returned is as gone as it gets
            if _ending:
                time.sleep(0.0005)
        if _ending and time.monotonic() >= deadline:  # its id given to a thread of the script's
            _ending.clear()  # since (Linux reuses thread ids): not waited for again


def _threads_after_fork_in_child() -> None:
    """The child has none of these threads (their records are the parent's business)."""
    global _lock
    _lock = _thread.allocate_lock()  # perhaps held by a thread the child does not have
    _running.clear()
    _given_up.clear()
    _ending.clear()
