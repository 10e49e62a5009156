"""The signals of ``runlog run``: passed on to the program exactly once, and its death with ours.

SIGINT, SIGTERM and SIGHUP are blocked in ``runlog run`` and collected by its
pump. Whether the program got the same signal itself — a Ctrl-C at the
terminal, ``kill -TERM -- -PGID``, Slurm or systemd signalling every process
of the job — is told by a *sentinel*: a ``sleep`` in our process group with
the default dispositions. If the sentinel got the signal too, so did the
program, and it is not sent twice (a checkpointing SIGTERM handler is never
interrupted by a second SIGTERM); if only we got it (``kill PID``, a closed
terminal when we lead the session), it is forwarded. run.log says which.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ..folder.logfile import RUNLOG

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SI_KERNEL = 0x80  # si_code of a signal the kernel raised (a terminal's Ctrl-C, a hangup)


def which(name: str) -> str | None:
    """``shutil.which`` for a command word, without importing shutil (and with it bz2,
    lzma, fnmatch): ``runlog run``'s start-up is on every sweep trial."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    for d in os.get_exec_path():
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class Sentinel:
    """A ``sleep`` in our process group that shows whether a signal reached the group.

    A signal sent to the group, or to every process of a job, kills it (its
    dispositions are the defaults); one sent to us alone leaves it alive.
    """

    def __init__(self):
        self.pid = None
        self._spawn()

    def _spawn(self) -> None:
        sleep = which("sleep")
        if sleep is None:
            return
        try:
            self.pid = os.posix_spawn(sleep, ["sleep", "2147483647"], {}, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ], setsigdef=SIGNALS, setsigmask=())
        except OSError:
            self.pid = None

    def _hit(self, signo: int) -> bool:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid:
            return True
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            return False
        if fields.get("State", "").strip()[:1] in ("Z", "X"):
            return True
        pending = 0
        for key in ("SigPnd", "ShdPnd"):
            try:
                pending |= int(fields.get(key, "0").strip(), 16)
            except ValueError:
                pass
        return bool(pending & ((1 << (signo - 1)) | (1 << (signal.SIGKILL - 1))))

    def got(self, signo: int) -> bool | None:
        """Whether the group got ``signo`` too (None: no sentinel, cannot tell)."""
        if self.pid is None:
            return None
        # a job-wide kill may reach us a moment before the sentinel: look a few times
        deadline = time.monotonic() + 0.05
        while True:
            if self._hit(signo):
                self.stop()
                self._spawn()  # ready for the next signal
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.pid = None


def forward(proc, log, info, sentinel: Sentinel) -> None:
    """Send the program a signal we were sent, unless it got the same one itself."""
    name = signal.Signals(info.si_signo).name
    got = sentinel.got(info.si_signo)
    if got is None:  # no sentinel: a terminal's signal reached the whole group, another did not
        got = info.si_code == SI_KERNEL and not (info.si_signo == signal.SIGHUP and _leads_session())
    if got:
        log.line(RUNLOG, f"{name} reached the program directly; not sent again")
        return
    if proc.poll() is not None:
        log.line(RUNLOG, f"{name} from pid {info.si_pid} after the program had ended")
        return
    try:
        proc.send_signal(info.si_signo)
        log.line(RUNLOG, f"{name} from pid {info.si_pid}: forwarded to the program")
    except OSError:
        pass


def _leads_session() -> bool:
    try:
        return os.getsid(0) == os.getpid()
    except OSError:
        return False


def in_the_child(mask):
    """What the program's process does before it becomes the program: take back the
    signal mask runlog run had before it blocked its signals, and (Linux) get SIGTERM
    when runlog run dies — a kill -9 of the wrapper must not leave the program running
    unrecorded."""
    prctl = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (ImportError, OSError, AttributeError):
            prctl = None
    parent = os.getpid()
    PR_SET_PDEATHSIG = 1

    def set_in_child() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:  # we died between the fork and now
                os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    return set_in_child
