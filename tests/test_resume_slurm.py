"""A real Slurm requeue: the job's second run continues the record of its first.

Needs a Slurm cluster that answers `sinfo` (`.ci/slurm-up` starts a one-node one on a
CI machine, as root); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runlog

TRAIN = """\
import os, sys, time, runlog
run = runlog.start()
ck, n = "ckpt", int(sys.argv[1])
start = int(open(ck).read()) if os.path.exists(ck) else 0
for step in range(start, n):
    run.metric("loss", 10.0 * (n - step) + (0.5 if start else 0.0), step=step)
    if step == 1:
        open(ck, "w").write("2")
    if step == 3 and not start:
        time.sleep(300)  # until the test requeues the job
print("done", flush=True)
"""


def slurm_up() -> str | None:
    """Why Slurm cannot be used here, or None."""
    for tool in ("sinfo", "sbatch", "scontrol", "squeue"):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH (no Slurm here; .ci/slurm-up starts one)"
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 10 s"
    states = p.stdout.split()
    if p.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
        return f"no Slurm node up (sinfo: {(p.stdout + p.stderr).strip()[:80] or 'nothing'})"
    return None


def until(what: str, check, seconds: float = 240):
    """Poll ``check`` until it gives something true (the event), or fail saying ``what``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")


def state(job: str) -> str:
    p = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
    return p.stdout.strip()


def step_written(logs: Path, step: int) -> Path | None:
    for d in logs.glob("2*"):
        f = d / "metrics.jsonl"
        if f.exists() and any(json.loads(ln).get("step") == step
                              for ln in f.read_text().splitlines() if ln.endswith("}")):
            return d
    return None


WHY_NOT = slurm_up()


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_scontrol_requeue_of_a_running_array_task_continues_its_run(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    pkg = Path(runlog.__file__).resolve().parent.parent
    (tmp_path / "job.sh").write_text(
        f"#!/bin/sh\ncd {tmp_path}\nexport PYTHONPATH={pkg}\nexec {sys.executable} train.py 6\n")
    p = subprocess.run(["sbatch", "--parsable", "--requeue", "--array=1", "-n", "1",
                        "-o", str(tmp_path / "out-%A_%a.txt"), str(tmp_path / "job.sh")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    task = p.stdout.strip().split(";")[0] + "_1"
    try:
        logs = tmp_path / "logs"
        run_dir = until("the first run's step 3 on disk", lambda: step_written(logs, 3))
        assert subprocess.run(["scontrol", "requeue", task], capture_output=True).returncode == 0
        # a requeued job waits for its begin time (about two minutes): it may start sooner,
        # but not in the second its credential was revoked (slurmd, which counts in whole
        # seconds, would refuse it: "Job credential revoked", and the job would fail)
        until("the job requeued", lambda: state(task) == "PENDING" or len(
            json.loads((run_dir / "run.json").read_text()).get("segments") or ()) > 1)
        subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now+3"],
                       capture_output=True)
        def second_ended():
            r = json.loads((run_dir / "run.json").read_text())
            return len(r.get("segments") or ()) == 2 and r["status"] != "running"

        try:
            until("the requeued job's end", lambda: second_ended() and state(task) == "")
        except AssertionError as e:
            job = subprocess.run(["scontrol", "show", "job", task], capture_output=True, text=True)
            raise AssertionError(f"{e}\n{job.stdout}{job.stderr}\n{sorted(p.name for p in logs.iterdir())}\n"
                                 + (run_dir / "run.log").read_text()) from None
    finally:
        subprocess.run(["scancel", task], capture_output=True)
    assert sorted(d.name for d in logs.iterdir() if not d.name.startswith(".")) == [run_dir.name]
    r = json.loads((run_dir / "run.json").read_text())
    assert r["status"] == "finished"
    segs = r["segments"]
    assert [s["status"] for s in segs] == ["killed", "finished"]
    array_job = task.split("_")[0]
    assert [s["job"] for s in segs] == [f"{array_job}_1"] * 2 and segs[1]["restart"] == 1
    assert [p_["step"] for p_ in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())] \
        == [0, 1, 2, 3, 2, 3, 4, 5]
    assert (r["metrics"]["loss"]["count"], r["metrics"]["loss"]["last"]) == (6, 10.5)
    assert "resumed (segment 2)" in (run_dir / "run.log").read_text()
    # the report names the job to look up in sacct, and says it restarted
    report = (run_dir / "report.md").read_text()
    assert f"(Slurm job {array_job}_1)" in report and "restarted 1×" in report
