"""`runlog sweep --slurm`: real job arrays on a real Slurm cluster (`.ci/slurm-up` starts one).

Every test here submits to the cluster that `sinfo` answers for, and skips with
the reason when there is none. The trials are tiny programs; where a test needs
a trial to be running, the trial waits for a file the test creates.
"""

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

RUNLOG = [sys.executable, "-m", "runlog"]

PROGRAM = """\
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=0)
p.add_argument("--a", type=int, default=0)
p.add_argument("--b", default="")
p.add_argument("--wait", default="")
a = p.parse_args()
print(json.dumps({"metric": "task", "value": int(os.environ.get("SLURM_ARRAY_TASK_ID", -1))}))
print(json.dumps({"metric": "job", "value": int(os.environ.get("SLURM_ARRAY_JOB_ID", -1))}))
print(json.dumps({"metric": "restart", "value": int(os.environ.get("SLURM_RESTART_COUNT", 0))}))
if a.wait:
    print("waiting", flush=True)
    end = time.time() + 120
    while not os.path.exists(a.wait) and time.time() < end:
        time.sleep(0.05)
print(json.dumps({"metric": "score", "value": -(a.x - 3) ** 2 - a.a}))
"""


@pytest.fixture(scope="session")
def slurm():
    """A Slurm cluster answering `sinfo` with a usable node, or a skip saying why not."""
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        pytest.skip("no Slurm here (sinfo is not installed; .ci/slurm-up starts one as root)")
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer within 20 s (is slurmctld running? see .ci/slurm-up)")
    states = p.stdout.split()
    if p.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        pytest.skip(f"no usable Slurm node (sinfo: {(p.stdout or p.stderr).strip()[:120]!r})")
    return True


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "f.py").write_text(textwrap.dedent(PROGRAM))
    return tmp_path


def env() -> dict:
    e = dict(os.environ)
    e.pop("RUNLOG_DIR", None)
    return e


def sweep(cwd: Path, *args: str, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNLOG, "sweep", *args], cwd=cwd, capture_output=True, text=True,
                          env=env(), timeout=timeout)


def records(cwd: Path) -> list[dict]:
    logs = cwd / "logs"
    if not logs.exists():
        return []
    out = []
    for d in sorted(logs.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / "run.json").exists():
            out.append(json.loads((d / "run.json").read_text()))
    return out


def sweep_file(cwd: Path) -> dict:
    [f] = [f for f in (cwd / "logs" / ".sweeps").iterdir() if f.suffix == ".json"]
    return json.loads(f.read_text())


def table_rows(out: str) -> list[list[str]]:
    return [ln.split() for ln in out.splitlines() if ln[:1].isdigit()]


def waiting(cwd: Path) -> int:
    """How many trials have printed "waiting" into their run.log (they wait for a file)."""
    logs = cwd / "logs"
    if not logs.exists():
        return 0
    return sum("waiting" in (d / "run.log").read_text() for d in logs.iterdir()
               if not d.name.startswith(".") and (d / "run.log").exists())


def wait_gone(job: str) -> None:
    """Until Slurm no longer holds any task of the array (the event: squeue lists none)."""
    while subprocess.run(["squeue", "-h", "-r", "-j", job], capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.1)


