"""`runlog tail` against a log that another process is still writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from runlog.cli import main as cli

from cli_helpers import add_mess
from conftest import clean_env

RUNLOG = [sys.executable, "-m", "runlog"]
WRITER = """\
import logging, runlog, time
run = runlog.start(git=False, console=False)
for i in range(20):
    logging.info("tick %d", i)
    if i == 10:
        logging.warning("halfway")
    run.metric("i", i)
    time.sleep(0.1)
"""


def gated(writer: str, *ticks: int) -> str:
    """The writer, stopping after each of these ticks: it prints "at N" and waits until
    told to go on (a line on its stdin)."""
    return writer.replace("import logging,", "import sys, logging,").replace(
        "    if i == 10:", f"    if i in {ticks!r}:\n        print('at', i, flush=True)\n"
                          "        sys.stdin.readline()\n    if i == 10:")


def start_gated(cwd, source: str) -> subprocess.Popen:
    (cwd / "w.py").write_text(source)
    return subprocess.Popen([sys.executable, "w.py"], cwd=cwd, env=clean_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def go_on(writer: subprocess.Popen) -> None:
    writer.stdin.write("go on\n")
    writer.stdin.flush()


def test_follows_a_growing_log_and_exits_when_the_run_ends(project):
    writer = start_gated(project.path, gated(WRITER, 0, 5))
    assert writer.stdout.readline().strip() == "at 0"  # the run is there, waiting
    tail = subprocess.Popen([*RUNLOG, "--dir", str(project.logs), "tail", "-n", "1"],
                            cwd=project.path, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # filtered followers of the same run, side by side
    filtered = {opts: subprocess.Popen([*RUNLOG, "--dir", str(project.logs), "tail", *opts],
                                       env=clean_env(), stdout=subprocess.PIPE, text=True)
                for opts in (("-g", r"tick 1[3-5]$"), ("--level", "WARNING"))}
    lines = [tail.stdout.readline().rstrip("\n")]  # the last line so far: now it follows
    assert "tick 0" in lines[0] or "at 0" in lines[0], lines
    go_on(writer)
    seen_while_running = False
    for line in tail.stdout:
        lines.append(line.rstrip("\n"))
        if "INFO    tick 5" in line:
            seen_while_running = writer.poll() is None  # the writer waits for us after tick 5
            go_on(writer)
    tail.wait(timeout=30)
    writer.communicate(timeout=30)
    assert seen_while_running
    assert tail.returncode == 0
    ticks = [int(ln.split()[-1]) for ln in lines if "INFO    tick" in ln]
    assert ticks[-19:] == list(range(1, 20))  # every line written after it started following
    assert lines[-1].startswith("-- run ") and " finished after " in lines[-1]
    assert "i 19" in lines[-1]  # final metrics
    out = {opts: p.communicate(timeout=30)[0].splitlines() for opts, p in filtered.items()}
    assert [ln.split()[-1] for ln in out[("-g", r"tick 1[3-5]$")][:-1]] == ["13", "14", "15"]
    assert len(out[("--level", "WARNING")]) == 2 and "WARNING halfway" in out[("--level",
                                                                                "WARNING")][0]
    assert all(o[-1] == lines[-1] for o in out.values())  # the end is always said


def test_context_grep_level_and_no_follow(project, capsys):
    (project.path / "w.py").write_text(WRITER.replace("time.sleep(0.1)", "pass"))
    subprocess.run([sys.executable, "w.py"], cwd=project.path, env=clean_env(), check=True)
    assert cli(project.cli("tail", "--no-follow", "-n", "3")) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "tick 19" in out[1] and "run finished" in out[2]
    assert cli(project.cli("tail", "--no-follow", "-g", r"tick 1[0-2]$", "-n", "10")) == 0
    assert [ln.split()[-1] for ln in capsys.readouterr().out.splitlines()] == ["10", "11", "12"]
    assert cli(project.cli("tail", "--no-follow", "--level", "warning")) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "WARNING halfway" in out[0]
    assert cli(project.cli("tail", "--no-follow", "--level", "LOUD")) == 1
    assert "unknown level 'LOUD'" in capsys.readouterr().err
    assert cli(project.cli("tail", "--no-follow", "-g", "(")) == 1
    assert "bad --grep pattern" in capsys.readouterr().err


def test_waits_for_a_run(project):
    (project.path / "w.py").write_text(WRITER.replace("range(20)", "range(3)"))
    tail = subprocess.Popen([*RUNLOG, "--dir", str(project.logs), "tail"], cwd=project.path,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    said = tail.stderr.readline()  # it says so once it has looked and found no run
    assert "waiting for a run" in said
    assert tail.poll() is None  # still waiting: there is no run yet
    subprocess.run([sys.executable, "w.py"], cwd=project.path, env=clean_env(), check=True)
    out, err = tail.communicate(timeout=30)
    assert err == ""
    assert "tick 2" in out and "-- run " in out


def test_closed_pipe_ends_quietly(project):
    # a writer that goes on until killed, so the following tail always has more to write
    (project.path / "w.py").write_text(WRITER.replace("range(20)", "range(10**6)").replace(
        "time.sleep(0.1)", "time.sleep(0.02)").replace(
        "if i == 10:", "if i == 3:\n        print('ready', flush=True)\n    if i == 10:"))
    writer = subprocess.Popen([sys.executable, "w.py"], cwd=project.path, env=clean_env(),
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"  # the run and its log lines are there
    env = clean_env()
    for cmd, shown in ((f"{sys.executable} -m runlog --dir {project.logs} tail --no-follow -n 50 "
                        "| head -1", 1),
                       (f"{sys.executable} -m runlog --dir {project.logs} tail -n 0 | head -3", 3)):
        p = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True,
                           text=True, env=env, timeout=60)
        assert p.stderr == "", p.stderr
        assert len(p.stdout.splitlines()) == shown
    writer.kill()
    writer.wait()
    assert os.path.exists(project.logs)


def test_a_killed_run_ends_the_tail_as_lost(project):
    writer = start_gated(project.path, gated(WRITER.replace("range(20)", "range(1000)"), 3))
    assert writer.stdout.readline().strip() == "at 3"  # and it waits, tick 3 its last tick
    tail = subprocess.Popen([*RUNLOG, "--dir", str(project.logs), "tail", "-n", "2"],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in tail.stdout:  # the context: the paused run's last lines
        seen.append(line)
        if "INFO    tick 3" in line:
            break
    assert "tick 3" in "".join(seen), tail.communicate()
    go_on(writer)
    for line in tail.stdout:  # following while the run goes on: a tick logged after the context
        seen.append(line)
        if "INFO    tick 5" in line:
            break
    assert "tick 5" in "".join(seen) and tail.poll() is None, tail.communicate()
    writer.kill()
    writer.wait()
    tail.wait(timeout=30)
    # read through the same buffered file the loops above read from (communicate() reads the
    # pipe itself and would miss lines those loops had already buffered)
    rest, err = tail.stdout.read(), tail.stderr.read()
    out = "".join(seen) + rest
    lines = out.splitlines()
    assert tail.returncode == 0 and err == ""
    assert lines[-1].startswith(f"-- run {project.ids()[0]} lost after ") and " · i " in lines[-1]
    assert lines[-2] == (project.logs / project.ids()[0] / "run.log").read_text().splitlines()[-1]
    ticks = [int(ln.split()[-1]) for ln in lines if "INFO    tick" in ln]
    assert ticks == list(range(ticks[0], ticks[-1] + 1)) and ticks[0] >= 2  # context, then every line


def test_among_foreign_files_and_broken_runs(project, capsys):
    (project.path / "w.py").write_text(WRITER.replace("range(20)", "range(2)"))
    subprocess.run([sys.executable, "w.py"], cwd=project.path, env=clean_env(), check=True)
    project.logs.joinpath("zzz-not-a-run").mkdir()  # sorts after every id
    add_mess(project.logs)
    assert cli(project.cli("tail", "--no-follow", "-n", "1")) == 0
    out = capsys.readouterr()
    assert "run finished" in out.out and out.err == ""  # the broken folders are older
    assert cli(project.cli("tail", "-n", "1")) == 0  # following: the run is over, it says so
    assert capsys.readouterr().out.splitlines()[-1].startswith("-- run ")


def test_no_log_directory(tmp_path, capsys):
    assert cli(["--dir", str(tmp_path / "nowhere"), "tail", "--no-follow"]) == 1
    assert capsys.readouterr().err == (f"runlog: error: no log directory "
                                       f"'{tmp_path / 'nowhere'}' (use --dir or RUNLOG_DIR)\n")


def test_level_error_shows_a_crash_traceback(project):
    # a crash is written to stderr; its traceback (chained ones too) ranks as an error
    (project.path / "crash.py").write_text(
        "import runlog, logging\nrunlog.start(git=False)\nlogging.warning('a warning')\n"
        "try:\n    {}['k']\nexcept KeyError:\n    raise ValueError('bad config')\n")
    p = subprocess.run([sys.executable, "crash.py"], cwd=project.path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    out = subprocess.run([*RUNLOG, "--dir", str(project.logs), "tail", "--no-follow", "-n", "50",
                          "--level", "ERROR"], capture_output=True, text=True, timeout=60).stdout
    assert "a warning" not in out
    for text in ("Traceback (most recent call last):", "KeyError: 'k'",
                 "During handling of the above exception", "ValueError: bad config"):
        assert text in out, out


def test_level_error_shows_a_segfault(project):
    # faulthandler's block ends run.log without a prefix: it ranks as critical, not as
    # the continuation of the INFO line before it
    (project.path / "segv.py").write_text(
        "import ctypes, logging, runlog\nrunlog.start(git=False)\nlogging.info('loading')\n"
        "ctypes.string_at(0)\n")
    env = {k: v for k, v in clean_env().items() if k != "PYTHONFAULTHANDLER"}
    p = subprocess.run([sys.executable, "segv.py"], cwd=project.path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGSEGV
    out = subprocess.run([*RUNLOG, "--dir", str(project.logs), "tail", "--no-follow", "-n", "50",
                          "--level", "ERROR"], capture_output=True, text=True, timeout=60).stdout
    assert "loading" not in out
    assert "Fatal Python error: Segmentation fault" in out and 'segv.py", line 4' in out, out


@pytest.mark.parametrize("before", [0, 5000])  # a small log read at once, a large one read backwards
def test_level_error_shows_a_logged_traceback_whole(project, before):
    # logging.exception() writes one record: its first line has the prefix, the traceback
    # lines continue it without one; the shown context judges them by their record
    (project.path / "logged.py").write_text(
        "import logging, runlog\nrunlog.start(git=False, console=False)\n"
        f"for i in range({before}):\n    logging.info('step %d', i)\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    logging.exception('the step failed')\n"
        "logging.info('going on')\n")
    subprocess.run([sys.executable, "logged.py"], cwd=project.path, env=clean_env(), check=True,
                   capture_output=True, timeout=60)
    out = subprocess.run([*RUNLOG, "--dir", str(project.logs), "tail", "--no-follow", "-n", "20",
                          "--level", "ERROR"], capture_output=True, text=True, timeout=60).stdout
    lines = out.splitlines()
    assert "ERROR   the step failed" in lines[0], out
    assert lines[1:] == ["Traceback (most recent call last):", '  File "%s", line 6, in <module>'
                         % (project.path / "logged.py"), "    1 / 0",
                         *([] if sys.version_info < (3, 11) else ["    ~~^~~"]),
                         "ZeroDivisionError: division by zero"], out


def test_next_follows_the_runs_that_start_afterwards(project):
    # opened before the runs start (an older run is there): each new run in turn
    project.train("--epochs", "1")
    old = project.ids()[0]
    tail = subprocess.Popen([*RUNLOG, "--dir", str(project.logs), "tail", "--next"],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert "waiting for the next run" in tail.stderr.readline()
        ends = []
        for lr in ("0.3", "0.5"):
            project.train("--lr", lr, "--epochs", "2")
            for line in tail.stdout:  # until this run's summary
                if line.startswith("-- run "):
                    ends.append(line)
                    break
        new = [i for i in project.ids() if i != old]
        assert [e.split()[2] for e in ends] == new and all(" finished " in e for e in ends)
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=30) == 130
    finally:
        tail.kill()
    assert old not in [e.split()[2] for e in ends]


def test_a_line_that_grows_past_the_cap_while_followed(tmp_path):
    """3 MiB without a newline, then the newline: the tail holds and shows the first MiB and
    says how much more there was; the lines after it come whole."""
    import time as _time

    from runlog.folder import index, record

    run_id, d = index.new_run_dir(str(tmp_path), None, _time.time())
    r = record.new_record(run_id, _time.time(), command=["x"], command_line=None, script=None,
                          script_path=None)  # running, in this (living) process
    record.write(d, r)
    log = os.path.join(d, "run.log")
    with open(log, "w") as f:
        f.write("2026-01-01 00:00:00.000 INFO    before\n")
    tail = subprocess.Popen([*RUNLOG, "--dir", str(tmp_path), "tail", "-n", "1"], env=clean_env(),
                            stdout=subprocess.PIPE, text=True)
    assert tail.stdout.readline().endswith("before\n")  # following now
    big = 3 << 20
    with open(log, "a") as f:
        for _ in range(big // 65536):
            f.write("x" * 65536)
            f.flush()
        f.write("\nafter\n")
    long_line = tail.stdout.readline()
    assert long_line == "x" * (1 << 20) + f" … [{big - (1 << 20)} more bytes not shown]\n"
    assert tail.stdout.readline() == "after\n"
    r.update(status="finished", exit_code=0, duration_s=1.0)
    record.write(d, r)
    out, _ = tail.communicate(timeout=60)
    assert tail.returncode == 0 and out.startswith("-- run ") and " finished " in out
