"""How a sweep waits for its trials' ``runlog run`` processes to end.

A sweep sleeps until a trial ends — a pidfd of each trial process is readable
once it has ended (Linux 5.3) — instead of looking every 10 ms: a tiny trial
no longer waits 5 ms on average for the sweep to notice its end.
"""

from __future__ import annotations

import os
import select
import time


def wait(procs: list, timeout: float | None) -> None:
    """Sleep until one of ``procs`` may have ended, or ``timeout`` seconds (None: no limit)."""
    fds = []
    for p in procs:
        try:
            fds.append(os.pidfd_open(p.pid))  # not reaped before the sweep polls it
        except (AttributeError, OSError):  # not Linux, or an old kernel: look every 10 ms
            timeout = 0.01 if timeout is None else min(timeout, 0.01)
    try:
        if not fds:
            time.sleep(0.01 if timeout is None else timeout)
            return
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
    finally:
        for fd in fds:
            os.close(fd)
