"""lifecycle.py: the one status table, and one record for a script run directly or by `runlog run`."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import clean_env, git_out, read_json, run_dirs, wait_for_line, write_script
from runlog.outcome import Outcome, status_of


@pytest.mark.parametrize("code, signum, status", [
    (0, None, "finished"), (1, None, "failed"), (3, None, "failed"), (255, None, "failed"),
    (130, None, "interrupted"), (143, None, "failed"),  # a code alone is no signal seen
    (130, 2, "interrupted"), (0, 2, "interrupted"), (143, 15, "killed"), (0, 15, "killed"),
    (129, 1, "killed"), (137, 9, "killed"),
])
def test_status_of(code, signum, status):
    assert status_of(code, signum) == status


def raised(exc: BaseException) -> Outcome:
    o = Outcome()
    try:
        raise exc
    except BaseException as e:
        o.exception(type(e), e, e.__traceback__)
    return o


def ended(**told) -> Outcome:
    o = Outcome()
    if "exit" in told:
        o.exited(told["exit"])
    if "signal" in told:
        o.signalled(*told["signal"])
    if "process" in told:
        o.process_ended(*told["process"])
    return o


TABLE = {  # what the run was told -> (status, exit code, signal)
    "nothing": ({}, ("finished", 0, None)),
    "sys.exit()": ({"exit": None}, ("finished", 0, None)),
    "sys.exit(0)": ({"exit": 0}, ("finished", 0, None)),
    "sys.exit(False)": ({"exit": False}, ("finished", 0, None)),
    "sys.exit(3)": ({"exit": 3}, ("failed", 3, None)),
    "sys.exit(True)": ({"exit": True}, ("failed", 1, None)),
    "sys.exit('text')": ({"exit": "text"}, ("failed", 1, None)),
    "SIGTERM": ({"signal": (15,)}, ("killed", 143, "SIGTERM")),
    "SIGHUP": ({"signal": (1,)}, ("killed", 129, "SIGHUP")),
    "SIGINT": ({"signal": (2,)}, ("interrupted", 130, "SIGINT")),
    "SIGTERM handled, exit 0": ({"signal": (15, True), "exit": 0}, ("killed", 0, "SIGTERM")),
    "SIGTERM handled, exit 4": ({"signal": (15, True), "exit": 4}, ("killed", 4, "SIGTERM")),
    "process 0": ({"process": (0, [], [])}, ("finished", 0, None)),
    "process 3": ({"process": (3, [], [])}, ("failed", 3, None)),
    "process 130": ({"process": (130, [], [])}, ("interrupted", 130, None)),
    "process -15": ({"process": (-15, [], [])}, ("killed", 143, "SIGTERM")),
    "process -15 after SIGTERM": ({"process": (-15, [15], [])}, ("killed", 143, "SIGTERM")),
    "process -9": ({"process": (-9, [], [])}, ("killed", 137, "SIGKILL")),
    "process -2 after SIGINT": ({"process": (-2, [2], [])}, ("interrupted", 130, "SIGINT")),
    "process 0 after SIGTERM": ({"process": (0, [15], [])}, ("killed", 0, "SIGTERM")),
    "process 1 after SIGINT": ({"process": (1, [2], [])}, ("interrupted", 1, "SIGINT")),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_outcome_resolves_through_the_one_table(case):
    told, expected = TABLE[case]
    assert ended(**told).resolve() == expected


def test_an_exception_fails_with_its_error():
    o = raised(RuntimeError("diverged"))
    assert o.resolve() == ("failed", 1, None)
    assert o.error["type"] == "RuntimeError" and o.error["message"] == "diverged"
    assert o.error["where"].startswith("test_lifecycle.py:") and o.error["where"].endswith("in raised")
    assert o.error["traceback"][-1] == "RuntimeError: diverged"


def test_keyboard_interrupt_is_interrupted_130():
    assert raised(KeyboardInterrupt()).resolve() == ("interrupted", 130, None)


def test_an_exception_then_an_exit_code_keeps_the_code():
    o = raised(ValueError("x"))
    o.exited(3)
    assert o.resolve() == ("failed", 3, None) and o.error["type"] == "ValueError"


def test_exit_with_text_is_a_systemexit_error():
    o = ended(exit="no data found")
    o.resolve()
    assert o.error == {"type": "SystemExit", "message": "no data found", "where": None,
                       "traceback": []}


def test_a_failed_program_error_from_its_last_stderr_lines():
    o = ended(process=(3, [], ["Traceback (most recent call last):", '  File "x.py"',
                               "pkg.errors.DataError: no rows"]))
    assert o.resolve() == ("failed", 3, None)
    assert (o.error["type"], o.error["message"]) == ("DataError", "no rows")
    o = ended(process=(2, [], ["make: *** [all] Error 2"]))
    assert (o.error["type"], o.error["message"]) == ("ExitCode", "exited with code 2")
    for quiet in ((130, [], ["^C"]), (1, [15], ["Terminated"]), (0, [], ["Error: ignored"])):
        assert ended(process=quiet).error is None


# ---------------------------------------------------------------- direct or `runlog run`: one record

SCRIPT = """\
    import argparse, sys, time
    import runlog
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--code", type=int, default=0)
    p.add_argument("--wait", action="store_true")
    a = p.parse_args()
    runlog.start(note="in code")
    if a.wait:
        print("ready", flush=True)
        while True:  # a training loop: Python runs between steps
            time.sleep(0.01)
    if a.code:
        sys.exit(a.code)
    """

WAYS = {
    "direct": [sys.executable, "s.py"],
    "runlog run": [sys.executable, "-m", "runlog", "run", "--", sys.executable, "s.py"],
}

SCENARIOS = {  # argv, the signal sent once it is ready, and what both records must say
    "finished": (["--note", "typed", "--lr", "0.2"], None,
                 ("finished", 0, None, {"lr": 0.2, "code": 0, "wait": False}, ["lr"])),
    "failed": (["--lr", "0.2", "--note", "typed", "--code", "3"], None,
               ("failed", 3, None, {"lr": 0.2, "code": 3, "wait": False}, ["code", "lr"])),
    "killed": (["--note=typed", "--wait"], signal.SIGTERM,
               ("killed", 143, "SIGTERM", {"lr": 0.1, "code": 0, "wait": True}, ["wait"])),
    "exit -1": (["--note", "typed", "--code=-1"], None,  # the process exits with 255
                ("failed", 255, None, {"lr": 0.1, "code": -1, "wait": False}, ["code"])),
}


def record_of(repo, way: str, args: list[str], sig=None) -> dict:
    before = run_dirs(repo / "logs")
    proc = subprocess.Popen(WAYS[way] + args, cwd=repo, env=clean_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if sig is not None:
        wait_for_line(proc, "ready")
        proc.send_signal(sig)  # to `runlog run` itself: it passes it on
    out, err = proc.communicate(timeout=60)
    (run_dir,) = run_dirs(repo / "logs") - before
    r = read_json(run_dir / "run.json")
    assert r["status"] != "running", err
    return r


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_same_record_run_directly_or_by_runlog_run(git_repo, scenario):
    write_script(git_repo, SCRIPT)
    args, sig, (status, code, sig_name, values, given) = SCENARIOS[scenario]
    records = {way: record_of(git_repo, way, args, sig) for way in WAYS}
    for way, r in records.items():
        got = (r["note"], r["status"], r["exit_code"], r.get("signal"), r["args"],
               sorted(r["args_given"]))
        assert got == ("typed; in code", status, code, sig_name, values, given), way
    direct, wrapped = records["direct"], records["runlog run"]
    assert direct["script_path"] == wrapped["script_path"] == str((git_repo / "s.py").resolve())
    assert direct["git"]["commit"] == wrapped["git"]["commit"]
    without_note = [a for a in args if "typed" not in a and a != "--note"]
    assert direct["command"] == [os.path.basename(sys.executable), "s.py", *without_note]


def test_ctrl_c_is_interrupted_130_either_way(git_repo):
    write_script(git_repo, SCRIPT)
    for way in WAYS:
        r = record_of(git_repo, way, ["--wait", "--note", "typed"], signal.SIGINT)
        assert (r["note"], r["status"], r["exit_code"]) == ("typed; in code", "interrupted", 130), way


@pytest.mark.parametrize("status, expected", [(-1, ("failed", 255, None)),
                                              (256, ("finished", 0, None))])
def test_an_exit_status_is_recorded_as_the_process_exits(status, expected):
    assert ended(exit=status).resolve() == expected


# ---------------------------------------------------------------- signals reach the main thread

FSMONITOR = """\
#!/bin/sh
mkdir "{d}/once" 2>/dev/null || exit 1  # only the first git call waits
echo started > "{d}/started"
cat "{d}/go" > /dev/null
exit 1  # no answer: git looks at the files itself
"""


def blocked_signals(pid: int) -> dict[int, set[int]]:
    """Each thread of a process and the signals it blocks, as the kernel has them."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            mask = int(next(ln for ln in f if ln.startswith("SigBlk:")).split()[1], 16)
        out[int(tid)] = {n for n in range(1, 65) if mask >> (n - 1) & 1}
    return out


