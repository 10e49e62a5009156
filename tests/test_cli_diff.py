"""`runlog diff`: two runs side by side."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runlog.cli import main as cli

import cli_helpers
from cli_helpers import add_mess
from conftest import clean_env

shared_history = cli_helpers.shared_history  # the fixture, for this module


def test_diff_arguments_metrics_notes_code(history, capsys):
    ids = history.ids()
    assert cli(history.cli("note", ids[2], "deeper model")) == 0
    capsys.readouterr()
    assert cli(history.cli("diff", ids[1], ids[2])) == 0
    out = capsys.readouterr().out
    head, args, metrics, notes, code, env = out.split("\n\n")
    assert env.startswith("Environment (A → B):")  # the same machine and Python: no host row
    assert "host" not in env
    a_line, b_line = head.splitlines()
    assert a_line.split() == ["A", ids[1], "finished", "higher", "lr"]
    assert b_line.split() == ["B", ids[2], "finished", "a", "cnn"]
    assert a_line.index("finished") == b_line.index("finished")  # one table: aligned
    assert args.splitlines()[1].split() == ["model", "mlp", "cnn"]
    assert "lr" not in args  # the same in both
    assert metrics.startswith("Metrics (last):")
    assert "deeper model" in notes
    assert "tweak the loop" in code and code.splitlines()[2].startswith("  + ")  # the commit
    assert "train.py" in code and "model.py" in code  # committed change and untracked file


def test_one_run_compares_with_its_previous(shared_history, capsys):
    ids = shared_history.ids()
    assert cli(shared_history.cli("diff", ids[1])) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"A {ids[0]}") and "lr  0.1  0.3" in out.replace("   ", "  ")


def test_diff_errors(shared_history, capsys):
    assert cli(shared_history.cli("diff", "-1", "-1")) == 1
    assert "same run" in capsys.readouterr().err
    assert cli(shared_history.cli("diff", shared_history.ids()[0])) == 1
    assert "no previous run" in capsys.readouterr().err


OTHER = """\
import argparse, runlog

p = argparse.ArgumentParser()
p.add_argument("--width", type=int, default=3)
p.add_argument("--model", default="mlp")
a = p.parse_args()
run = runlog.start(git=False)
run.metric("loss", 0.5)
run.metric("speed", 100.0)
"""


def _sections(out: str) -> dict[str, list[str]]:
    parts = out.split("\n\n")
    return {p.splitlines()[0]: p.splitlines()[1:] for p in parts[1:]}


def test_arguments_only_in_one_and_metric_deltas(history, capsys):
    (history.path / "other.py").write_text(OTHER)
    subprocess.run([sys.executable, "other.py", "--width", "5"], cwd=history.path,
                   env=clean_env(), check=True, capture_output=True)
    ids = history.ids()
    a, b = history.record(ids[0]), history.record(ids[-1])
    assert cli(history.cli("diff", ids[0], "-1")) == 0
    s = _sections(capsys.readouterr().out)
    args = {ln.split()[0]: ln.split()[1:] for ln in s["Arguments (A → B):"]}
    assert args["lr"] == ["0.1", "—"] and args["epochs"] == ["3", "—"]  # only in A
    assert args["width"] == ["—", "5"]  # only in B
    assert "model" not in args  # mlp in both
    metrics = {ln.split()[0]: ln.split()[1:] for ln in s["Metrics (last):"]}
    loss_a = a["metrics"]["loss"]["last"]
    assert float(metrics["loss"][0]) == pytest.approx(loss_a, rel=1e-3)
    assert metrics["loss"][1] == "0.5"
    assert float(metrics["loss"][2]) == pytest.approx(0.5 - loss_a, rel=1e-3)
    assert metrics["loss"][2].startswith("+" if 0.5 > loss_a else "-")
    assert metrics["acc"][1] == "—" and len(metrics["acc"]) == 2  # no delta without both
    assert metrics["speed"] == ["—", "100.0"]  # a float stays a float
    assert b["git"] is None
    assert s["Code:"] == [f"  ({ids[-1]} recorded no git state)"]  # not every file "removed"


def test_a_commit_and_an_uncommitted_change_show_by_file(history, capsys):
    ids = history.ids()
    train = history.path / "train.py"
    train.write_text(train.read_text() + "print('one more line')\nprint('and another')\n")
    history.train("--lr", "0.3", "--model", "cnn", "--note", "uncommitted")
    assert cli(history.cli("note", ids[1], "before the tweak")) == 0
    new = history.ids()[-1]
    assert cli(history.cli("diff", ids[1], new)) == 0
    s = _sections(capsys.readouterr().out)
    code = s["Code:"]
    short_a = history.record(ids[1])["git"]["short"]
    short_b = history.record(new)["git"]["short"]
    assert code[0] == f"  {short_a} → {short_b} + changes"
    assert code[1] == f"  + {short_b} tweak the loop"  # the commit between them
    files = {ln.split()[0]: ln.split()[1:] for ln in code[code.index("  files:") + 1:]}
    # train.py: one line committed ("# tweak"), two uncommitted; model.py: untracked, saved
    assert files == {"train.py": ["+3", "-0"], "model.py": ["+1", "-0"]}
    assert s["Notes on A:"][1:] == ["  before the tweak"]
    assert cli(history.cli("diff", new)) == 0  # with its previous run: the same commit
    code = _sections(capsys.readouterr().out)["Code:"]
    assert code[0] == f"  {short_b} + changes → {short_b} + changes"
    assert code[1:] == ["  files:", "    train.py  +2 -0"]


def test_diff_among_foreign_files_and_broken_runs(history, capsys):
    add_mess(history.logs)
    assert cli(history.cli("diff", "-2", "-1")) == 0
    out = capsys.readouterr()
    assert out.out.startswith("A ") and out.err == ""  # only the two runs named are read
