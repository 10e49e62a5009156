"""A Ctrl-C or SIGTERM that reaches `runlog sweep` at any moment leaves it consistent.

The signal is sent by the sweep to itself at chosen points of its bookkeeping
(a wrapper patches one function to send it: just after an Optuna trial is asked
for, a trial started, a trial's end seen, before a trial's save, between a
configuration's end noted and told, while the summary prints), and from outside
once trials run. Each time: exit 130, the table printed, every trial started is
in the sweep file with its record's final status, none left running in the
study, and none started after the interrupt was heeded.
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
FINAL = {"finished", "interrupted", "killed", "failed", "pruned"}

PROGRAM = """\
import json, sys, time
x = float(sys.argv[1])
if len(sys.argv) > 2:
    print("sleeping", flush=True)
    time.sleep(float(sys.argv[2]))
print(json.dumps({"metric": "score", "value": -(x - 3) ** 2}))
"""

# the sweep with one function patched to send a signal to the sweep itself on its AT-th call
WRAPPER = """\
import os, signal, sys
from runlog import cli
from runlog.cli import sweep, sweep_launch, sweep_study, sweep_table

point, at, sig = sys.argv[1], int(sys.argv[2]), getattr(signal, sys.argv[3])
calls = [0]

def hit():
    calls[0] += 1
    if calls[0] == at:
        open("signalled", "w").close()
        os.kill(os.getpid(), sig)

def patch(owner, name, before=False, when=lambda r, a, k: True):
    f = getattr(owner, name)
    def g(*a, **k):
        if before:
            hit()
        r = f(*a, **k)
        if not before and when(r, a, k):
            hit()
        return r
    setattr(owner, name, g)

if point == "ask":  # between an Optuna trial asked for and its launch
    patch(sweep_study, "_next", when=lambda r, a, k: r is not None)
elif point == "launch":  # a trial forked, not yet noted
    patch(sweep_launch, "start")
elif point == "ended":  # a trial's end read from the launcher, not yet collected
    patch(sweep_launch.Forked, "poll", when=lambda r, a, k: r is not None)
elif point == "save":  # a trial collected, the sweep file not yet written
    patch(sweep.Sweep, "save", before=True)
elif point == "tell":  # a configuration's end noted in the study, not yet told
    patch(sweep_study, "_attrs", when=lambda r, a, k: "runlog_end" in k)
elif point == "summary":
    patch(sweep_table, "print_summary", before=True)
