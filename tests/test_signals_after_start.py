"""Signal handlers set by a script that imports ``signal`` only after ``start()``, as the README's
``import runlog; runlog.start()`` at the top, then the heavy imports (torch, Lightning), does.

runlog wraps the C module's ``_signal.signal``/``getsignal``, which the ``signal`` module's
functions call: the wrap holds whenever ``signal`` is imported. Real scripts, real signals."""

from __future__ import annotations

import signal

import pytest
from conftest import read_json, run_dirs, spawn, wait_for_line

# Lightning's _SignalConnector (lightning/pytorch/trainer/connectors/signal_connector.py), imported
# after start(): SLURM's requeue signal is taken only when getsignal() says it is free; a SIGTERM
# handler already there is kept beside its own; at teardown it sets back what getsignal() told it.
LIGHTNING_AFTER_START = """\
    import runlog
    run = runlog.start(git=False)
    import os, signal, sys, time  # the heavy imports, after start()

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
        open("requeued", "w").close()
        print("checkpoint saved, requeued", flush=True)
        if sys.argv[1] == "exit":
            sys.exit(0)
    def notifier(signum, frame):
        received.append(signum)

    print("usr1 free:", not has_already_handler(signal.SIGUSR1),
          "term free:", not has_already_handler(signal.SIGTERM), flush=True)
    originals = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)}
    if not has_already_handler(signal.SIGUSR1):
        signal.signal(signal.SIGUSR1, Compose([requeue]))
    sigterm = [notifier]
    if has_already_handler(signal.SIGTERM):
        sigterm.append(signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGTERM, Compose(sigterm))
    print("ready", flush=True)
    for _ in range(6000):  # trainer.fit()
        if received:
            print("stopped at the end of the step", flush=True)
            break
        if sys.argv[1] == "teardown" and os.path.exists("requeued"):
            break
        time.sleep(0.01)
    for s, h in originals.items():  # teardown: the handlers as they were
        signal.signal(s, h)
    print("torn down", flush=True)
    if sys.argv[1] == "teardown":
        time.sleep(60)  # the script goes on (a test loop): Slurm's warning may still come
    """


def lines_until(proc, text: str) -> list[str]:
    """The lines the script printed up to the one holding ``text`` (it then waits for a signal)."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never printed; stderr: {proc.stderr.read()}")


def _record(tmp_path) -> dict:
    (d,) = run_dirs(tmp_path / "logs")
    return read_json(d / "run.json")


def test_lightning_imported_after_start_takes_slurms_usr1_and_the_job_requeues(tmp_path):
    """runlog's SIGUSR1 handler (there only while nobody handles it) was shown by getsignal()
    to a `signal` imported after start(): Lightning skipped its requeue handler, and Slurm's
    warning killed the job with no checkpoint."""
    proc = spawn(tmp_path, LIGHTNING_AFTER_START, "exit")
    assert lines_until(proc, "ready") == ["usr1 free: True term free: True\n", "ready\n"]
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "checkpoint saved, requeued\n", out  # wait_for_line read the first two lines
    assert (tmp_path / "requeued").exists()
    r = _record(tmp_path)
    assert (r["status"], r.get("signal"), r["exit_code"]) == ("finished", None, 0)


def test_a_requeue_then_slurms_sigterm_ends_the_run_killed(tmp_path):
    """The requeue handler returns, training goes on; the SIGTERM of the requeue then reaches
    the script's handler through runlog's, which marks the run killed."""
    proc = spawn(tmp_path, LIGHTNING_AFTER_START, "continue")
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGUSR1)
    wait_for_line(proc, "requeued")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped at the end of the step" in out, err
    r = _record(tmp_path)
    assert (r["status"], r["signal"], r["exit_code"]) == ("killed", "SIGTERM", 0)


def test_a_usr1_after_lightnings_teardown_still_ends_the_run_killed(tmp_path):
    """Lightning's teardown sets SIGUSR1 back to what getsignal() said (SIG_DFL): runlog's
    handler is put back under it, so a later warning is still recorded before it kills."""
    proc = spawn(tmp_path, LIGHTNING_AFTER_START, "teardown")
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGUSR1)
    wait_for_line(proc, "torn down")
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGUSR1, err
    r = _record(tmp_path)
    assert (r["status"], r["signal"]) == ("killed", "SIGUSR1")
    assert err.count("## Run ") == 1


SIGTERM_AFTER_START = """\
    import runlog
    run = runlog.start(git=False)
    import signal, sys, time

    def on_term(signum, frame):  # a checkpoint on preemption
        print("checkpoint saved", flush=True)
        sys.exit(0)
    first = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGTERM, on_term)
    print(first is signal.SIG_DFL, previous is signal.SIG_DFL, signal.getsignal(signal.SIGTERM) is on_term)
    if sys.argv[1] == "restore":  # the handler it got from getsignal, set back
        print(signal.signal(signal.SIGTERM, first) is on_term, signal.getsignal(signal.SIGTERM) is first)
    print("ready", flush=True)
    time.sleep(60)
    """


@pytest.mark.parametrize("how, rc, said, record", [
    ("own", 0, "True True True\ncheckpoint saved\n", ("killed", "SIGTERM", 0)),
    ("restore", -signal.SIGTERM, "True True True\nTrue True\n", ("killed", "SIGTERM", 128 + 15))])
def test_a_sigterm_handler_set_after_start_with_signal_imported_after_it(tmp_path, how, rc, said, record):
    """The script's SIGTERM handler is called from runlog's, the run ends killed; SIG_DFL set
    back (what getsignal() gave) still ends it killed, then the process dies by the signal."""
    proc = spawn(tmp_path, SIGTERM_AFTER_START, how)
    out = lines_until(proc, "ready")[:-1]
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == rc, err
    assert "".join(out) + rest == said
    r = _record(tmp_path)
    assert (r["status"], r["signal"], r["exit_code"]) == record
    assert err.count("## Run ") == 1


def test_signals_the_script_ignores_after_start_stay_ignored(tmp_path):
    proc = spawn(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN,
              signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN, flush=True)
        print("ready", flush=True)
        os.kill(os.getpid(), signal.SIGUSR1)  # in the same process: delivered before kill() returns
        while not os.path.exists("go"):
            time.sleep(0.01)
        print("went on", flush=True)
        """)
    assert lines_until(proc, "ready") == ["True True\n", "ready\n"]
    proc.send_signal(signal.SIGTERM)
    (tmp_path / "go").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "went on\n", err
    assert _record(tmp_path)["status"] == "finished"


