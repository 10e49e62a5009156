"""Process-wide changes of a run seen from real training scripts: forks, signal handlers, loggers."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from conftest import read_json, run_dirs, spawn, wait_for_line

ROOT = str(Path(__file__).resolve().parent.parent)

SLOW_GIT = """\
#!/bin/sh
# git, with `status` held until the file $HOLD_GIT_UNTIL exists (a big repository's slow status)
for a in "$@"; do
  if [ "$a" = status ]; then
    n=0
    while [ ! -e "$HOLD_GIT_UNTIL" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
  fi
done
exec {git} "$@"
"""


@pytest.fixture
def slow_git(tmp_path):
    """A PATH whose git answers `status` only once the returned file exists."""
    real = shutil.which("git")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "git").write_text(SLOW_GIT.format(git=real))
    (bin_ / "git").chmod(0o755)
    until = tmp_path / "git-may-answer"
    return {"PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "HOLD_GIT_UNTIL": str(until),
            "PYTHONPATH": ROOT}, until


FORKS_WHILE_GIT_IS_SLOW = """\
    import os, sys, runlog
    from runlog import active

    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    active.FORK_WAIT_S = 0.2
    runlog.start()
    fork()  # git's status is still held: this fork waits its while, then forks anyway
    active.FORK_WAIT_S = 600
    for _ in range(4):  # a Pool's other workers: the same slow thread is not waited for again
        fork()
    open(sys.argv[1], "w").close()
    print("forked")
    """


def test_forks_wait_once_for_a_slow_git_status_not_once_each(run_script, git_repo, slow_git):
    """A Pool(16) made while `git status` runs 30 s in a big repository: each of its forks
    waited the whole FORK_WAIT_S, seconds added to the script for nothing."""
    env, until = slow_git
    proc, _, r = run_script(FORKS_WHILE_GIT_IS_SLOW, str(until), cwd=git_repo, env=env)
    assert proc.stdout == "forked\n" and r["status"] == "finished" and r["git"], proc.stderr


# Lightning's _SignalConnector, as it decides (lightning/pytorch/trainer/connectors/signal_connector.py):
# a handler already there is kept beside its own; SLURM's requeue signal is taken only when free.
LIGHTNING_STYLE = """\
    import os, signal, sys, time, runlog
    run = runlog.start(git=False)

    def has_already_handler(signum):
        return signal.getsignal(signum) not in (None, signal.SIG_DFL)

    class Compose:
        def __init__(self, handlers):
            self.handlers = handlers
        def __call__(self, signum, frame):
            for h in self.handlers:
                if callable(h):
                    h(signum, frame)

    received = []
    def requeue(signum, frame):  # saves the checkpoint, `scontrol requeue`
        print("checkpoint saved, requeued", flush=True)
        sys.exit(0)
    def notifier(signum, frame):
        received.append(signum)

    if not has_already_handler(signal.SIGUSR1):
        signal.signal(signal.SIGUSR1, Compose([requeue]))
    sigterm = [notifier]
    if has_already_handler(signal.SIGTERM):
        sigterm.append(signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGTERM, Compose(sigterm))
    print("ready", flush=True)
    for _ in range(600):  # the training loop
        if received:
            print("stopped at the end of the step", flush=True)
            sys.exit(1)
        time.sleep(0.1)
    """


@pytest.mark.parametrize("sig, rc, said, status", [
    (signal.SIGUSR1, 0, "checkpoint saved, requeued", ("finished", None)),
    (signal.SIGTERM, 1, "stopped at the end of the step", ("killed", "SIGTERM"))])
def test_a_library_that_asks_whether_a_signal_is_handled_is_told_as_without_runlog(
        tmp_path, sig, rc, said, status):
    """runlog takes SIGUSR1 only while nobody handles it, and SIGTERM under whatever the script
    sets: a library asking getsignal() must not see runlog's handler, or Lightning skips its
    SLURM requeue handler (SIGUSR1 then killed the job) and chains runlog's into its SIGTERM
    handler (which then killed the process before its graceful stop)."""
    proc = spawn(tmp_path, LIGHTNING_STYLE)
    wait_for_line(proc, "ready")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == rc, err
    assert said in out
    (d,) = run_dirs(tmp_path / "logs")
    r = read_json(d / "run.json")
    assert (r["status"], r.get("signal")) == status


FAULTHANDLER_ON_USR1 = """\
    import faulthandler, os, signal, time, runlog
    stacks = open("stacks.txt", "w")
    # `kill -USR1 PID`: where is a hung job? (this thread only: faulthandler reads the others'
    # frames unlocked, and runlog's are still starting up here)
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=False)
    run = runlog.start(git=False)
    print("ready", flush=True)
    for _ in range(6000):
        if os.path.getsize("stacks.txt"):
            break
        time.sleep(0.01)
    print("went on", flush=True)
    """


def test_a_signal_faulthandler_dumps_on_is_left_to_it(tmp_path):
    """faulthandler.register() installs its handler outside Python (getsignal() still says
    SIG_DFL): runlog took SIGUSR1 from it, and the stack dump asked for killed the job."""
    proc = spawn(tmp_path, FAULTHANDLER_ON_USR1)
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "went on\n", err
    assert 's.py", line' in (tmp_path / "stacks.txt").read_text()
    (d,) = run_dirs(tmp_path / "logs")
    assert read_json(d / "run.json")["status"] == "finished"


def test_a_stdout_rewrapped_on_its_detached_buffer_is_logged(run_script):
    """`sys.stdout = io.TextIOWrapper(sys.stdout.detach(), encoding="utf-8")`, the other common
    way to change the console's encoding: detach() handed over the real buffer, and everything
    printed afterwards reached the terminal but never run.log."""
    proc, d, r = run_script("""\
        import io, sys, runlog
        runlog.start(git=False)
        print("before")
        sys.stdout = io.TextIOWrapper(sys.stdout.detach(), encoding="utf-8", line_buffering=True)
        print("after detach \\u00e9")
        sys.stderr = io.TextIOWrapper(sys.stderr.detach(), encoding="utf-8", line_buffering=True)
        print("on stderr", file=sys.stderr)
        """)
    assert proc.stdout == "before\nafter detach \u00e9\n" and r["status"] == "finished", proc.stderr
    log = (d / "run.log").read_text()
    assert " OUT     after detach \u00e9\n" in log and " ERR     on stderr\n" in log


def test_the_report_reaches_a_stderr_rewrapped_on_its_detached_buffer(run_script):
    """The report went to the stderr of start(), detached by then: it was lost."""
    proc, d, r = run_script("""\
        import io, sys, runlog
        runlog.start(git=False)
        sys.stderr = io.TextIOWrapper(sys.stderr.detach(), encoding="utf-8", line_buffering=True)
        raise RuntimeError("boom")
        """, rc=1)
    assert r["status"] == "failed"
    assert "RuntimeError: boom" in proc.stderr and proc.stderr.count("## Run ") == 1, proc.stderr


def test_a_thread_id_the_os_gave_again_is_not_waited_for_at_each_fork(run_script, git_repo):
    """A returned runlog thread is waited for until the OS lists it no more; should its id
    be given to a thread of the script's before the first fork (Linux reuses thread ids),
    every fork waited the whole FORK_WAIT_S for it."""
    proc, _, r = run_script("""\
        import os, threading, runlog
        from runlog import active

        def fork():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)

        runlog.start()
        fork()  # runlog's threads are gone
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)  # the script's own thread, with a reused id
        t.start()
        active._ending[t.native_id] = None
        active.FORK_WAIT_S = 0.2
        fork()
        active.FORK_WAIT_S = 600
        fork()
        stop.set()
        print("forked")
        """, cwd=git_repo, env={"PYTHONPATH": ROOT})
    assert proc.stdout == "forked\n" and r["status"] == "finished", proc.stderr
