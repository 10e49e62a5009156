"""Foreign and broken things in the log directory never crash a command, and a place runlog
cannot write is one line: symlinks and their loops, index lines of the wrong shape, a reused
pid, leftovers of a failed write, read-only mounts.

Real files, real mounts (skipped where mount is not permitted), real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env, write_script

RUNLOG = [sys.executable, "-m", "runlog"]


def runlog(logs: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNLOG, "--dir", str(logs), *args], capture_output=True, text=True,
                          env=clean_env(), timeout=60, **kw)


def one_run(where: Path, body: str = "import runlog\nrunlog.start(git=False)\n") -> Path:
    write_script(where, body)
    subprocess.run([sys.executable, "s.py"], cwd=where, env=clean_env(), check=True,
                   capture_output=True, timeout=60)
    return max((p for p in (where / "logs").iterdir()
                if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def test_symlinks_and_symlink_loops_are_skipped(tmp_path):
    good = one_run(tmp_path)
    logs = tmp_path / "logs"
    (logs / "loop").symlink_to(logs / "loop")  # ELOOP on every stat
    (logs / "20991231-000000").symlink_to(logs / "20991231-000000")  # a loop named like a run
    (logs / "20991231-000001").symlink_to(tmp_path / "nowhere")  # dangling
    (logs / "20991231-000002").mkdir()
    (logs / "20991231-000002" / "run.json").symlink_to("run.json")  # a loop inside a run
    for args in (["ls"], ["ls", "--all", "--json"], ["ls", "--grep", "x"], ["show"],
                 ["report", good.name], ["tail", "--no-follow", good.name], ["journal"],
                 ["note", good.name, "fine"], ["diff", good.name, good.name[:8] + "x"]):
        p = runlog(logs, *args)
        assert "Traceback" not in p.stderr, (args, p.stderr)
        assert p.returncode in (0, 1), (args, p.stderr)
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("runlog: error")]
        assert len(errors) <= 1
    p = runlog(logs, "ls", "--all")
    assert p.returncode == 0 and good.name in p.stdout


def test_index_lines_of_the_wrong_shape_are_skipped_with_one_warning(tmp_path):
    good = one_run(tmp_path)
    logs = tmp_path / "logs"
    index = logs / ".runlog-index.jsonl"
    with open(index, "a") as f:
        for bad in ({"id": good.name, "args": [1, 2]}, {"id": good.name, "status": 3},
                    {"id": good.name, "metrics": {"loss": 5}}, {"id": 7}, [1, 2], "text",
                    {"id": good.name, "tags": "a", "notes_added": 4}):
            f.write(json.dumps(bad) + "\n")
    for args in (["ls"], ["ls", "--all"], ["ls", "--json", "--all"], ["ls", "--grep", "x"],
                 ["show", good.name], ["journal"]):
        p = runlog(logs, *args)
        assert p.returncode == 0 and "Traceback" not in p.stderr, (args, p.stderr)
        assert p.stderr.count("warning") <= 1, (args, p.stderr)
    p = runlog(logs, "ls", "--all", "--json")
    (entry,) = [json.loads(x) for x in p.stdout.splitlines()]
    assert entry["id"] == good.name and entry["status"] == "finished"  # read from its folder
    assert isinstance(entry["args"], dict)


def test_a_running_run_whose_pid_was_reused_is_lost(tmp_path):
    d = one_run(tmp_path)
    r = json.loads((d / "run.json").read_text())
    assert r["pid_start"] is not None  # recorded with the pid
    # The run "is still running" under the pid of a live process that started later: this one
    r.update(status="running", ended_at=None, pid=os.getpid(), pid_start=r["pid_start"] - 1)
    (d / "run.json").write_text(json.dumps(r))
    (tmp_path / "logs" / ".runlog-index.jsonl").unlink()
    p = runlog(tmp_path / "logs", "ls")
    assert p.returncode == 0 and p.stdout.splitlines()[1].split()[1] == "lost", p.stdout
    r["pid_start"] = None  # an older record without it: the pid alone decides
    (d / "run.json").write_text(json.dumps(r))
    p = runlog(tmp_path / "logs", "ls")
    assert p.stdout.splitlines()[1].split()[1] == "running", p.stdout


def test_leftovers_of_a_failed_write_are_ignored(tmp_path):
    d = one_run(tmp_path)
    (d / "run.json.12345.tmp").write_text('{"id": "half')
    (d / "report.md.999.tmp").write_text("")
    p = runlog(tmp_path / "logs", "show", d.name)
    assert p.returncode == 0 and ".tmp" not in p.stdout, p.stdout
    assert runlog(tmp_path / "logs", "ls").returncode == 0


def _mount_ro(path: Path) -> None:
    path.mkdir(exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                       capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {p.stderr.decode().strip()}")


@pytest.fixture
def read_only(tmp_path):
    made = []
    yield made
    for m in made:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_runlog_run_on_a_read_only_log_dir_runs_the_program_anyway(tmp_path, read_only):
    logs = tmp_path / "logs"
    _mount_ro(logs)
    read_only.append(logs)
    write_script(tmp_path, "import sys\nprint('trained')\nsys.exit(3)\n", name="t.py")
    p = subprocess.run([*RUNLOG, "--dir", str(logs), "run", "--", sys.executable, "t.py"],
                       cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert p.returncode == 3 and p.stdout == "trained\n"
    said = [ln for ln in p.stderr.splitlines() if ln.startswith("runlog:")]
    assert len(said) == 1 and "unrecorded" in said[0] and "Traceback" not in p.stderr


def test_commands_writing_to_a_read_only_place_say_one_line(tmp_path, read_only):
    one_run(tmp_path)
    ro = tmp_path / "ro"
    _mount_ro(ro)
    read_only.append(ro)
    logs = tmp_path / "logs"
    for args in (["journal", "-o", str(ro / "j.html")],
                 ["sweep", "--dir", str(ro / "logs"), "-p", "x=1,2", "--", "true"]):
        if args[0] == "sweep":
            p = subprocess.run([*RUNLOG, *args], capture_output=True, text=True, env=clean_env(),
                               timeout=60)
        else:
            p = runlog(logs, *args)
        assert p.returncode != 0 and "Traceback" not in p.stderr, (args, p.stderr)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert lines and lines[-1].startswith("runlog: "), (args, p.stderr)
