"""The launcher of a sweep's trials: the process ``sweep_launch.Launcher`` starts.

``python -m runlog.cli.sweep_launcher REQUESTS REPORTS``: it reads requests (JSON
lines: a trial to fork, a trial to reap) from the pipe REQUESTS and writes what
happened (the pid forked, the end of a trial) to REPORTS. ``sweep_launch`` says
why, and what a forked trial is made to be.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys

from .sweep_launch import SIGNALS  # the sweep's and the launcher's are the same three
# what `runlog run` imports after its start-up, imported once in the launcher (a name
# that is gone is skipped: this list only saves time)
PRELOAD = ("runlog.cli.runcmd", "runlog.resume", "runlog.mask", "runlog.fmt", "runlog.git",
           "runlog.codestate", "runlog.report", "runlog.folder.latest", "runlog.folder.segments",
           "runlog.folder.trials", "runlog.folder.handoff", "runlog.folder.listing",
           "runlog.facts.collect", "runlog.facts.env", "runlog.facts.machine",
           "runlog.facts.scheduler", "runlog.facts.resources", "runlog.facts.data",
           "runlog.facts.text", "ctypes", "resource")


def serve(requests: int, reports: int) -> dict | None:
    """The launcher's loop. Returns None when it is done; in a forked trial it returns the
    trial's request, the process made ready to run it."""
    at_start = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    preload = [*PRELOAD, _warm]  # done while no request waits: the first trial does not wait
    os.set_blocking(requests, False)
    kids: dict[int, int | None] = {}  # pid → its pidfd (None: polled)
    ended: set[int] = set()  # reported, not yet reaped
    buf, sweep_there = b"", True
    while sweep_there or kids:
        poller = select.poll()
        if sweep_there:
            poller.register(requests, select.POLLIN)
        blind = False
        for pid, fd in kids.items():
            if pid not in ended:
                if fd is None:
                    blind = True
                else:
                    poller.register(fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(0 if preload else (10 if blind else None))}
        if preload and not ready:
            _preload(preload)
            continue
        for pid in [p for p in kids if p not in ended]:
            got = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if got is None:
                continue
            code = got.si_status if got.si_code == os.CLD_EXITED else -got.si_status
            ended.add(pid)
            if sweep_there:
                sweep_there = _write(reports, {"exit": pid, "code": code})
        if not sweep_there:  # nobody to tell: reap what ended
            for pid in list(ended):
                _reap(pid, kids, ended)
            continue
        if requests not in ready:
            continue
        try:
            data = os.read(requests, 65536)
        except BlockingIOError:
            continue
        if not data:
            sweep_there = False
            continue
        *lines, buf = (buf + data).split(b"\n")
        for line in lines:
            if not sweep_there:
                break
            req = json.loads(line)
            if "reap" in req:
                _reap(req["reap"], kids, ended)
                continue
            try:
                pid = os.fork()
            except OSError:
                sweep_there = _write(reports, {"id": req["id"], "pid": None})
                continue
            if pid == 0:
                _become_trial(req, at_start, [requests, reports, *[f for f in kids.values() if f]])
                return req
            try:
                kids[pid] = os.pidfd_open(pid)
            except (AttributeError, OSError):
                kids[pid] = None
            sweep_there = _write(reports, {"id": req["id"], "pid": pid})
    return None


def _preload(todo: list) -> None:
    """One more of the modules a trial would import (one at a time: a request waits little)."""
    step = todo.pop(0)
    try:
        step() if callable(step) else __import__(step)
    except ImportError:
        pass


def _warm() -> None:
    """The patterns that read metrics from plain output, compiled as a trial compiles them
    at its first line (``textmetrics``' lazy ones): ~1 ms a trial."""
    tm = sys.modules.get("runlog.textmetrics")
    for v in list(vars(tm).values()) if tm else ():
        if type(v).__name__ == "_Lazy":
            try:
                v.pattern  # noqa: B018 - the attribute's lookup compiles it
            except Exception:
                pass  # compiled by the trial that uses it, as without the launcher


def _write(fd: int, msg: dict) -> bool:
    data = (json.dumps(msg) + "\n").encode()
    try:
        while data:
            data = data[os.write(fd, data):]
        return True
    except OSError:
        return False  # the sweep is gone


def _reap(pid: int, kids: dict, ended: set) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    fd = kids.pop(pid, None)
    if fd is not None:
        os.close(fd)
    ended.discard(pid)


def _become_trial(req: dict, at_start: dict, fds: list[int]) -> None:
    """In the forked child: what ``Popen([python, -m, runlog, ...], start_new_session=True,
    stdin=DEVNULL, ...)`` would have given the new interpreter."""
    for fd in fds:
        os.close(fd)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2) if req["quiet"] else (0,):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    for s, handler in at_start.items():
        signal.signal(s, handler)
    import runlog

    main = os.path.join(os.path.dirname(os.path.abspath(runlog.__file__)), "__main__.py")
    sys.argv = [main, *req["argv"]]
    sys.orig_argv = [sys.executable, "-m", "runlog", *req["argv"]]


if __name__ == "__main__":
    _req = serve(int(sys.argv[1]), int(sys.argv[2]))
    if _req is None:
        sys.exit(0)
    from runlog.cli import entry

    entry()
