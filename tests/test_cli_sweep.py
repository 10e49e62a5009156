"""`runlog sweep`: real sweeps over a small real program."""

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

from conftest import integration

RUNLOG = [sys.executable, "-m", "runlog"]

PROGRAM = """\
import argparse, json, sys, time
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
p.add_argument("--y", type=int, default=2)
p.add_argument("--sleep", type=float, default=0)
a = p.parse_args()
if a.sleep:
    print("sleeping", flush=True)
time.sleep(a.sleep)
if a.y == 99:
    sys.exit(3)
if a.y != 98:  # y=98 never reports the metric
    print(json.dumps({"metric": "score", "value": -(a.x - 0.3) ** 2 - (a.y - 2) ** 2}))
"""


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "f.py").write_text(textwrap.dedent(PROGRAM))
    return tmp_path


def sweep(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    return subprocess.run([*RUNLOG, "sweep", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300, **kw)


def records(cwd: Path) -> list[dict]:
    logs = cwd / "logs"
    return [json.loads((d / "run.json").read_text()) for d in sorted(logs.iterdir())
            if d.is_dir() and not d.name.startswith(".")]


def test_grid_3x2_in_parallel(prog):
    p = sweep(prog, "-j", "2", "-p", "x=0.1,0.3,0.5", "-p", "y=1..2", "--max", "score", "--",
              sys.executable, "f.py", "--x", "{x}", "--y", "{y}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert len(rs) == 6
    seen = set()
    for r in rs:
        assert r["status"] == "finished"
        sweep_tag = [t for t in r["tags"] if t.startswith("sweep:")]
        assert len(sweep_tag) == 1
        x, y = r["args"]["x"], r["args"]["y"]
        assert f"x={x:g}" in r["tags"] and f"y={y}" in r["tags"]
        assert r["metrics"]["score"]["last"] == pytest.approx(-(x - 0.3) ** 2 - (y - 2) ** 2)
        seen.add((x, y))
    assert seen == {(x, y) for x in (0.1, 0.3, 0.5) for y in (1, 2)}
    lines = p.stdout.splitlines()
    header = lines.index(next(ln for ln in lines if ln.startswith("trial")))
    rows = [ln.split() for ln in lines[header + 1: header + 7]]
    scores = [float(r[-1]) for r in rows]
    assert scores == sorted(scores, reverse=True)  # best first
    assert rows[0][3:5] == ["0.3", "2"]
    assert "runlog run -- " in p.stdout and "f.py --x 0.3 --y 2" in p.stdout
    # the table can be printed again
    p2 = subprocess.run([*RUNLOG, "sweep", "show"], cwd=prog, capture_output=True, text=True)
    assert p2.returncode == 0 and p2.stdout == p.stdout


def test_optimisation_finds_the_optimum(prog):
    pytest.importorskip("optuna")
    p = sweep(prog, "-j", "2", "--max", "score", "--trials", "30", "-p", "x=0:1",
              "-p", "y=0..4", "--", sys.executable, "f.py", "--x", "{x}", "--y", "{y}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert len(rs) == 30
    best = max(rs, key=lambda r: r["metrics"]["score"]["last"])
    assert best["args"]["y"] == 2 and abs(best["args"]["x"] - 0.3) < 0.1
    assert f"({best['id']})" in p.stdout.split("Best:")[1]


def test_failed_and_silent_trials_do_not_stop_the_sweep(prog):
    p = sweep(prog, "-p", "y=2,99,98", "-p", "x=0.3", "--max", "score", "--",
              sys.executable, "f.py", "--x", "{x}", "--y", "{y}")
    assert p.returncode == 0, p.stderr
    rs = records(prog)
    assert sorted(r["status"] for r in rs) == ["failed", "finished", "finished"]
    lines = p.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("trial"))
    at = header.index("score")
    assert header.split()[-1] == "error"  # a trial failed: its error is shown
    rows = [ln for ln in lines if ln[:1].isdigit()]
    assert [r[at:].split()[0] for r in rows] == ["0.0", "—", "—"]
    failed = next(r for r in rows if " failed " in r)
    assert failed[header.index("error"):].strip() == "ExitCode: exited with code 3"


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on loopback (Debian's package; .ci/run installs it)."""
    import glob
    import pwd
    import shutil
    import socket
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    integration("psycopg")
    as_user = []
    d = tempfile.mkdtemp(prefix="runlog-pg-")
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres user to run the server as")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    data = os.path.join(d, "data")
    for _attempt in (1, 2):  # a machine busy with other servers can fail one initdb; say why
        made = subprocess.run([*as_user, f"{bins[-1]}/initdb", "-D", data, "-A", "trust", "-U",
                               "runlog"], capture_output=True, text=True)
        if made.returncode == 0:
            break
        shutil.rmtree(data, ignore_errors=True)
    assert made.returncode == 0, f"initdb failed:\n{made.stdout}\n{made.stderr}"
    subprocess.run([*as_user, f"{bins[-1]}/pg_ctl", "-D", data, "-w", "-l", f"{d}/log", "-o",
                    f"-p {port} -k {d} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    yield f"postgresql://runlog@127.0.0.1:{port}/postgres"
    subprocess.run([*as_user, f"{bins[-1]}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                   capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_share_one_study(prog, backend, request):
    optuna = pytest.importorskip("optuna")
    storage = ("sqlite:///study.db" if backend == "sqlite"
               else request.getfixturevalue("postgres"))
    args = ["--max", "score", "--trials", "12", "--storage", storage,
            "--name", "shared", "-p", "x=0:1", "-p", "y=0..4", "--",
            sys.executable, "f.py", "--x", "{x}", "--y", "{y}"]
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    procs = [subprocess.Popen([*RUNLOG, "sweep", *args], cwd=prog, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for pr in procs:
        out, err = pr.communicate(timeout=300)
        assert pr.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=(
        f"sqlite:///{prog}/study.db" if backend == "sqlite" else storage))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 12
    assert len({t.number for t in complete}) == 12
    assert len(records(prog)) == 12  # every trial ran once, no duplicates


def test_ctrl_c_stops_and_still_summarises(prog):
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    proc = subprocess.Popen([*RUNLOG, "sweep", "-j", "2", "-p", "x=0.1,0.2,0.3,0.4", "--",
                             sys.executable, "f.py", "--x", "{x}", "--sleep", "30"],
                            cwd=prog, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def sleeping(d: Path) -> bool:
        # `runlog run` logs its program's lines only once it holds the signals to pass on
        log = d / "run.log"
        return log.exists() and "OUT     sleeping" in log.read_text()

    logs = prog / "logs"
    while not (logs.exists() and sum(sleeping(d) for d in logs.iterdir()
                                     if d.is_dir() and not d.name.startswith(".")) == 2):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err
    rs = records(prog)
    assert len(rs) == 2  # no new trials were started
    assert all(r["status"] == "interrupted" for r in rs)
    assert out.startswith("Sweep ") and "2 trials" in out


@pytest.mark.parametrize("args,message", [
    (["-p", "x=1,2", "--", "echo", "{x}", "{z}"], "no -p z="),
    (["-p", "x=1,2", "-p", "y=3", "--", "echo", "{x}"], "'y' is not used"),
    (["-p", "x=0:1", "--", "echo", "{x}"], "needs --max METRIC or --min METRIC"),
    (["-p", "x=5..1", "--", "echo", "{x}"], "is empty"),
    (["-p", "x", "--", "echo", "{x}"], "bad parameter"),
    (["-p", "x=1,2"], "nothing to run"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    p = sweep(tmp_path, *args)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and message in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "logs").exists() or not records(tmp_path)