def test_optimisation_over_slurm_finds_the_optimum(prog, slurm):
    optuna = pytest.importorskip("optuna")
    p = sweep(prog, "--slurm", "-j", "3", "--trials", "9", "--max", "score", "-p", "x=0:6",
              "--", sys.executable, "f.py", "--x", "{x}")
    assert p.returncode == 0, p.stderr
    info = sweep_file(prog)
    job = info["slurm"]["job_id"]
    rs = records(prog)
    assert len(rs) == 9
    assert sorted(r["sweep"]["trial"] for r in rs) == list(range(9))  # no trial ran twice
    for r in rs:
        assert r["status"] == "finished"
        assert r["sweep"]["id"] == info["id"] and f"sweep:{info['id']}" in r["tags"]
        assert r["sweep"]["params"]["x"] == pytest.approx(r["args"]["x"], rel=1e-5)
        # run inside the array's tasks: the trial saw the array's ids
        assert r["metrics"]["job"]["last"] == int(job)
        assert r["metrics"]["task"]["last"] in (0, 1, 2)
    best = max(rs, key=lambda r: r["metrics"]["score"]["last"])
    assert abs(best["args"]["x"] - 3) < 1.5
    rows = table_rows(p.stdout)
    assert len(rows) == 9 and rows[0][1] == best["id"]
    study = optuna.load_study(study_name=info["study"], storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(info["storage"].split(":", 1)[1])))
    done = [t for t in study.trials if not t.user_attrs.get("runlog_overflow")]
    assert sorted(t.number for t in done) == list(range(9))
    assert all(t.state.name == "COMPLETE" for t in done)
    assert {t.user_attrs["runlog_run"] for t in done} == {r["id"] for r in rs}
    assert {t.user_attrs["runlog"]["slurm_job"] for t in done} == {job}
    # the submitter said how it went while it waited (plain lines: stderr is a pipe)
    assert "9/9 done" in p.stderr


