"""Runs that survive preemption: a real script checkpoints, is killed by a real signal after
its metric line is on disk, and is started again as Slurm (or the user) would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNLOG = [sys.executable, "-m", "runlog"]

# Logs loss at steps START..N-1 (START from the checkpoint file), saving "2" as its
# checkpoint after step 1; at step WAIT_AT it waits to be killed. A segment after a
# restart logs values 0.5 higher, so the summary shows which segment's value it kept.
TRAIN = """\
import os, sys, time, runlog
resume = os.environ.get("RESUME_ARG")
run = runlog.start(resume=resume) if resume else runlog.start()
ck, n, wait_at = "ckpt", int(sys.argv[1]), int(os.environ.get("WAIT_AT", "-1"))
start = int(open(ck).read()) if os.path.exists(ck) else 0
for step in range(start, n):
    run.metric("loss", 10.0 * (n - step) + (0.5 if start else 0.0), step=step)
    if step == 1:
        open(ck, "w").write("2")
    if step == wait_at:
        print("waiting", flush=True)
        time.sleep(120)
print("done", flush=True)
"""

# The same in sh, its metrics as JSON lines on stdout (for `runlog run`).
TRAIN_SH = """\
#!/bin/sh
n=$1
start=0
[ -f ckpt ] && start=$(cat ckpt)
step=$start
while [ $step -lt $n ]; do
  if [ $start -gt 0 ]; then v="$((10 * (n - step))).5"; else v="$((10 * (n - step)))"; fi
  echo "{\\"metric\\": \\"loss\\", \\"value\\": $v, \\"step\\": $step}"
  [ $step -eq 1 ] && echo 2 > ckpt
  # waits to be killed in short sleeps: no child outlives it holding the terminal's pipe
  if [ "$step" = "${WAIT_AT:-}" ]; then while :; do sleep 0.05; done; fi
  step=$((step + 1))
done
echo done
"""


def env_for(tmp_path: Path, **extra) -> dict:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("SLURM_", "RUNLOG_")) and k not in ("RANK", "LOCAL_RANK")}
    e.update({k: str(v) for k, v in extra.items()})
    return e


def runs(logs: Path) -> list[Path]:
    return sorted(p for p in logs.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if logs.is_dir() else []


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def points(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def wait_for_step(logs: Path, step: int, proc: subprocess.Popen) -> Path:
    """Until the run's metrics.jsonl has the point of ``step`` (an event, not a time)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for d in runs(logs):
            f = d / "metrics.jsonl"
            if f.exists() and any(json.loads(ln).get("step") == step
                                  for ln in f.read_text().splitlines() if ln.endswith("}")):
                return d
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"step {step} never written")


def python(tmp_path: Path, *args: str, **env) -> subprocess.CompletedProcess:
    (tmp_path / "train.py").write_text(TRAIN)
    return subprocess.run([sys.executable, "train.py", *args], cwd=tmp_path, text=True,
                          capture_output=True, env=env_for(tmp_path, **env), timeout=60)


