"""runlog's short-lived threads (git's status, the machine facts), and forks that wait for them.

A fork beside another running thread copies every lock that thread held (an import's,
logging's, the record's) into a child where nobody will ever release it; Python 3.12+ says
so on each such fork ("This process is multi-threaded, use of fork() may lead to
deadlocks"). A script forks right after ``start()`` often (a DataLoader's workers, a Pool),
while these threads still run (tens of milliseconds, git's status). So a fork of the
process first waits for them to be gone, at most ``FORK_WAIT_S``, then forks anyway.

The threads are raw ``_thread`` ones (``threading.Thread.start()`` waits for the new
thread to be scheduled: most of a millisecond of ``start()``).
"""

from __future__ import annotations

import _thread
import os

FORK_WAIT_S = 2.0

_lock = _thread.allocate_lock()
_running: dict[int, int | None] = {}  # token → the thread's native id, once it began
_ending: set[int] = set()  # native ids of threads that returned but may not be gone yet
_count = 0
_hooked = False


def start(fn, *args) -> None:
    """Run ``fn(*args)`` on a thread of runlog's own, which a fork waits for."""
    global _count
    with _lock:
        _count += 1
        token = _count
        _running[token] = None
    _watch_forks()
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
            if native is not None:
                _ending.add(native)


def _native_id():
    get = getattr(_thread, "get_native_id", None)
    return get() if get is not None else None


def _watch_forks() -> None:
    global _hooked
    if _hooked or not hasattr(os, "register_at_fork"):
        return
    _hooked = True
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _before_fork() -> None:
    if not _running and not _ending:
        return
    if _native_id() in _running.values():  # one of these threads forks: it cannot wait for itself
        return
    import time

    from .sigmask import no_interrupts

    deadline = time.monotonic() + FORK_WAIT_S
    with no_interrupts():  # a Ctrl-C here would be lost in a fork hook: it lands after the fork
        while _running and time.monotonic() < deadline:
            time.sleep(0.0005)
        # returned, but the OS thread ends a moment later; Linux lists the live ones
        while _ending and time.monotonic() < deadline:
            with _lock:
                for native in list(_ending):
                    if not os.path.exists(f"/proc/self/task/{native}"):
                        _ending.discard(native)
            if _ending and not os.path.isdir("/proc/self/task"):
                _ending.clear()  # no way to tell here: returned is as gone as it gets
            if _ending:
                time.sleep(0.0005)


def _after_fork_in_child() -> None:
    """The child has none of these threads (their records are the parent's business)."""
    global _lock
    _lock = _thread.allocate_lock()  # perhaps held by a thread the child does not have
    _running.clear()
    _ending.clear()
