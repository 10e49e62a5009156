"""`runlog ls` on runs made by real runs."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys

from runlog.cli import main as cli
from runlog.cli.ls import ls

from conftest import clean_env


def test_plain_listing_newest_first_only_differing_args(history, capsys):
    assert cli(history.cli("ls")) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["id", "status", "duration", "note"]
    assert "lr" in header and "model" in header and "epochs" not in header  # epochs never differs
    assert header[-2:] == ["loss", "acc"]
    ids = history.ids()
    assert [ln.split()[0] for ln in lines[1:]] == ids[::-1]
    assert lines[1].split()[1] == "failed" and "too far" in lines[1]
    # aligned columns: each header word starts where its values start
    col = lines[0].index("lr")
    assert all(ln[col - 1] == " " for ln in lines[1:])


def test_filters_and_sort(history, capsys):
    ids = history.ids()
    assert cli(history.cli("ls", "--status", "failed")) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith(ids[3])
    assert cli(history.cli("ls", "--grep", "cnn")) == 0  # an argument's value
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]] == [ids[2]]
    assert cli(history.cli("ls", "--grep", "BASELINE")) == 0  # the note, any case
    assert capsys.readouterr().out.splitlines()[1].startswith(ids[0])
    assert cli(history.cli("note", ids[1], "remember the warmup")) == 0
    capsys.readouterr()
    assert cli(history.cli("ls", "--grep", "warmup")) == 0  # a later note
    assert capsys.readouterr().out.splitlines()[1].startswith(ids[1])
    assert cli(history.cli("ls", "--sort", "loss")) == 0  # lower is better for a loss
    rows = capsys.readouterr().out.splitlines()[1:]
    losses = [float(r.split()[-2]) for r in rows]
    assert losses == sorted(losses)
    assert cli(history.cli("ls", "--sort", "acc", "-n", "2")) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 2 and float(rows[0].split()[-1]) >= float(rows[1].split()[-1])
    assert cli(history.cli("ls", "--sort", "nope")) == 1
    assert "no listed run has a metric 'nope'" in capsys.readouterr().err


def test_machine_formats(history, capsys):
    assert cli(history.cli("ls", "--json")) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == history.ids()[::-1]
    assert rows[-1]["args"]["lr"] == 0.1 and rows[-1]["metrics"]["loss"]["count"] == 3
    assert cli(history.cli("ls", "--csv")) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0][:4] == ["id", "status", "duration", "note"] and len(table) == 5
    assert table[4][table[0].index("lr")] == "0.1"
    assert cli(history.cli("ls", "--md", "-n", "2")) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| id | status") and set(md[1]) <= set("|-") and len(md) == 4


def test_rich_table_on_a_terminal(history, capsys):
    assert ls(str(history.logs), tty=True) == 0
    out = capsys.readouterr().out
    assert "too far" in out and "baseline" in out


def test_n_and_all(history, capsys):
    for i in range(3):
        history.train("--epochs", "1")
    assert cli(history.cli("ls", "-n", "3")) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert cli(history.cli("ls", "--all")) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8


def test_lost_run(project, capsys):
    (project.path / "slow.py").write_text(
        "import runlog, time\nrunlog.start(git=False)\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "slow.py"], cwd=project.path, env=clean_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert cli(project.cli("ls")) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cli(project.cli("ls", "--status", "lost")) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[1] == "lost"