def first_segment(tmp_path: Path, sig: int, cmd=None, **env) -> Path:
    """Start the training, wait for its step 3 on disk, then ``sig`` it."""
    (tmp_path / "train.py").write_text(TRAIN)
    sh = tmp_path / "train.sh"
    sh.write_text(TRAIN_SH)
    sh.chmod(0o755)
    cmd = cmd or [sys.executable, "train.py", "6"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_for(tmp_path, WAIT_AT=3, **env))
    run_dir = wait_for_step(tmp_path / "logs", 3, proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return run_dir


def runlog_cli(tmp_path: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNLOG, "--dir", str(tmp_path / "logs"), *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env_for(tmp_path, **env), timeout=60)


def assert_continued(tmp_path: Path, run_dir: Path, first_status: str, out: str) -> dict:
    """One folder, two segments, metrics continued, the later value of a repeated step."""
    assert runs(tmp_path / "logs") == [run_dir]
    r = record(run_dir)
    assert r["status"] == "finished" and r["exit_code"] == 0
    segs = r["segments"]
    assert [s["status"] for s in segs] == [first_status, "finished"]
    assert all(s["ended_at"] for s in segs) and segs[1]["pid"] == r["pid"]
    # duration_s: the sum of the segments' wall times (the gap between them not counted)
    from runlog.folder.segments import seconds
    assert r["duration_s"] == pytest.approx(sum(seconds(s) for s in segs), abs=0.002)
    # metrics.jsonl keeps all eight points; the summary keeps steps 0-1 of the first
    # segment and 2-5 of the second (steps 2 and 3 were repeated after the reload)
    assert [p["step"] for p in points(run_dir)] == [0, 1, 2, 3, 2, 3, 4, 5]
    m = r["metrics"]["loss"]
    assert (m["count"], m["last"], m["step"], m["max"], m["min"]) == (6, 10.5, 5, 60, 10.5)
    log = (run_dir / "run.log").read_text()
    assert f"RUNLOG  --- run {run_dir.name} resumed (segment 2)" in log
    assert log.index("resumed (segment 2)") < log.index("OUT     done")
    report = (run_dir / "report.md").read_text()
    assert "- Segments: 2 (" in report and "restarted 1×" in report
    assert "- Segments: 2 (" in out
    ls = runlog_cli(tmp_path, "ls")
    lines = ls.stdout.splitlines()
    assert len(lines) == 2 and run_dir.name in lines[1] and "×2" in lines[1], ls.stdout
    return r


@pytest.mark.parametrize("sig,first", [(signal.SIGTERM, "killed"), (signal.SIGKILL, "lost")])
def test_a_requeued_slurm_job_continues_its_run(tmp_path, sig, first):
    run_dir = first_segment(tmp_path, sig, SLURM_JOB_ID=4242, SLURM_RESTART_COUNT=0)
    p = python(tmp_path, "6", SLURM_JOB_ID=4242, SLURM_RESTART_COUNT=1)
    assert p.returncode == 0, p.stderr
    assert f"run {run_dir.name} resumed (segment 2)" in p.stderr
    r = assert_continued(tmp_path, run_dir, first, p.stderr)
    assert [s.get("job") for s in r["segments"]] == ["4242", "4242"]
    assert [s.get("restart") for s in r["segments"]] == [0, 1]
    assert "Slurm restart 1" in (run_dir / "run.log").read_text()
    show = runlog_cli(tmp_path, "show")
    assert "Segments:\n  1  " in show.stdout and "job 4242 restart 1" in show.stdout


def test_the_job_is_found_in_the_index_when_its_pointer_is_gone(tmp_path):
    import shutil

    run_dir = first_segment(tmp_path, signal.SIGTERM, SLURM_JOB_ID=7, SLURM_RESTART_COUNT=0)
    shutil.rmtree(tmp_path / "logs" / ".runlog-jobs")  # a cache: the index line holds the job
    p = python(tmp_path, "6", SLURM_JOB_ID=7, SLURM_RESTART_COUNT=1)
    assert p.returncode == 0, p.stderr
    assert_continued(tmp_path, run_dir, "killed", p.stderr)


def test_an_array_task_continues_its_own_run_only(tmp_path):
    job = {"SLURM_ARRAY_JOB_ID": 900, "SLURM_RESTART_COUNT": 0}
    run_dir = first_segment(tmp_path, signal.SIGTERM, SLURM_JOB_ID=901, SLURM_ARRAY_TASK_ID=1, **job)
    job["SLURM_RESTART_COUNT"] = 1
    other = python(tmp_path, "6", SLURM_JOB_ID=902, SLURM_ARRAY_TASK_ID=2, **job)
    assert other.returncode == 0 and len(runs(tmp_path / "logs")) == 2  # task 2: a run of its own
    (tmp_path / "ckpt").write_text("2")
    again = python(tmp_path, "6", SLURM_JOB_ID=901, SLURM_ARRAY_TASK_ID=1, **job)
    assert again.returncode == 0, again.stderr
    assert len(record(run_dir)["segments"]) == 2 and len(runs(tmp_path / "logs")) == 2
    assert record(run_dir)["segments"][1]["job"] == "900_1"


@pytest.mark.parametrize("env", [{"SLURM_JOB_ID": 5, "SLURM_RESTART_COUNT": 0},
                                 {"SLURM_JOB_ID": 6, "SLURM_RESTART_COUNT": 1}, {}],
                         ids=["restart count 0", "another job", "no Slurm"])
def test_no_restart_of_the_same_job_is_a_new_run(tmp_path, env):
    run_dir = first_segment(tmp_path, signal.SIGTERM, SLURM_JOB_ID=5, SLURM_RESTART_COUNT=0)
    p = python(tmp_path, "6", **env)
    assert p.returncode == 0, p.stderr
    assert len(runs(tmp_path / "logs")) == 2
    assert record(run_dir)["status"] == "killed" and len(record(run_dir)["segments"]) == 1


def test_runlog_resume_in_the_environment(tmp_path):
    run_dir = first_segment(tmp_path, signal.SIGTERM)
    assert "segments" not in record(run_dir)  # outside a scheduler a run has none until resumed
    p = python(tmp_path, "6", RUNLOG_RESUME=run_dir.name[:11])  # a prefix, as the CLI takes
    assert p.returncode == 0, p.stderr
    r = assert_continued(tmp_path, run_dir, "killed", p.stderr)
    assert "job" not in r["segments"][1]


def test_start_resume_argument_with_minus_one(tmp_path):
    run_dir = first_segment(tmp_path, signal.SIGKILL)
    p = python(tmp_path, "6", RESUME_ARG="-1")
    assert p.returncode == 0, p.stderr
    assert_continued(tmp_path, run_dir, "lost", p.stderr)


def test_runlog_run_resume_of_a_shell_script(tmp_path):
    cmd = [*RUNLOG, "run", "--no-git", "--", "./train.sh", "6"]
    run_dir = first_segment(tmp_path, signal.SIGTERM, cmd=cmd)
    assert record(run_dir)["status"] == "killed"
    p = subprocess.run([*RUNLOG, "run", "--no-git", "--resume", run_dir.name, "--", "./train.sh", "6"],
                       cwd=tmp_path, capture_output=True, text=True, env=env_for(tmp_path), timeout=60)
    assert p.returncode == 0, p.stderr
    assert_continued(tmp_path, run_dir, "killed", p.stderr)


def test_runlog_run_continues_a_requeued_job_and_a_python_program_follows_it(tmp_path):
    cmd = [*RUNLOG, "run", "--no-git", "--", sys.executable, "train.py", "6"]
    job = {"SLURM_JOB_ID": 31, "SLURM_RESTART_COUNT": 0}
    run_dir = first_segment(tmp_path, signal.SIGTERM, cmd=cmd, **job)
    job["SLURM_RESTART_COUNT"] = 1
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                       env=env_for(tmp_path, **job), timeout=60)
    assert p.returncode == 0, p.stderr
    assert_continued(tmp_path, run_dir, "killed", p.stderr)


