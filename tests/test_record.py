"""The run record on disk: where it goes, what it is called, what run.json holds."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

from conftest import read_json, run_dirs, spawn, wait_for_line, write_script

FIELDS = {"schema", "id", "name", "tags", "status", "exit_code", "error", "started_at",
          "ended_at", "duration_s", "command", "command_line", "cwd", "script", "note", "args",
          "args_given", "git", "host", "pid", "python", "metrics", "previous"}


def test_run_json_holds_every_field(run_script, tmp_path):
    proc, d, r = run_script("""\
        import os, runlog
        run = runlog.start(name="baseline", tags=["cnn", "ablation"], git=False)
        run.metric("acc", 0.5, step=1)
        run.metric("acc", 0.75, step=2)
        print("pid", os.getpid())
        """, "--lr", "0.1")
    assert FIELDS <= set(r)
    assert r["schema"] >= 1
    assert re.fullmatch(r"\d{8}-\d{6}-baseline", r["id"]) and d.name == r["id"]
    assert (r["name"], r["tags"]) == ("baseline", ["cnn", "ablation"])
    assert r["command"] == ["python", "s.py", "--lr", "0.1"]
    assert r["command_line"] == "python s.py --lr 0.1"
    assert r["cwd"] == str(tmp_path) and r["script"] == "s.py"
    assert r["pid"] == int(proc.stdout.split()[1])
    assert r["host"] == socket.gethostname()
    assert r["python"] == sys.version.split()[0]
    assert r["metrics"]["acc"] == {"last": 0.75, "min": 0.5, "max": 0.75, "count": 2, "step": 2}
    points = [json.loads(ln) for ln in (d / "metrics.jsonl").read_text().splitlines()]
    assert [(p["name"], p["value"], p["step"]) for p in points] == [("acc", 0.5, 1),
                                                                     ("acc", 0.75, 2)]


def test_a_command_line_with_spaces_is_quoted_to_paste(run_script):
    _, _, r = run_script("import runlog\nrunlog.start(git=False)\n", "--name", "my run", "--x=a'b")
    assert r["command"] == ["python", "s.py", "--name", "my run", "--x=a'b"]
    assert r["command_line"] == "python s.py --name 'my run' '--x=a'\"'\"'b'"


def test_log_dir_from_start_and_from_the_environment(run_script, tmp_path):
    _, d, _ = run_script("import runlog\nrunlog.start(git=False, log_dir='runs/a')\n",
                         logs="runs/a")
    assert d.parent == tmp_path / "runs" / "a"
    elsewhere = tmp_path.parent / f"{tmp_path.name}-runs"
    _, d, _ = run_script("import runlog\nrunlog.start(git=False)\n",
                         env={"RUNLOG_DIR": str(elsewhere)}, logs=str(elsewhere))
    assert d.parent == elsewhere
    assert not (tmp_path / "logs").exists()


def test_ids_are_never_reused(tmp_path):
    write_script(tmp_path, "import runlog\nfor _ in range(3):\n    runlog.start(git=False).finish()\n")
    subprocess.run([sys.executable, "s.py"], cwd=tmp_path, check=True, capture_output=True,
                   timeout=60)
    ids = sorted(d.name for d in run_dirs(tmp_path / "logs"))
    assert len(ids) == 3 and len(set(ids)) == 3


def test_the_record_says_running_while_the_script_runs(tmp_path):
    proc = spawn(tmp_path, """\
        import time, runlog
        runlog.start(git=False, note="long one")
        print("ready", flush=True)
        time.sleep(60)
        """)
    try:
        wait_for_line(proc, "ready")
        (d,) = run_dirs(tmp_path / "logs")
        r = read_json(d / "run.json")
        assert (r["status"], r["note"], r["ended_at"], r["pid"]) == ("running", "long one", None,
                                                                     proc.pid)
        assert "run.log" in os.listdir(d) and "report.md" not in os.listdir(d)
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_the_time_before_start_is_recorded(tmp_path):
    # a script that imports for seconds before start() (nanoGPT: ~3 s) says so
    (tmp_path / "s.py").write_text("import time\ntime.sleep(1.2)\n"
                                   "import runlog\nrunlog.start(git=False)\n")
    p = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    (d,) = [x for x in (tmp_path / "logs").iterdir() if x.is_dir() and not x.name.startswith(".")]
    r = json.loads((d / "run.json").read_text())
    assert r["startup_s"] >= 1.2  # at least the sleep: a lower bound, whatever the load
    (head,) = [ln for ln in p.stderr.splitlines() if ln.startswith("## Run ")]
    assert head.endswith(" before start())")
