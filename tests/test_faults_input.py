"""Hostile input never costs the record or the script: undecodable bytes anywhere runlog
takes text, numbers no JSON number can hold, a log directory pulled away, calls out of order.

Real processes with real argv bytes; assertions on the files left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import clean_env, git_out, write_script

RUNLOG = [sys.executable, "-m", "runlog"]
BAD = os.fsdecode(b"\xff\xfe")  # bytes no UTF-8 decoder accepts, as Python hands them over


def the_run(logs: Path) -> tuple[Path, dict]:
    (d,) = [p for p in logs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    text = (d / "run.json").read_bytes().decode("utf-8")  # strict: the record is valid UTF-8
    return d, json.loads(text)


def test_undecodable_bytes_everywhere_a_script_gives_text(tmp_path):
    write_script(tmp_path, """\
        import argparse, os, runlog
        p = argparse.ArgumentParser()
        p.add_argument("--x")
        a = p.parse_args()
        bad = os.fsdecode(b"\\xff")
        run = runlog.start(name="n" + bad, tags=["t" + bad], note="code" + bad, git=False)
        run.metric("m" + bad, 1.0, step=1)
        run.log_metrics({"m" + bad: 2.0, "k" + bad: 3}, step=2)
        run.add_note("later " + bad)
        print("printed " + bad)
        """)
    e = clean_env(RUNLOG_NOTE="env" + BAD)
    p = subprocess.run([sys.executable, "s.py", "--x", "v" + BAD, "--note", "typed" + BAD],
                       cwd=tmp_path, env=e, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    d, r = the_run(tmp_path / "logs")
    assert r["status"] == "finished"
    assert r["note"] == "typed\ufffd\ufffd; code\ufffd"  # typed first, both kept
    assert r["name"] == "n\ufffd" and r["tags"] == ["t\ufffd"]
    assert r["args"]["x"] == "v\ufffd\ufffd" and r["command"][-1] == "v\ufffd\ufffd"
    assert r["metrics"]["m\ufffd"]["count"] == 2 and r["metrics"]["k\ufffd"]["last"] == 3
    for name in ("run.log", "metrics.jsonl", "notes.md", "report.md"):
        (d / name).read_bytes().decode("utf-8")  # every file runlog wrote is valid UTF-8
    assert "later \ufffd" in (d / "notes.md").read_text()
    index = (tmp_path / "logs" / ".runlog-index.jsonl").read_bytes().decode("utf-8")
    assert all(json.loads(line)["id"] == d.name for line in index.splitlines())


def test_undecodable_bytes_in_the_cli(tmp_path):
    logs = tmp_path / "logs"
    e = clean_env(RUNLOG_DIR=str(logs))
    p = subprocess.run([*RUNLOG, "run", "--note", "why" + BAD, "--", "echo", "hi" + BAD],
                       cwd=tmp_path, env=e, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hi\xff\xfe\n"  # the program's own bytes pass through untouched
    d, r = the_run(logs)
    assert r["status"] == "finished" and r["note"] == "why\ufffd\ufffd"
    p = subprocess.run([*RUNLOG, "note", "-1", "noted" + BAD], env=e, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "noted\ufffd\ufffd" in (d / "notes.md").read_bytes().decode("utf-8")
    p = subprocess.run([*RUNLOG, "ls"], env=e, capture_output=True, timeout=60)
    assert p.returncode == 0 and b"why" in p.stdout


METRIC_LINES = r"""
import json, sys
lines = [
    '{"metric": "loss", "value": 0.5, "step": Infinity}',
    '{"metric": "loss", "value": 0.4, "step": NaN}',
    '{"metric": "loss", "value": 0.3, "step": %s}' % ("9" * 400),
    '{"metric": "loss", "value": 0.2, "step": "three"}',
    '{"metric": "loss", "value": {"nested": 1}, "step": 4}',
    '{"metric": "loss", "value": "0.1", "step": 5}',
    '{"metric": "big", "value": %s}' % ("7" * 400),
    '{"metric": "deep", "value": %s1%s}' % ("[" * 100000, "]" * 100000),
    '{"metric": "loss", "value": 0.05, "step": 6}',
]
for line in lines:
    print(line, flush=True)