def settled_masks(pid: int) -> dict[int, set[int]]:
    """The blocked signals of each thread once all of them sleep: a thread that has just
    forked blocks every signal for a moment (glibc, vfork), until it runs again."""
    deadline = time.monotonic() + 60
    while True:
        states = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states[tid] = f.read().rpartition(")")[2].split()[0]
        if set(states.values()) == {"S"}:
            return blocked_signals(pid)
        if time.monotonic() > deadline:
            pytest.fail(f"the threads never all slept: {states}")
        time.sleep(0.001)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc")
def test_the_git_thread_leaves_the_run_signals_to_the_main_thread(git_repo, tmp_path_factory):
    d = tmp_path_factory.mktemp("fsmonitor")  # git's own hook holds the git thread in `git status`
    os.mkfifo(d / "started")
    os.mkfifo(d / "go")
    (d / "hook").write_text(FSMONITOR.format(d=d))
    (d / "hook").chmod(0o755)
    git_out(git_repo, "config", "core.fsmonitor", str(d / "hook"))
    write_script(git_repo, "import signal, runlog\nrunlog.start()\nsignal.pause()\n")
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=git_repo, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = False
    try:
        fd = os.open(d / "started", os.O_RDONLY | os.O_NONBLOCK)
        try:
            started = bool(select.select([fd], [], [], 60)[0]) and os.read(fd, 100) == b"started\n"
        finally:
            os.close(fd)
        if not started:
            pytest.fail("git never ran the fsmonitor hook")
        threads = settled_masks(proc.pid)  # the git thread waits for `git status` now
    finally:
        if started:
            with open(d / "go", "w"):  # the hook, and so git, may end
                pass
        proc.kill()
        proc.wait()
    others = [blocked for tid, blocked in threads.items() if tid != proc.pid]
    if not others:
        pytest.fail("runlog's git thread was not found")
    for blocked in others:
        assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= blocked