sys.exit(cli.main(sys.argv[4:]))
"""


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "f.py").write_text(textwrap.dedent(PROGRAM))
    (tmp_path / "wrap.py").write_text(textwrap.dedent(WRAPPER))
    return tmp_path


def env() -> dict:
    e = dict(os.environ)
    e.pop("RUNLOG_DIR", None)
    e.pop("RUNLOG_SWEEP_FORK", None)  # the trials forked by the launcher
    return e


def folders(logs: Path) -> list[Path]:
    return [d for d in logs.iterdir() if d.is_dir() and not d.name.startswith(".")] \
        if logs.exists() else []


def check(cwd: Path, out: str, err: str, code: int, optuna: bool) -> dict:
    """The sweep ended as an interrupted one, everything it started accounted for."""
    assert code == 130, err
    assert out.startswith("Sweep "), err  # the table
    files = list((cwd / "logs" / ".sweeps").glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    recs = {d.name: json.loads((d / "run.json").read_text()) for d in folders(cwd / "logs")}
    assert all(r["status"] in FINAL for r in recs.values()), recs
    assert all(t["status"] in FINAL for t in data["trials"]), data["trials"]
    by_run = {t["run"]: t for t in data["trials"]}
    assert set(recs) <= set(by_run), (sorted(recs), data["trials"])  # every trial started
    for rid, r in recs.items():
        assert by_run[rid]["status"] == r["status"] or (
            optuna and by_run[rid]["status"] == "failed"), (by_run[rid], r["status"])
    if optuna:  # the study was told how each trial ended
        import optuna as o
        from optuna.storages import JournalStorage
        try:
            from optuna.storages.journal import JournalFileBackend
        except ImportError:
            from optuna.storages import JournalFileStorage as JournalFileBackend
        study = o.load_study(study_name="s",
                             storage=JournalStorage(JournalFileBackend(str(cwd / "j.journal"))))
        assert not [t.number for t in study.trials if t.state.name in ("RUNNING", "WAITING")]
    # heeded at once: no trial was started after the interrupt reached the sweep
    started = err.count(" started: ")
    heeded = err.split("interrupted: no new trials", 1)[0].count(" started: ")
    assert started == heeded, err
    return data


CASES = [("grid", p) for p in ("launch", "ended", "save", "summary")] + \
        [("optuna", p) for p in ("ask", "launch", "ended", "save", "tell", "summary")]


@pytest.mark.parametrize("kind,point", CASES, ids=[f"{k}-{p}" for k, p in CASES])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_at_any_point_of_the_bookkeeping_leaves_the_sweep_consistent(prog, kind,
                                                                               point, sig):
    if kind == "optuna":
        pytest.importorskip("optuna")
        how = ["--trials", "8", "-p", "x=0:6", "--storage", "journal:j.journal", "--name", "s"]
    else:
        how = ["-p", "x=0..7"]
    at = 1 if point == "summary" else 3
    p = subprocess.run([sys.executable, "wrap.py", point, str(at), sig, "sweep", "-j", "2",
                        "--max", "score", *how, "--", sys.executable, "f.py", "{x}"],
                       cwd=prog, capture_output=True, text=True, env=env(), timeout=300)
    assert (prog / "signalled").exists(), p.stderr  # the point was reached
    check(prog, p.stdout, p.stderr, p.returncode, kind == "optuna")


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGINT", "SIGINT"], ["SIGHUP"]])
def test_a_signal_from_outside_while_trials_run_interrupts_them(prog, signals):
    """SIGTERM, and the hangup of the sweep's terminal, are taken as a Ctrl-C (the trials are
    interrupted, exit 130); a second Ctrl-C is passed on too, and the sweep still collects
    every trial."""
    pytest.importorskip("optuna")
    proc = subprocess.Popen([*RUNLOG, "sweep", "-j", "2", "--max", "score", "--trials", "6",
                             "-p", "x=0:6", "--storage", "journal:j.journal", "--name", "s",
                             "--", sys.executable, "f.py", "{x}", "60"],
                            cwd=prog, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def sleeping(d: Path) -> bool:  # its runlog run holds the signals to pass on
        log = d / "run.log"
        return log.exists() and "OUT     sleeping" in log.read_text()

    while sum(sleeping(d) for d in folders(prog / "logs")) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    for s in signals:
        proc.send_signal(getattr(signal, s))
    out, err = proc.communicate(timeout=120)
    data = check(prog, out, err, proc.returncode, optuna=True)
    assert [t["status"] for t in data["trials"]] == ["interrupted"] * 2


def test_under_nohup_a_hangup_does_not_stop_the_sweep(prog):
    """SIGHUP ignored when the sweep starts (``nohup runlog sweep …``): the terminal closing is
    not the sweep's to act on; its trials run to their end."""
    (prog / "g.py").write_text(textwrap.dedent("""\
        import json, os, sys, time
        print("waiting", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.02)
        print(json.dumps({"metric": "score", "value": float(sys.argv[1])}))
        """))
    proc = subprocess.Popen([*RUNLOG, "sweep", "-j", "2", "--max", "score", "-p", "x=1,2",
                             "--", sys.executable, "g.py", "{x}"],
                            cwd=prog, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))

    def waiting(d: Path) -> bool:
        log = d / "run.log"
        return log.exists() and "OUT     waiting" in log.read_text()

    try:
        while sum(waiting(d) for d in folders(prog / "logs")) < 2:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
    finally:
        (prog / "go").write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    recs = [json.loads((d / "run.json").read_text()) for d in folders(prog / "logs")]
    assert sorted(r["status"] for r in recs) == ["finished", "finished"], err
