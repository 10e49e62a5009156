"""Sweeps sharing one Optuna study through a journal file: no database server, no Slurm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runlog.cli.sweep_study import normalise

RUNLOG = [sys.executable, "-m", "runlog"]

PROGRAM = """\
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--x", type=float)
a = p.parse_args()
print(json.dumps({"metric": "score", "value": -(a.x - 0.3) ** 2}))
"""


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "f.py").write_text(textwrap.dedent(PROGRAM))
    return tmp_path


def env() -> dict:
    e = dict(os.environ)
    e.pop("RUNLOG_DIR", None)
    return e


def records(cwd: Path) -> list[dict]:
    return [json.loads((d / "run.json").read_text()) for d in sorted((cwd / "logs").iterdir())
            if d.is_dir() and not d.name.startswith(".")]


def rows(out: str) -> list[list[str]]:
    return [ln.split() for ln in out.splitlines() if ln[:1].isdigit()]


def test_two_sweeps_on_a_journal_each_print_the_studys_table(prog):
    pytest.importorskip("optuna")
    args = ["--max", "score", "--trials", "8", "--storage", "journal:study.journal", "--name",
            "shared", "-p", "x=0:1", "--", sys.executable, "f.py", "--x", "{x}"]
    procs = [subprocess.Popen([*RUNLOG, "sweep", *args], cwd=prog, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    for pr in procs:
        out, err = pr.communicate(timeout=300)
        assert pr.returncode == 0, err
        outs.append(out)
    rs = records(prog)
    assert len(rs) == 8  # the study's total, across both sweeps, each trial once
    assert sorted(r["sweep"]["trial"] for r in rs) == list(range(8))
    assert {r["sweep"]["study"] for r in rs} == {"shared"}
    assert len({r["sweep"]["id"] for r in rs}) <= 2
    best = max(rs, key=lambda r: r["metrics"]["score"]["last"])
    ids = {r["id"] for r in rs}
    for out in outs:  # each prints the study's trials, not only its own
        assert sorted(int(r[0]) for r in rows(out)) == list(range(8)), out
    # the one that finished last saw every trial end, whoever ran it
    done = [o for o in outs if {r[1] for r in rows(o)} == ids
            and all(r[2] == "finished" for r in rows(o))]
    assert done and rows(done[0])[0][1] == best["id"] and f"({best['id']})" in done[0]
    # `sweep show` of either sweep reads the study
    sweeps = sorted(f.stem for f in (prog / "logs" / ".sweeps").glob("*.json"))
    for sid in sweeps:
        s = subprocess.run([*RUNLOG, "sweep", "show", sid], cwd=prog, capture_output=True,
                           text=True, env=env())
        assert s.returncode == 0 and len(rows(s.stdout)) == 8, s.stderr
        assert "in study 'shared' (of 8)" in s.stdout


def test_show_falls_back_to_the_saved_table_when_the_study_is_gone(prog):
    pytest.importorskip("optuna")
    p = subprocess.run([*RUNLOG, "sweep", "--max", "score", "--trials", "3", "--storage",
                        "journal:j.journal", "-p", "x=0:1", "--", sys.executable, "f.py", "--x",
                        "{x}"], cwd=prog, capture_output=True, text=True, env=env())
    assert p.returncode == 0, p.stderr
    (prog / "j.journal").unlink()
    s = subprocess.run([*RUNLOG, "sweep", "show"], cwd=prog, capture_output=True, text=True,
                       env=env())
    assert s.returncode == 0 and len(rows(s.stdout)) == 3
    assert "showing the table as last saved" in s.stderr and s.stderr.count("\n") == 1


def test_storage_specs_mean_the_same_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalise(None) is None
    assert normalise("journal:s.journal") == f"journal:{tmp_path}/s.journal"
    assert normalise("runs/s.log") == f"journal:{tmp_path}/runs/s.log"
    assert normalise("sqlite:///s.db") == f"sqlite:///{tmp_path}/s.db"
    assert normalise("sqlite:////abs/s.db") == "sqlite:////abs/s.db"
    assert normalise("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize("given,expected", [
    (None, None),
    ("not json", None),
    ('["a list"]', None),
    ('{"id": "S", "trial": 3, "params": {"x": 0.5}, "seed": 7, "gpus": "1", "extra": 1}',
     {"id": "S", "trial": 3, "params": {"x": 0.5}, "seed": 7, "gpus": "1"}),
])
def test_a_runs_sweep_key_comes_from_runlog_sweep_and_a_stray_value_breaks_nothing(
        tmp_path, given, expected):
    e = env()
    e.pop("RUNLOG_SWEEP", None)
    if given is not None:
        e["RUNLOG_SWEEP"] = given
    (tmp_path / "p.py").write_text("import os; print(os.environ.get('RUNLOG_SWEEP'))\n")
    p = subprocess.run([*RUNLOG, "run", "--", sys.executable, "p.py"], cwd=tmp_path,
                       capture_output=True, text=True, env=e)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "None"  # the program under the trial does not inherit it
    [r] = records(tmp_path)
    assert r["sweep"] == expected
    index = [json.loads(ln) for ln in (tmp_path / "logs" / ".runlog-index.jsonl").read_text()
             .splitlines()]
    assert all(line["sweep"] == expected for line in index if "status" in line)