def test_grid_over_slurm_runs_each_point_once(prog, slurm):
    pytest.importorskip("optuna")
    p = sweep(prog, "--slurm", "-j", "3", "-p", "a=1..3", "-p", "b=u,v", "--max", "score", "--",
              sys.executable, "f.py", "--a", "{a}", "--b", "{b}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    points = sorted((r["args"]["a"], r["args"]["b"]) for r in rs)
    assert points == sorted((a, b) for a in (1, 2, 3) for b in ("u", "v"))  # each exactly once
    assert sorted(r["sweep"]["trial"] for r in rs) == list(range(6))
    assert all(r["sweep"]["params"] == {"a": r["args"]["a"], "b": r["args"]["b"]} for r in rs)
    assert len(table_rows(p.stdout)) == 6
    assert table_rows(p.stdout)[0][3] == "1"  # best first: a=1 scores highest


def test_detach_then_show_while_running_and_after(prog, slurm, tmp_path_factory):
    pytest.importorskip("optuna")
    go = prog / "go"
    p = sweep(prog, "--slurm", "-j", "2", "--detach", "-p", "a=1..4", "--max", "score", "--",
              sys.executable, "f.py", "--a", "{a}", "--wait", str(go))
    assert p.returncode == 0, p.stderr
    assert "runlog sweep show" in p.stderr and "scancel" in p.stderr
    info = sweep_file(prog)
    job = info["slurm"]["job_id"]
    try:
        while waiting(prog) < 1:  # the event: a trial is running, waiting for the file
            time.sleep(0.05)
        elsewhere = tmp_path_factory.mktemp("elsewhere")  # any directory, any node
        s = subprocess.run([*RUNLOG, "--dir", str(prog / "logs"), "sweep", "show", info["id"]],
                           cwd=elsewhere, capture_output=True, text=True, env=env())
        assert s.returncode == 0, s.stderr
        statuses = [r[2] for r in table_rows(s.stdout)]
        assert "running" in statuses and "finished" not in statuses
    finally:
        go.write_text("")
    wait_gone(job)
    s = subprocess.run([*RUNLOG, "sweep", "show"], cwd=prog, capture_output=True, text=True,
                       env=env())
    rows = table_rows(s.stdout)
    assert [r[2] for r in rows] == ["finished"] * 4
    assert [r[3] for r in rows] == ["1", "2", "3", "4"]
    assert "Best: trial" in s.stdout


def test_interrupt_cancels_the_array_when_asked(prog, slurm):
    pytest.importorskip("optuna")
    go = prog / "go"
    proc = subprocess.Popen([*RUNLOG, "sweep", "--slurm", "-j", "2", "--cancel-on-interrupt",
                             "-p", "a=1..4", "--max", "score", "--", sys.executable, "f.py",
                             "--a", "{a}", "--wait", str(go)],
                            cwd=prog, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        while waiting(prog) < 1:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        go.write_text("")
    job = sweep_file(prog)["slurm"]["job_id"]
    assert proc.returncode == 130, err
    assert f"cancelled the Slurm array {job}" in err
    assert not subprocess.run(["squeue", "-h", "-r", "-j", job], capture_output=True,
                              text=True).stdout.strip()
    rs = records(prog)
    assert rs and all(r["status"] != "finished" for r in rs)  # stopped, none ran to its end
    assert out.startswith("Sweep ")


def test_interrupt_without_a_terminal_says_how_to_cancel(prog, slurm):
    pytest.importorskip("optuna")
    go = prog / "go"
    proc = subprocess.Popen([*RUNLOG, "sweep", "--slurm", "-j", "1", "-p", "a=1,2", "--max",
                             "score", "--", sys.executable, "f.py", "--a", "{a}", "--wait",
                             str(go)], cwd=prog, env=env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = None
    try:
        while waiting(prog) < 1:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        job = sweep_file(prog)["slurm"]["job_id"]
        assert proc.returncode == 130
        assert f"scancel {job}" in err and "goes on" in err
        # the array did go on
        assert subprocess.run(["squeue", "-h", "-r", "-j", job], capture_output=True,
                              text=True).stdout.strip()
    finally:
        go.write_text("")
        if job:
            wait_gone(job)
    assert sorted(r["status"] for r in records(prog)) == ["finished", "finished"]


def test_sqlite_under_slurm_warns(prog, slurm):
    pytest.importorskip("optuna")
    p = sweep(prog, "--slurm", "--detach", "--storage", "sqlite:///s.db", "-p", "a=1",
              "--max", "score", "--", sys.executable, "f.py", "--a", "{a}")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("warning: SQLite") == 1 and "NFS" in p.stderr
    info = sweep_file(prog)
    assert info["storage"] == f"sqlite:///{prog}/s.db"  # absolute: the workers start elsewhere
    wait_gone(info["slurm"]["job_id"])
    assert [r["status"] for r in records(prog)] == ["finished"]


@pytest.mark.parametrize("args,message", [
    (["--slurm", "--gpus", "0,1", "-p", "a=1", "--", "echo", "{a}"], "--gpus is for sweeps"),
    (["--detach", "-p", "a=1", "--", "echo", "{a}"], "are for --slurm"),
    (["--slurm=--time='", "-p", "a=1", "--", "echo", "{a}"], "--slurm"),
])
def test_bad_slurm_input_is_one_line(tmp_path, args, message):
    p = sweep(tmp_path, *args)
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("\n") == 1 and message in p.stderr and "Traceback" not in p.stderr


def test_without_sbatch_one_line(tmp_path):
    pytest.importorskip("optuna")
    e = env()
    e["PATH"] = str(tmp_path)  # no sbatch
    p = subprocess.run([*RUNLOG, "sweep", "--slurm", "-p", "a=1", "--max", "s", "--", "echo",
                        "{a}"], cwd=tmp_path, capture_output=True, text=True, env=e)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "sbatch" in p.stderr


def test_sbatch_refusal_is_one_line_and_leaves_no_sweep(tmp_path, slurm):
    pytest.importorskip("optuna")
    p = sweep(tmp_path, "--slurm=--partition=no-such-partition", "-p", "a=1,2", "--", "echo",
              "{a}")
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "sbatch refused the array" in p.stderr, p.stderr
    assert "partition" in p.stderr.lower()
    assert not list((tmp_path / "logs" / ".sweeps").glob("*.json"))
    assert not list((tmp_path / "logs" / ".sweeps").glob("*.journal"))


def test_a_worker_killed_hard_does_not_leave_its_trial_running(prog, slurm):
    pytest.importorskip("optuna")
    go = prog / "go"
    p = sweep(prog, "--slurm", "-j", "1", "--detach", "-p", "a=1,2", "--max", "score", "--",
              sys.executable, "f.py", "--a", "{a}", "--wait", str(go))
    assert p.returncode == 0, p.stderr
    job = sweep_file(prog)["slurm"]["job_id"]
    try:
        while waiting(prog) < 1:
            time.sleep(0.05)
        # SIGKILL to every process of the task: no one tells the study how the trial ended
        subprocess.run(["scancel", "--full", "--signal=KILL", job], check=True)
        wait_gone(job)
    finally:
        go.write_text("")
    s = subprocess.run([*RUNLOG, "sweep", "show"], cwd=prog, capture_output=True, text=True,
                       env=env())
    assert s.returncode == 0, s.stderr
    rows = {r[0]: r[2] for r in table_rows(s.stdout)}
    # the study still says RUNNING; the table says what the run's record says
    assert rows["0"] in ("killed", "lost") and rows["1"] == "queued", s.stdout


def test_a_requeued_task_runs_its_trial_again_under_the_same_number(prog, slurm):
    optuna = pytest.importorskip("optuna")
    go = prog / "go"
    p = sweep(prog, "--slurm", "-j", "1", "--detach", "-p", "a=1,2", "--max", "score", "--",
              sys.executable, "f.py", "--a", "{a}", "--wait", str(go))
    assert p.returncode == 0, p.stderr
    info = sweep_file(prog)
    job = info["slurm"]["job_id"]
    try:
        while waiting(prog) < 1:
            time.sleep(0.05)
        subprocess.run(["scontrol", "requeue", f"{job}_0"], check=True, capture_output=True)
        # Slurm holds a requeued job back for a while (BeginTime): let it start soon (at
        # "now" slurmd may refuse it, its credential revoked a moment ago)
        while ("PENDING" not in subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%T"],
                                               capture_output=True, text=True).stdout
               and len([r for r in records(prog) if r["sweep"]["trial"] == 0]) < 2):
            time.sleep(0.1)
        subprocess.run(["scontrol", "update", f"JobId={job}_0", "StartTime=now+3"],
                       capture_output=True)
        go.write_text("")
        wait_gone(job)
    finally:
        go.write_text("")
    study = optuna.load_study(study_name=info["study"], storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(info["storage"].split(":", 1)[1])))
    done = [t for t in study.trials if not t.user_attrs.get("runlog_overflow")]
    assert sorted(t.number for t in done) == [0, 1]  # no new trial for the requeued one
    assert all(t.state.name == "COMPLETE" for t in done), [
        (t.number, t.state.name, t.user_attrs) for t in done]
    rs = records(prog)
    zero = [r for r in rs if r["sweep"]["trial"] == 0]
    ends = [r for r in zero if r["status"] == "finished"]
    assert len(ends) == 1 and ends[0]["metrics"]["restart"]["last"] == 1
    assert study.trials[0].user_attrs["runlog_run"] == ends[0]["id"]
    s = subprocess.run([*RUNLOG, "sweep", "show"], cwd=prog, capture_output=True, text=True,
                       env=env())
    assert [r[2] for r in table_rows(s.stdout)] == ["finished", "finished"]


def test_repeat_over_slurm_runs_each_seed_once_and_tells_the_mean(prog, slurm):
    optuna = pytest.importorskip("optuna")
    from runlog.fmt import fmt_num

    p = sweep(prog, "--slurm", "-j", "2", "--repeat", "2", "-p", "a=1..2", "--max", "score",
              "--", sys.executable, "f.py", "--a", "{a}", "--x", "{seed}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert sorted((r["sweep"]["trial"], r["sweep"]["seed"]) for r in rs) == [
        (0, 0), (0, 1), (1, 0), (1, 1)]  # each configuration's seeds, each run once
    assert all(r["args"]["x"] == r["sweep"]["seed"] for r in rs)
    info = sweep_file(prog)
    study = optuna.load_study(study_name=info["study"], storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(info["storage"].split(":", 1)[1])))
    for t in study.trials:
        if t.user_attrs.get("runlog_overflow"):
            continue
        vals = [r["metrics"]["score"]["last"] for r in rs if r["sweep"]["trial"] == t.number]
        mean = sum(vals) / 2
        assert t.value == pytest.approx(mean)
        std = (sum((v - mean) ** 2 for v in vals)) ** 0.5  # n - 1 = 1
        row = next(ln for ln in p.stdout.splitlines() if ln.split()[:1] == [str(t.number)])
        assert f"{fmt_num(mean)} ± {fmt_num(std)} (2)" in row
    assert "2/2 done" in p.stderr  # configurations, not runs
