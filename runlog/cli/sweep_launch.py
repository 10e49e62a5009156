"""How a sweep starts its trials' ``runlog run`` processes, and waits for them to end.

A trial is ``python -m runlog --dir ROOT run ... -- COMMAND`` in a process and
session of its own. Started as a new interpreter each time, a tiny trial's
wrapper spent about 25 ms of its ~45 ms in Python's start-up and runlog's
imports. So on Linux a sweep starts one *launcher* (this module run as a
program, a new interpreter like a trial's) that forks a trial on each request
and, while no request waits, imports what a trial would import. The child
makes itself what the new interpreter would have been at that point — its own
session, the trial's environment, working folder, stdin/stdout/stderr, signal
dispositions, ``sys.argv`` — and runs ``runlog.cli.entry()``: the same code
makes the same record. What differs: ``ps`` shows the launcher's command line
for a trial's wrapper, and its record's ``startup_s`` counts from the fork.
(A program's peak RSS still includes the wrapper's at its start, as with any
fork and exec, and the launcher is a wrapper's size.)

The launcher, not the sweep, is the trials' parent, so it reports each one's
end; it reaps a trial only once the sweep has read that end, so until then the
pid is not reused and the sweep's signals (an interrupt, the pruner's SIGTERM)
reach that trial or nothing. It sits in a session of its own and ignores
SIGINT, SIGTERM and SIGHUP (a Slurm job's SIGTERM reaches every process: the
launcher must live to report the trials' ends); when the sweep goes away it
reaps its trials as they end and exits. If it cannot be started, or is lost,
trials start as new interpreters again, as they do with ``RUNLOG_SWEEP_FORK=0``
and off Linux.

Waiting: a sweep sleeps until a trial ends (the launcher's reports, a pidfd of
a trial started as an interpreter), not in fixed 10 ms steps.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

ENV = "RUNLOG_SWEEP_FORK"  # "0": each trial a new interpreter
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# what `runlog run` imports after its start-up, imported once in the launcher (a name
# that is gone is skipped: this list only saves time)
PRELOAD = ("runlog.cli.runcmd", "runlog.resume", "runlog.mask", "runlog.fmt", "runlog.git",
           "runlog.report", "runlog.folder.latest", "runlog.folder.segments",
           "runlog.folder.trials", "runlog.folder.handoff", "runlog.facts.collect",
           "runlog.facts.env", "runlog.facts.machine", "runlog.facts.scheduler",
           "runlog.facts.resources", "runlog.facts.data", "runlog.facts.text", "ctypes",
           "resource")
ANSWER_S = 60.0  # a launcher that has not forked a trial by then is given up


# ------------------------------------------------------------------ the sweep's side


def start(launcher, argv: list[str], env: dict, quiet: bool):
    """A trial's process: ``(proc, interrupted)``, forked by ``launcher`` when it can, else a
    new interpreter (``proc`` has Popen's ``pid``, ``poll``, ``returncode``, ``send_signal``).
    ``interrupted``: a Ctrl-C came while it was forked (the caller stops the sweep)."""
    proc, interrupted = launcher.spawn(argv, env, quiet) if launcher else (None, False)
    if proc is not None:
        return proc, interrupted
    proc = subprocess.Popen([sys.executable, "-m", "runlog", *argv], env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if quiet else None,
                            stderr=subprocess.DEVNULL if quiet else None,
                            start_new_session=True)
    return proc, interrupted


def wait(procs: list, timeout: float | None) -> None:
    """Sleep until one of ``procs`` may have ended, or ``timeout`` seconds (None: no limit)."""
    fds, opened = set(), []
    for p in procs:
        if isinstance(p, Forked):
            if p.launcher.alive:
                fds.add(p.launcher.reports)
                continue
        else:
            try:
                fd = os.pidfd_open(p.pid)  # readable once it has ended (Linux 5.3)
                fds.add(fd)
                opened.append(fd)
                continue
            except (AttributeError, OSError):
                pass
        timeout = 0.01 if timeout is None else min(timeout, 0.01)  # no way to be woken
    try:
        if not fds:
            time.sleep(0.01 if timeout is None else timeout)
            return
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
    finally:
        for fd in opened:
            os.close(fd)


class Forked:
    """A trial forked by the launcher, with the part of Popen's face the sweep uses."""

    def __init__(self, launcher: "Launcher", pid: int):
        self.launcher, self.pid = launcher, pid
        self.returncode = None
        self.lost = False  # the launcher went away before saying how it ended

    def poll(self):
        if self.returncode is None:
            self.launcher.pump()
            if self.lost and not _exists(self.pid):
                self.returncode = 1  # unknown: the sweep takes the record's exit code
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped yet: the pid is still this trial's
            os.kill(self.pid, sig)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


class Launcher:
    """The launcher process of one sweep, as the sweep sees it."""

    @classmethod
    def open(cls):
        """A launcher (its process starts with the first trial), or None when trials start
        as new interpreters (``RUNLOG_SWEEP_FORK=0``, not Linux)."""
        if os.environ.get(ENV, "1").strip() == "0" or not sys.platform.startswith("linux") \
                or not sys.executable:
            return None
        return cls()

    def __init__(self):
        self.alive, self.started = False, False
        self.requests = self.reports = -1
        self.buf = b""
        self.replies: dict[int, Forked | None] = {}
        self.running: dict[int, Forked] = {}
        self.count = 0

    def begin(self) -> None:
        """Start the launcher process now (it boots while the sweep opens its study)."""
        if not self.started:
            try:
                self._start()
            except OSError:
                pass  # trials start as new interpreters

    def _start(self) -> None:
        self.started = True
        req_r, self.requests = os.pipe()
        self.reports, rep_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(req_r), str(rep_w)],
                stdin=subprocess.DEVNULL, pass_fds=(req_r, rep_w), start_new_session=True)
        except BaseException:
            for fd in (self.requests, self.reports):
                os.close(fd)
            raise
        finally:
            os.close(req_r)
            os.close(rep_w)
        os.set_blocking(self.reports, False)
        self.alive = True

    def spawn(self, argv: list[str], env: dict, quiet: bool):
        """``(Forked, interrupted)``, or ``(None, interrupted)`` when this launcher cannot.

        Between the request and the answer the sweep's signals wait (blocked), so an
        interrupt never leaves a trial forked that the sweep does not know of: it comes
        after, as ``interrupted``."""
        self.begin()
        if not self.alive:
            return None, False
        k = self.count = self.count + 1
        data = (json.dumps({"id": k, "argv": argv, "env": env, "cwd": os.getcwd(),
                            "quiet": quiet}) + "\n").encode()
        interrupted = False
        old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self._send(data)
            deadline = time.monotonic() + ANSWER_S
            while self.alive and k not in self.replies:
                if time.monotonic() > deadline:
                    self._lost()
                    break
                select.select([self.reports], [], [], 1.0)
                self.pump()
        finally:
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
            except KeyboardInterrupt:
                interrupted = True
        return self.replies.pop(k, None), interrupted

    def pump(self) -> None:
        """Read what the launcher said: forked pids, and the ends of trials (each then reaped)."""
        if not self.alive:
            return
        gone = False
        while not gone:
            try:
                data = os.read(self.reports, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            gone = not data
            self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "exit" in msg:
                proc = self.running.pop(msg["exit"], None)
                if proc is not None:
                    proc.returncode = msg["code"]
                self._send((json.dumps({"reap": msg["exit"]}) + "\n").encode())
            elif msg.get("pid") is not None:
                self.replies[msg["id"]] = self.running[msg["pid"]] = Forked(self, msg["pid"])
            else:  # it could not fork
                self.replies[msg["id"]] = None
        if gone:
            self._lost()

    def _send(self, data: bytes) -> None:
        try:
            while data and self.alive:
                data = data[os.write(self.requests, data):]
        except OSError:
            self._lost()

    def _lost(self) -> None:
        if not self.alive:
            return
        self.alive = False
        for proc in self.running.values():
            proc.lost = True
        self.running.clear()
        sys.stderr.write("runlog sweep: the trial launcher ended; the next trials start as new "
                         "processes\n")
        self.close()

    def close(self) -> None:
        """No more trials: the launcher exits once those it runs have ended."""
        self.alive = False
        for fd in (self.requests, self.reports):
            try:
                os.close(fd)
            except OSError:
                pass
        self.requests = self.reports = -1


# ------------------------------------------------------------------ the launcher's side


def serve(requests: int, reports: int) -> dict | None:
    """The launcher's loop. Returns None when it is done; in a forked trial it returns the
    trial's request, the process made ready to run it."""
    at_start = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    preload = list(PRELOAD)  # imported while no request waits: the first trial does not wait
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


def _preload(names: list[str]) -> None:
    """One more of the modules a trial would import (one at a time: a request waits little)."""
    try:
        __import__(names.pop(0))
    except ImportError:
        pass


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
