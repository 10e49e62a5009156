"""Sweep trials are findable: `ls --sweep`, the sweep and error columns, the journal, the
trial a trial is compared with, and the user's spelling of a value — real sweeps, real runs."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cli_helpers import on_a_terminal
from runlog.folder.trials import differences, sweep_of

RUNLOG = [sys.executable, "-m", "runlog"]

PROGRAM = """\
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--layers", type=int)
a = p.parse_args()
if a.lr > 0.005 and a.layers == 2:
    raise ValueError("lr too big for 2 layers")
print(json.dumps({"metric": "score", "value": a.layers - a.lr * 10}))
"""


def env() -> dict:
    e = dict(os.environ)
    for k in ("RUNLOG_DIR", "RUNLOG_NOTE", "RUNLOG_RUN_DIR", "RUNLOG_RUN_ID"):
        e.pop(k, None)
    return e


def runlog(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNLOG, *args], cwd=cwd, capture_output=True, text=True, env=env(),
                          timeout=300)


def records(cwd: Path) -> dict[str, dict]:
    logs = cwd / "logs"
    return {d.name: json.loads((d / "run.json").read_text()) for d in sorted(logs.iterdir())
            if d.is_dir() and not d.name.startswith(".")}


def params(r: dict) -> tuple:
    return tuple(sorted(sweep_of(r)["params"].items()))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A plain run of the script, then a 2×2 grid whose last trial fails."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "f.py").write_text(textwrap.dedent(PROGRAM))
    p = runlog(d, "run", "--no-git", "--", sys.executable, "f.py", "--lr", "0.1", "--layers", "1")
    assert p.returncode == 0, p.stderr
    p = runlog(d, "sweep", "-p", "lr=1e-3,1e-2", "-p", "layers=1,2", "--max", "score", "--",
               sys.executable, "f.py", "--lr", "{lr}", "--layers", "{layers}")
    assert p.returncode == 0, p.stderr
    sweep_id = json.loads(next((d / "logs" / ".sweeps").iterdir()).read_text())["id"]
    return d, sweep_id, p


def test_the_command_keeps_the_values_as_typed(swept):
    d, sweep_id, p = swept
    trials = [r for r in records(d).values() if sweep_of(r)]
    assert len(trials) == 4
    for r in trials:
        lr = sweep_of(r)["params"]["lr"]  # the value (the sweep key), or as typed (the tags)
        typed = {0.001: "1e-3", 0.01: "1e-2"}.get(lr, lr)
        assert typed in ("1e-3", "1e-2") and f"lr={typed}" in r["tags"]
        assert f"--lr {typed} " in r["command_line"] and "0.001" not in r["command_line"]
    assert "runlog run -- " in p.stdout and "f.py --lr 1e-3 --layers 2" in p.stdout  # the best


def test_a_trial_is_compared_with_the_sibling_one_parameter_away(swept):
    d, sweep_id, _ = swept
    rs = records(d)
    trials = sorted((r for r in rs.values() if sweep_of(r)), key=lambda r: r["started_at"])
    plain = next(r for r in rs.values() if not sweep_of(r))
    by_params = {params(r): r for r in trials}
    first = trials[0]
    assert first["previous"] == plain["id"]  # no sibling finished yet: the script's previous run
    for r in trials[1:]:
        prev = rs[r["previous"]]
        assert sweep_of(prev)["id"] == sweep_id
        assert differences(sweep_of(r)["params"], sweep_of(prev)["params"]) == 1
    # trial 3 (lr=1e-2, layers=1) is compared with (1e-3, 1), not with the newer (1e-3, 2)
    third = by_params[(("layers", "1"), ("lr", "1e-2"))]
    assert rs[third["previous"]] is by_params[(("layers", "1"), ("lr", "1e-3"))]
    report = (d / "logs" / third["id"] / "report.md").read_text()
    assert f"Since {third['previous']}: lr 0.001 → 0.01" in report


def test_ls_filters_a_sweep_and_shows_its_trials_and_errors(swept):
    d, sweep_id, _ = swept
    p = runlog(d, "ls", "--sweep", sweep_id[:13])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header = lines[0].split()
    assert header[:6] == ["id", "status", "duration", "note", "sweep", "error"]
    assert len(lines) == 5  # the four trials, not the plain run
    failed = [ln for ln in lines[1:] if " failed " in ln]
    assert len(failed) == 1 and "ValueError: lr too big for 2 layers" in failed[0]
    assert all(sweep_id in ln for ln in lines[1:])
    # the whole listing marks the trials, and the plain run has no sweep
    p = runlog(d, "ls", "--json")
    rows = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert sum(1 for r in rows if sweep_of(r)) == 4
    assert next(r for r in rows if r["status"] == "failed")["error"]["type"] == "ValueError"
    assert runlog(d, "ls", "--sweep", "nope").stderr.startswith("runlog: error: no trials of a sweep")


def test_sweep_show_has_the_failed_trials_error(swept):
    d, sweep_id, _ = swept
    p = runlog(d, "sweep", "show", sweep_id)
    assert p.returncode == 0, p.stderr
    row = next(ln for ln in p.stdout.splitlines() if " failed " in ln)
    assert row.rstrip().endswith("ValueError: lr too big for 2 layers")


def test_the_journal_names_the_sweep_and_the_trials_parameters(swept):
    d, sweep_id, _ = swept
    out = d / "j.html"
    p = runlog(d, "journal", "-o", str(out))
    assert p.returncode == 0, p.stderr
    html = out.read_text(encoding="utf-8")
    assert re.search(f'"sweep":"sweep {sweep_id} · trial \\d+ · lr=1e-3 layers=1"', html)
    assert 'r.sweep' in html  # and the card shows it


def test_without_a_close_sibling_the_best_so_far_is_the_comparison(tmp_path):
    """Trials that differ in two parameters from every finished sibling: the sweep's best."""
    (tmp_path / "g.py").write_text("import json, sys\nprint(json.dumps({'metric': 'score', "
                                   "'value': float(sys.argv[1]) * float(sys.argv[2])}))\n")
    sweep_dir = tmp_path / "logs" / ".sweeps"
    sweep_dir.mkdir(parents=True)
    sweep_id = "20200101-000000-s"
    made = []

    def trial(a: str, b: str) -> dict:
        (sweep_dir / f"{sweep_id}.json").write_text(json.dumps({  # as `runlog sweep` keeps it
            "id": sweep_id, "metric": "score", "direction": direction,
            "trials": [{"n": i, "run": rid} for i, rid in enumerate(made)]}))
        p = runlog(tmp_path, "run", "--no-git", "--tag", f"sweep:{sweep_id}", "--tag", f"a={a}",
                   "--tag", f"b={b}", "--", sys.executable, "g.py", a, b)
        assert p.returncode == 0, p.stderr
        new = [r for r in records(tmp_path).values() if r["id"] not in made]
        made.append(new[0]["id"])
        return new[0]

    direction = "max"
    high = trial("3", "3")   # score 9
    trial("1", "1")          # score 1, the newest
    third = trial("2", "2")  # two parameters away from both: the best so far
    assert third["previous"] == high["id"]
    direction = "min"
    fourth = trial("4", "4")
    assert fourth["previous"] == made[1]  # the lowest score
    # without the sweep's file (a sweep on another machine), the index names the siblings
    (sweep_dir / f"{sweep_id}.json").unlink()
    p = runlog(tmp_path, "run", "--no-git", "--tag", f"sweep:{sweep_id}", "--tag", "a=4",
               "--tag", "b=5", "--", sys.executable, "g.py", "4", "5")
    assert p.returncode == 0, p.stderr
    (fifth,) = [r for r in records(tmp_path).values() if r["id"] not in made]
    assert fifth["previous"] == fourth["id"]