def test_a_finished_run_is_continued_only_when_asked(tmp_path):
    job = {"SLURM_JOB_ID": 12, "SLURM_RESTART_COUNT": 0}
    p = python(tmp_path, "4", **job)
    (run_dir,) = runs(tmp_path / "logs")
    assert p.returncode == 0 and record(run_dir)["status"] == "finished"
    job["SLURM_RESTART_COUNT"] = 1  # a restart of a job whose run finished: a new run
    assert python(tmp_path, "4", **job).returncode == 0
    assert len(runs(tmp_path / "logs")) == 2
    # asked by name: a finished run trains on (steps 2-5 from its checkpoint)
    p = python(tmp_path, "6", RUNLOG_RESUME=run_dir.name)
    assert p.returncode == 0, p.stderr
    r = record(run_dir)
    assert [s["status"] for s in r["segments"]] == ["finished", "finished"]
    assert r["metrics"]["loss"]["step"] == 5 and r["metrics"]["loss"]["count"] == 6


def test_a_run_whose_process_is_alive_is_not_resumed(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    proc = subprocess.Popen([sys.executable, "train.py", "6"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for(tmp_path, WAIT_AT=3))
    try:
        run_dir = wait_for_step(tmp_path / "logs", 3, proc)
        # the library: says it once, and the script goes on in a new run
        p = python(tmp_path, "2", RUNLOG_RESUME=run_dir.name)
        assert p.returncode == 0, p.stderr
        said = [ln for ln in p.stderr.splitlines() if "still running" in ln]
        assert len(said) == 1 and f"pid {proc.pid}" in said[0] and "a new run is started" in said[0]
        assert len(runs(tmp_path / "logs")) == 2
        # the CLI: one line, a non-zero exit, nothing run
        c = runlog_cli(tmp_path, "run", "--resume", run_dir.name, "--", "sh", "-c", "echo ran")
        assert c.returncode != 0 and "ran" not in c.stdout
        assert c.stderr.startswith("runlog: error: run ") and len(c.stderr.splitlines()) == 1
        assert "still running" in c.stderr
        assert record(run_dir)["status"] == "running" and "segments" not in record(run_dir)
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_resume_of_no_such_run(tmp_path):
    (tmp_path / "logs").mkdir()
    c = runlog_cli(tmp_path, "run", "--resume", "nope", "--", "true")
    assert c.returncode != 0 and c.stderr == f"runlog: error: cannot resume 'nope': no run " \
                                             f"matches it in {tmp_path / 'logs'}\n"
    p = python(tmp_path, "2", RUNLOG_RESUME="nope")
    assert p.returncode == 0 and "cannot resume 'nope'" in p.stderr
    assert len(runs(tmp_path / "logs")) == 1


def test_three_segments_in_the_report_and_ls(tmp_path):
    run_dir = first_segment(tmp_path, signal.SIGTERM, SLURM_JOB_ID=3, SLURM_RESTART_COUNT=0)
    (tmp_path / "train.py").write_text(TRAIN)
    proc = subprocess.Popen([sys.executable, "train.py", "8"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=env_for(tmp_path, WAIT_AT=5, SLURM_JOB_ID=3, SLURM_RESTART_COUNT=1))
    wait_for_step(tmp_path / "logs", 5, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    p = python(tmp_path, "8", SLURM_JOB_ID=3, SLURM_RESTART_COUNT=2)
    assert p.returncode == 0, p.stderr
    r = record(run_dir)
    assert [s["status"] for s in r["segments"]] == ["killed", "killed", "finished"]
    assert "- Segments: 3 (" in p.stderr and "restarted 2×" in p.stderr
    assert (run_dir / "run.log").read_text().count("resumed (segment") == 2
    assert r["metrics"]["loss"]["count"] == 8 and r["metrics"]["loss"]["last"] == 10.5
    ls = runlog_cli(tmp_path, "ls", "--json")
    (entry,) = [json.loads(ln) for ln in ls.stdout.splitlines()]
    assert len(entry["segments"]) == 3 and entry["status"] == "finished"


def test_a_resumed_run_killed_hard_again_is_lost_with_both_segments(tmp_path):
    run_dir = first_segment(tmp_path, signal.SIGTERM, SLURM_JOB_ID=8, SLURM_RESTART_COUNT=0)
    proc = subprocess.Popen([sys.executable, "train.py", "6"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=env_for(tmp_path, WAIT_AT=4, SLURM_JOB_ID=8, SLURM_RESTART_COUNT=1))
    wait_for_step(tmp_path / "logs", 4, proc)
    proc.kill()
    proc.communicate(timeout=60)
    ls = runlog_cli(tmp_path, "ls")
    (line,) = ls.stdout.splitlines()[1:]
    assert run_dir.name in line and " lost " in line and "×2" in line
    report = runlog_cli(tmp_path, "report").stdout
    assert "· lost ·" in report and "- Segments: 2 (" in report
    # the summary of what was written: steps 0-1 of the first segment, 2-4 of the second
    assert "loss 20.5" in report
    (entry,) = [json.loads(ln) for ln in runlog_cli(tmp_path, "ls", "--json").stdout.splitlines()]
    assert [s["status"] for s in entry["segments"]] == ["killed", "lost"]
    from runlog.folder.segments import seconds
    assert entry["duration_s"] == pytest.approx(sum(seconds(s) for s in entry["segments"]), abs=0.002)