print("done")
"""


def test_metric_lines_no_number_can_hold_never_stop_runlog_run(tmp_path):
    write_script(tmp_path, METRIC_LINES, name="m.py")
    logs = tmp_path / "logs"
    p = subprocess.run([*RUNLOG, "--dir", str(logs), "run", "--no-git", "--", sys.executable,
                        "m.py"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "done"  # the program was never cut off
    d, r = the_run(logs)
    assert r["status"] == "finished" and r["exit_code"] == 0
    loss = r["metrics"]["loss"]
    assert loss["last"] == 0.05 and loss["step"] == 6 and loss["min"] == 0.05
    assert r["metrics"]["big"]["last"] == int("7" * 400)
    steps = [json.loads(x).get("step") for x in (d / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["name"] == "loss"]
    assert steps == [None, None, int("9" * 400), None, 6]  # a step that is no int: no step


def test_library_calls_with_numbers_no_json_number_can_hold(tmp_path):
    write_script(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        run.metric("a", 1.0, step=float("inf"))
        run.metric("a", 2.0, step=float("nan"))
        run.metric("a", 3.0, step=10 ** 400)
        run.metric("b", 10 ** 400)
        run.metric("c", float("inf"))
        print("done")
        """)
    p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "done\n", p.stderr
    _, r = the_run(tmp_path / "logs")
    assert r["metrics"]["a"]["count"] == 3 and r["metrics"]["a"]["step"] == 10 ** 400
    assert r["metrics"]["b"]["last"] == 10 ** 400 and r["metrics"]["c"]["last"] == float("inf")
    assert "b 1e+400" in p.stderr  # the report shows it in the shape of a float


def test_the_log_directory_pulled_away_mid_run(tmp_path):
    # Someone deletes the run folder while the script runs: every runlog call after that
    # says once what it could not do and returns; the script ends with its own exit code.
    write_script(tmp_path, """\
        import shutil, sys, runlog
        run = runlog.start(git=False)
        shutil.rmtree(run.dir)
        run.add_note("lost note")
        run.add_note("again")
        run.metric("x", 1.0)
        run.log_metrics({"x": 2.0})
        runlog.add_note("through the module")
        print("still here")
        sys.exit(3)
        """)
    p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and p.stdout == "still here\n", p.stderr
    assert "Traceback" not in p.stderr
    said = [ln for ln in p.stderr.splitlines() if ln.startswith("runlog: could not")]
    assert any("note" in ln for ln in said)
    assert len(said) == len(set(said))  # each thing said once


def test_a_second_start_returns_the_active_run_and_calls_after_finish_warn_once(tmp_path):
    write_script(tmp_path, """\
        import json, runlog
        outer = runlog.start(git=False)
        inner = runlog.start(git=False, note="nested")
        same = inner is outer
        outer.metric("x", 1.0)
        outer.finish()
        outer.metric("x", 2.0)
        outer.metric("x", 3.0)
        outer.log_metrics({"x": 4.0})
        print(json.dumps({"same": same}))
        """)
    p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"same": True}
    _, r = the_run(tmp_path / "logs")  # one run: the outer one was not silently finished
    assert r["status"] == "finished" and r["metrics"]["x"]["count"] == 1
    assert p.stderr.count("called while run") == 1
    assert p.stderr.count("run.metric() after the run") == 1
    assert p.stderr.count("run.log_metrics() after the run") == 1