def on_a_pty(cwd: Path, columns: int, *args: str) -> str:
    """What `runlog ARGS` writes to a terminal of ``columns`` (a real pty), colours and all."""
    return on_a_terminal([*RUNLOG, *args], columns, env(), cwd=cwd)


def uncoloured(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def ls_on_a_pty(cwd: Path, columns: int) -> str:
    """`runlog ls` as a terminal of ``columns`` shows it (rich, on a real pty)."""
    return uncoloured(on_a_pty(cwd, columns, "ls"))


def test_sweep_and_error_columns_on_narrow_and_wide_terminals(swept):
    d, sweep_id, _ = swept
    ids = list(records(d))
    for columns in (80, 120, 200):
        out = ls_on_a_pty(d, columns)
        lines = out.splitlines()
        assert all(len(ln.rstrip()) <= columns for ln in lines), (columns, out)
        assert all(i in out for i in ids) and "score" in lines[0], (columns, out)  # whole ids, metrics
        assert sweep_id in out
        if columns >= 120:
            assert "error" in lines[0] and "ValueError: lr too" in out, (columns, out)
        else:  # left out, and said so
            assert "error" not in lines[0] and "the error column" in lines[-1], (columns, out)
    assert "ValueError: lr too big for 2 layers" in out  # at 200 columns, whole


def test_sweep_show_on_a_terminal_fits_and_keeps_ids_whole(swept):
    """`runlog sweep show` on an 80-column terminal: drawn by the shared table renderer —
    trial, run id, status and metric whole, the error cut to what is left, statuses in
    colour; on 60 columns the error goes (and a line says so), the parameters stay."""
    d, sweep_id, _ = swept
    trials = {r["id"]: r for r in records(d).values() if sweep_of(r)}
    raw = on_a_pty(d, 80, "sweep", "show", sweep_id)
    out = uncoloured(raw)
    lines = out.splitlines()
    assert lines[0].startswith(f"Sweep {sweep_id}: 4 trials")
    best = next(i for i, ln in enumerate(lines) if ln.startswith("Best: trial"))
    table = lines[1:best]
    assert table[0].split() == ["trial", "run", "status", "lr", "layers", "score", "error"]
    assert len(table) == 5 and all(len(ln) <= 80 for ln in table), out
    for run_id, r in trials.items():  # every run id whole, with its status
        row = next(ln.split() for ln in table[1:] if f" {run_id} " in f" {ln} ")
        assert row[2] == r["status"]
    failed = next(ln for ln in table if " failed " in ln)
    assert "ValueError: lr too" in failed and failed.endswith("…")  # cut, to fit the line
    assert "\x1b[31mfailed" in raw and "\x1b[32mfinished" in raw  # the statuses' colours
    narrow = uncoloured(on_a_pty(d, 60, "sweep", "show", sweep_id)).splitlines()
    head = next(ln for ln in narrow if ln.startswith("trial"))
    assert head.split() == ["trial", "run", "status", "lr", "layers", "score"]
    assert "… error not shown (a wider terminal shows them)" in narrow
    assert all(len(ln) <= 60 for ln in narrow[1:narrow.index(next(ln for ln in narrow
                                                                 if ln.startswith("Best:")))])


def test_a_trial_known_by_the_sweep_key_alone(tmp_path):
    """A newer runlog's trial carries ``sweep`` = {id, trial, params, seed} (and maybe no tags)."""
    from runlog.folder import record

    logs = tmp_path / "logs"
    for n, (lr, status) in enumerate([("1e-3", "finished"), ("1e-2", "failed")]):
        run_id = f"20200101-00000{n}"
        (logs / run_id).mkdir(parents=True)
        r = record.new_record(run_id, 1577836800.0 + n, command=["python", "f.py"],
                              command_line="python f.py", script="f.py", script_path="/x/f.py")
        r.update(status=status, sweep={"id": "20200101-000000-grid", "trial": n,
                                       "params": {"lr": lr}, "seed": None})
        if status == "failed":
            r["error"] = {"type": "ValueError", "message": "nan loss", "where": None, "traceback": []}
        record.write(str(logs / run_id), r)
    p = runlog(tmp_path, "ls", "--sweep", "20200101-000000-g")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3 and "20200101-000000-grid #1" in lines[1]
    assert "ValueError: nan loss" in lines[1]
    j = runlog(tmp_path, "ls", "--json")
    rows = [json.loads(ln) for ln in j.stdout.splitlines()]
    assert {r["sweep"]["trial"] for r in rows} == {0, 1}
