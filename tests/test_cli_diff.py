"""`runlog diff`: two runs side by side."""

from __future__ import annotations

from runlog.cli import main as cli


def test_diff_arguments_metrics_notes_code(history, capsys):
    ids = history.ids()
    assert cli(history.cli("note", ids[2], "deeper model")) == 0
    capsys.readouterr()
    assert cli(history.cli("diff", ids[1], ids[2])) == 0
    out = capsys.readouterr().out
    head, args, metrics, notes, code = out.split("\n\n")
    assert head.splitlines() == [f"A {ids[1]}  finished  higher lr", f"B {ids[2]}  finished  a cnn"]
    assert args.splitlines()[1].split() == ["model", "mlp", "cnn"]
    assert "lr" not in args  # the same in both
    assert metrics.startswith("Metrics (last):")
    assert "deeper model" in notes
    assert "tweak the loop" in code and code.splitlines()[2].startswith("  + ")  # the commit
    assert "train.py" in code and "model.py" in code  # committed change and untracked file


def test_one_run_compares_with_its_previous(history, capsys):
    ids = history.ids()
    assert cli(history.cli("diff", ids[1])) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"A {ids[0]}") and "lr  0.1  0.3" in out.replace("   ", "  ")


def test_diff_errors(history, capsys):
    assert cli(history.cli("diff", "-1", "-1")) == 1
    assert "same run" in capsys.readouterr().err
    assert cli(history.cli("diff", history.ids()[0])) == 1
    assert "no previous run" in capsys.readouterr().err
