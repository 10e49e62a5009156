"""How a sweep starts its trials' ``runlog run`` processes, and waits for them to end.

A trial is ``python -m runlog --dir ROOT run ... -- COMMAND`` in a process and
session of its own. Started as a new interpreter each time, a tiny trial's
wrapper spent about 25 ms of its ~45 ms in Python's start-up and runlog's
imports. So on Linux a sweep starts one *launcher* (``sweep_launcher``, a new
interpreter like a trial's) that forks a trial on each request and, while no
request waits, imports what a trial would import. The child makes itself what
the new interpreter would have been at that point — its own session, the
trial's environment, working folder, stdin/stdout/stderr, signal dispositions,
``sys.argv`` — and runs ``runlog.cli.entry()``: the same code makes the same
record. What differs: ``ps`` shows the launcher's command line
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
a trial started as an interpreter) or a signal comes (``Interrupts``), not in
fixed 10 ms steps.

Signals: while a sweep runs, a Ctrl-C or SIGTERM is only *noted* (``Interrupts``:
a handler that does nothing, and a wake-up pipe the wait polls); the sweep looks
at it between two trials' bookkeeping, never in the middle of one. Raised as
KeyboardInterrupt at an arbitrary bytecode, it had left a trial started but not
noted, ended but not collected, or collected but not told to Optuna.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

LAUNCHER = "runlog.cli.sweep_launcher"  # run as a program (-m), never imported from here
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # the launcher ignores them
# what stops a sweep (noted by Interrupts): a Ctrl-C, SIGTERM, and the hangup of its terminal
# (its trials, in sessions of their own, would not hear it) unless it runs under nohup
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

ENV = "RUNLOG_SWEEP_FORK"  # "0": each trial a new interpreter
ANSWER_S = 60.0  # a launcher that has not forked a trial by then is given up


class Interrupts:
    """SIGINT and SIGTERM noted while the sweep runs, never raised (``with Interrupts() as
    i:``): each one's number is written to a pipe (``signal.set_wakeup_fd``) that ``wait``
    polls, and ``new()`` reads them at a point where the sweep can act on them."""

    def __init__(self):
        self.fd = -1  # the pipe's read end: readable once a signal came
        self._w, self._old, self._old_fd = -1, {}, -1

    def __enter__(self) -> "Interrupts":
        self.fd, self._w = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._w, False)
        self._old_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, _noted) for s in STOPS
                     if s != signal.SIGHUP or signal.getsignal(s) != signal.SIG_IGN}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(self._old_fd)
        for fd in (self.fd, self._w):
            os.close(fd)
        self.fd = self._w = -1

    def new(self) -> list[int]:
        """The signals that came since the last call (the pipe is what says so: Python runs
        the handler itself a few bytecodes late)."""
        got = b""
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            got += data
        return list(got)


def _noted(signum, frame) -> None:
    """The handler: nothing (the wake-up pipe has the signal); no KeyboardInterrupt."""


def start(launcher, argv: list[str], env: dict, quiet: bool):
    """A trial's process, forked by ``launcher`` when it can, else a new interpreter (it has
    Popen's ``pid``, ``poll``, ``returncode``, ``send_signal``)."""
    proc = launcher.spawn(argv, env, quiet) if launcher else None
    if proc is not None:
        return proc
    return subprocess.Popen([sys.executable, "-m", "runlog", *argv], env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if quiet else None,
                            stderr=subprocess.DEVNULL if quiet else None,
                            start_new_session=True)


def wait(procs: list, timeout: float | None, wake: int = -1) -> None:
    """Sleep until one of ``procs`` may have ended, ``wake`` is readable (``Interrupts.fd``)
    or ``timeout`` seconds (None: no limit)."""
    fds, opened = {wake} if wake >= 0 else set(), []
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
        if not fds:  # (a signal cuts no sleep short: Python resumes it)
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
                [sys.executable, "-m", LAUNCHER, str(req_r), str(rep_w)],
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
        """A ``Forked`` trial, or None when this launcher cannot fork it. (The sweep's
        signals are ``Interrupts``: none cuts the wait for the answer short, so no trial is
        forked that the sweep does not know of.)"""
        self.begin()
        if not self.alive:
            return None
        k = self.count = self.count + 1
        self._send((json.dumps({"id": k, "argv": argv, "env": env, "cwd": os.getcwd(),
                                "quiet": quiet}) + "\n").encode())
        deadline = time.monotonic() + ANSWER_S
        while self.alive and k not in self.replies:
            if time.monotonic() > deadline:
                self._lost()
                break
            select.select([self.reports], [], [], 1.0)
            self.pump()
        return self.replies.pop(k, None)

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