def test_asyncio_add_signal_handler_after_start(tmp_path):
    """asyncio's add_signal_handler sets its handler through signal.signal(): the loop's
    callback runs, and the run ends killed."""
    proc = spawn(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        import asyncio, signal

        async def main():
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            print("ready", flush=True)
            await stop.wait()
            print("stopped by the loop", flush=True)

        asyncio.run(main())
        """)
    wait_for_line(proc, "ready")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "stopped by the loop\n", err
    r = _record(tmp_path)
    assert (r["status"], r["signal"], r["exit_code"]) == ("killed", "SIGTERM", 0)


def test_a_forked_child_has_python_s_signal_functions_and_the_scripts_handler(run_script):
    """In a forked worker (no run of its own) the signal functions are Python's own again and
    the script's handler is the one installed: a SIGTERM there is the script's business."""
    proc, d, r = run_script("""\
        import runlog
        run = runlog.start(git=False)
        import _signal, os, signal

        def on_term(signum, frame):
            os.write(1, b"worker's handler\\n")
            os._exit(3)
        signal.signal(signal.SIGTERM, on_term)
        pid = os.fork()
        if pid == 0:
            plain = type(_signal.signal) is type(len) and type(_signal.getsignal) is type(len)
            os.write(1, f"plain: {plain} {signal.getsignal(signal.SIGTERM) is on_term} "
                        f"{signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL}\\n".encode())
            os.kill(os.getpid(), signal.SIGTERM)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("worker exit", os.waitstatus_to_exitcode(status))
        print(signal.getsignal(signal.SIGTERM) is on_term)
        """)
    assert proc.stdout == "plain: True True True\nworker's handler\nworker exit 3\nTrue\n", proc.stderr
    assert r["status"] == "finished" and r.get("signal") is None


def test_faulthandler_registered_after_start_keeps_its_signal(tmp_path):
    """faulthandler.register() after start() (a stack dump on `kill -USR1`) replaces runlog's
    handler outside Python: the dump is made and the run goes on, as without runlog."""
    proc = spawn(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        import faulthandler, os, signal, time
        stacks = open("stacks.txt", "w")
        faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=False)
        print(signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL, flush=True)
        print("ready", flush=True)
        for _ in range(6000):
            if os.path.getsize("stacks.txt"):
                break
            time.sleep(0.01)
        print("went on", flush=True)
        """)
    assert lines_until(proc, "ready") == ["True\n", "ready\n"]
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "went on\n", err
    assert 's.py", line' in (tmp_path / "stacks.txt").read_text()
    assert _record(tmp_path)["status"] == "finished"


def test_the_wrap_is_undone_with_the_run(run_script):
    """After run.finish() the C module's functions are Python's own again; what the script
    set stays, runlog's own handlers go."""
    proc, d, r = run_script("""\
        import runlog
        run = runlog.start(git=False)
        import _signal, signal

        def mine(*a):
            pass
        signal.signal(signal.SIGTERM, mine)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        run.finish()
        print(type(_signal.signal) is type(len), type(_signal.getsignal) is type(len))
        print(signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGHUP) is signal.SIG_DFL,
              signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL)
        """)
    assert proc.stdout == "True True\nTrue True True\n", proc.stderr
    assert r["status"] == "finished"