def test_sigterm_while_start_runs_leaves_a_lost_run(tmp_path):
    # A scheduler's SIGTERM can land before start() has written its first run.json:
    # the folder then holds only run.log, and the run lists as lost with its log.
    write_script(tmp_path, """\
        import os, signal, runlog, runlog.run
        def killed(*a):  # the moment before the first run.json is written
            os.kill(os.getpid(), signal.SIGTERM)
        runlog.run.capture_args = killed
        runlog.start(git=False)
        """)
    p = subprocess.run([sys.executable, "s.py", "--lr", "3"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGTERM
    logs = tmp_path / "logs"
    (d,) = [x for x in logs.iterdir() if x.is_dir() and not x.name.startswith(".")]
    assert not (d / "run.json").exists()
    e = clean_env(RUNLOG_DIR=str(logs))
    ls = subprocess.run([*RUNLOG, "ls"], env=e, capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0 and ls.stderr == ""
    assert ls.stdout.splitlines()[1].split()[:2] == [d.name, "lost"]
    rep = subprocess.run([*RUNLOG, "report", d.name], env=e, capture_output=True, text=True,
                         timeout=60)
    assert rep.returncode == 0, rep.stderr
    assert f"Run {d.name} · lost" in rep.stdout and "s.py --lr 3" in rep.stdout


def test_double_ctrl_c_while_the_exit_waits_for_git(tmp_path):
    # git hangs (a network file system, a huge repository); the user presses Ctrl-C twice
    # while the exit waits for it: the run still ends with a record, interrupted.
    git_out(tmp_path, "init", "-q")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(f"#!/bin/sh\necho $$ > {tmp_path}/git.pid\nexec sleep 60\n")
    (fake / "git").chmod(0o755)
    write_script(tmp_path, """\
        import atexit, sys, runlog
        runlog.start()
        atexit.register(lambda: print("exiting", flush=True))  # runs just before runlog's
        print("ready", flush=True)
        sys.stdin.readline()
        """)
    e = clean_env(PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "s.py"], cwd=tmp_path, env=e, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.stdin.close()  # the script ends; its exit now waits for git
        assert proc.stdout.readline() == "exiting\n"
        for _ in range(600):  # Ctrl-C, again and again, until the process is gone
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        proc.kill()
        pid = tmp_path / "git.pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    d, r = the_run(tmp_path / "logs")
    assert r["status"] == "interrupted", (r["status"], proc.returncode, proc.stderr.read(),
                                          (d / "run.log").read_text()[-2000:])
    assert r["exit_code"] == 130 and r["ended_at"] and (d / "report.md").exists()
    # and the shell sees what the record says: a death by SIGINT
    assert proc.returncode == -signal.SIGINT and r["signal"] == "SIGINT"


def test_a_ctrl_c_raised_just_after_the_wait_for_git_still_ends_the_record(tmp_path):
    # The wait for git lets a Ctrl-C through; Python may raise it a few bytecodes after the
    # wait returned, between it and the last writes. No real signal lands there on demand,
    # so the wait here raises it itself, once, as that late delivery would.
    git_out(tmp_path, "init", "-q")
    write_script(tmp_path, """\
        import runlog
        from runlog import lifecycle
        wait = lifecycle.Lifecycle.wait_code_state
        raised = []

        def late_ctrl_c(self, *a, **k):
            wait(self, *a, **k)
            if not raised:
                raised.append(1)
                raise KeyboardInterrupt

        lifecycle.Lifecycle.wait_code_state = late_ctrl_c
        runlog.start()
        print("done", flush=True)
        """)
    proc = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=clean_env(), text=True,
                          capture_output=True, timeout=60)
    d, r = the_run(tmp_path / "logs")
    assert r["status"] == "interrupted", (r["status"], proc.stderr)
    assert r["ended_at"] and (d / "report.md").exists()
    assert "could not finish" not in proc.stderr and "## Run" in proc.stderr


def test_metric_lines_no_runlog_wrote_are_skipped_by_every_reader(tmp_path):
    # metrics.jsonl edited by hand or appended to by another tool: names that are lists,
    # objects or null, values that are text or lists, steps that are objects, bare JSON values
    write_script(tmp_path, """\
        import runlog
        run = runlog.start(git=False)
        run.metric("loss", 0.5, step=1)
        run.metric("loss", 0.4, step=2)
        """)
    subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=clean_env(), check=True,
                   capture_output=True, timeout=60)
    d, _ = the_run(tmp_path / "logs")
    with open(d / "metrics.jsonl", "a") as f:
        f.write('{"name": ["a"], "value": 1}\n{"name": {"x": 1}, "value": 2, "step": 3}\n'
                '{"name": "acc", "value": [1, 2]}\n{"name": "acc", "value": "0.5", "step": {"a": 1}}\n'
                '[1, 2, 3]\n"a string"\n{"name": null, "value": 3}\n{"value": 3}\n'
                '{"name": "flag", "value": true, "step": {"a": 1}, "time": "noon"}\n')
    env = clean_env()
    for cmd in (["ls"], ["ls", "--json"], ["show", "-1"], ["report", "-1"], ["plot", "-1"],
                ["journal", "-o", str(tmp_path / "j.html")],
                ["journal", "--all", "-o", str(tmp_path / "j2.html")]):
        p = subprocess.run([sys.executable, "-m", "runlog", *cmd], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "Traceback" not in p.stderr, (cmd, p.stderr)
    plot = subprocess.run([sys.executable, "-m", "runlog", "plot", "-1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60).stdout
    assert "loss" in plot and "flag" in plot and "acc" not in plot
    assert '"loss"' in (tmp_path / "j.html").read_text()
