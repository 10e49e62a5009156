"""The sweep's trial launcher: trials forked from one ready interpreter are recorded as new
interpreters would record them, in sessions of their own, and a lost launcher loses no trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runlog.cli import sweep_launch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the launcher is used on Linux only")

RUNLOG = [sys.executable, "-m", "runlog"]

PROGRAM = """\
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--sleep", type=float, default=0)
a = p.parse_args()
wrapper = os.getppid()
with open(f"/proc/{wrapper}/stat") as f:
    above = int(f.read().rsplit(")", 1)[1].split()[1])
with open(f"/proc/{above}/cmdline", "rb") as f:
    above_cmd = f.read().replace(b"\\0", b" ").decode()
with open(f"who-{a.x}.json", "w") as f:
    json.dump({"session_of_wrapper": os.getsid(0) == wrapper, "above": above_cmd,
               "sigint": str(__import__("signal").getsignal(2))}, f)
time.sleep(a.sleep)
print(json.dumps({"metric": "score", "value": a.x}))
"""

VOLATILE = {"id", "started_at", "ended_at", "duration_s", "pid", "pid_start", "cwd",
            "script_path", "startup_s", "resources", "previous", "segments"}


def env(**kw) -> dict:
    e = dict(os.environ, **kw)
    for k in ("RUNLOG_DIR", "RUNLOG_RUN_DIR", "RUNLOG_RUN_ID", "RUNLOG_RESUME"):
        e.pop(k, None)
    return e


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "f.py").write_text(textwrap.dedent(PROGRAM))
    return tmp_path


def records(cwd: Path) -> list[dict]:
    logs = cwd / "logs"
    rs = [json.loads((d / "run.json").read_text()) for d in logs.iterdir()
          if d.is_dir() and not d.name.startswith(".")]
    return sorted(rs, key=lambda r: r["sweep"]["trial"])


def sweep_data(cwd: Path) -> dict:
    (f,) = (cwd / "logs" / ".sweeps").glob("*.json")
    return json.loads(f.read_text())


def same_meaning(r: dict, sweep_id: str) -> dict:
    text = json.dumps({k: v for k, v in r.items() if k not in VOLATILE})
    return json.loads(text.replace(sweep_id, "SWEEP"))


def test_a_forked_trial_is_recorded_as_a_new_interpreter_records_it(tmp_path):
    got = {}
    for fork in ("1", "0"):
        d = tmp_path / f"fork{fork}"
        d.mkdir()
        (d / "f.py").write_text(textwrap.dedent(PROGRAM))
        p = subprocess.run([*RUNLOG, "sweep", "-p", "x=0.5,2", "--max", "score", "--",
                            sys.executable, "f.py", "--x", "{x}"], cwd=d, capture_output=True,
                           text=True, env=env(RUNLOG_SWEEP_FORK=fork), timeout=300)
        assert p.returncode == 0, p.stderr
        sid = sweep_data(d)["id"]
        got[fork] = [same_meaning(r, sid) for r in records(d)]
        who = [json.loads((d / f"who-{x}.json").read_text()) for x in (0.5, 2.0)]
        assert all(w["session_of_wrapper"] for w in who)  # each trial in a session of its own
        assert all(w["sigint"] == str(signal.default_int_handler) for w in who)
        forked = ["runlog.cli.sweep_launcher" in w["above"] for w in who]
        assert forked == ([True, True] if fork == "1" else [False, False]), who
    assert got["1"] == got["0"]
    assert [r["status"] for r in got["1"]] == ["finished", "finished"]
    assert got["1"][0]["env"]["packages"] == got["0"][0]["env"]["packages"]


def test_a_lost_launcher_loses_no_trial(prog):
    proc = subprocess.Popen([*RUNLOG, "sweep", "-j", "2", "-p", "x=1,2,3,4", "--max", "score",
                             "--", sys.executable, "f.py", "--x", "{x}", "--sleep", "1"],
                            cwd=prog, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    launcher = None
    deadline = time.monotonic() + 60
    while launcher is None:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
        for pid in _children(proc.pid):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"runlog.cli.sweep_launcher" in f.read():
                    launcher = pid
    while not list(prog.glob("who-*.json")):  # a trial runs
        assert proc.poll() is None
        time.sleep(0.05)
    os.kill(launcher, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "the trial launcher ended" in err
    trials = sweep_data(prog)["trials"]
    assert [(t["status"], t["exit_code"]) for t in trials] == [("finished", 0)] * 4
    assert len(records(prog)) == 4


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def test_the_launcher_reports_exit_codes_and_deaths_and_exits_when_closed(tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    launcher = sweep_launch.Launcher()
    e = env()
    code3 = launcher.spawn(["--dir", "logs", "run", "--no-git", "--", sys.executable, "-c",
                            "import sys; sys.exit(3)"], e, quiet=True)
    sleeper = launcher.spawn(["--dir", "logs", "run", "--no-git", "--", sys.executable, "-c",
                              "import time; time.sleep(60)"], e, quiet=True)
    assert isinstance(code3, sweep_launch.Forked) and isinstance(sleeper, sweep_launch.Forked)
    while code3.poll() is None:
        sweep_launch.wait([code3], None)
    assert code3.returncode == 3
    while not list((tmp_path / "logs").glob("*/run.log")) or sleeper.poll() is not None:
        time.sleep(0.05)
    time.sleep(0.3)  # its program started
    sleeper.send_signal(signal.SIGTERM)  # to the wrapper alone: passed on to the program
    while sleeper.poll() is None:
        sweep_launch.wait([sleeper], 5.0)
    assert sleeper.returncode == -signal.SIGTERM
    rs = [json.loads(p.read_text()) for p in (tmp_path / "logs").glob("*/run.json")]
    assert sorted(r["exit_code"] for r in rs) == [3, 143]
    launcher.close()
    assert launcher.proc.wait(timeout=30) == 0
