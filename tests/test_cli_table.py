"""The one table renderer (`runlog.cli.table`), and `show`/`diff` drawn by it on real terminals."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO

import pytest
from rich.console import Console

from runlog.cli.table import Column, fit, render

from cli_helpers import on_a_terminal
from conftest import clean_env

ID_A, ID_B = "20261129-183212", "20261129-183212-2"
NOTE = "a long note that says at some length why this run exists and what it should show"
COLS = [Column("id"), Column("status"), Column("note", wrap=True),
        Column("min", "right", priority=2), Column("max", "right", priority=1)]
ROWS = [[ID_B, "interrupted", NOTE, "0.001", "12.5"], [ID_A, "finished", "short", "1", "2"]]


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("width", [30, 50, 80, 120, 200])
def test_essential_cells_are_never_cut(width):
    text = render(COLS, ROWS, console=Console(file=StringIO(), width=width))
    words = text.split()
    assert ID_A in words and ID_B in words and "interrupted" in words and "finished" in words
    # a note too long for the line wraps (by words, by letters when the line is very short):
    # the note's column, read down, has every letter in order
    lines = text.splitlines()
    start = lines[0].index("note")
    end = lines[0].index("min") - 2 if "min" in lines[0] else lines[0].index("max") - 2 \
        if "max" in lines[0] else None
    column = " ".join(ln[start:end] for ln in lines[1:] if not ln.lstrip().startswith("…"))
    assert re.sub(r"\s", "", NOTE) in re.sub(r"\s", "", column)
    if width >= 80:
        assert NOTE in _words(column)  # whole words
    if width >= 50:
        assert all(len(ln) <= width for ln in text.splitlines())


def test_columns_go_by_priority_and_the_table_says_which():
    wide = render(COLS, ROWS, console=Console(file=StringIO(), width=200))
    assert wide.splitlines()[0].split() == ["id", "status", "note", "min", "max"]
    assert "not shown" not in wide and NOTE in wide  # room for all: nothing wraps
    mid = render(COLS, ROWS, console=Console(file=StringIO(), width=60))
    assert mid.splitlines()[0].split() == ["id", "status", "note", "max"]  # min (2) goes first
    assert mid.splitlines()[-1].strip() == "… min not shown (a wider terminal shows them)"
    keep, narrow, needed = fit(COLS, ROWS, 60, indent=2)
    assert keep == [0, 1, 2, 4] and needed <= 60 and narrow[2] >= 20


def test_a_firm_column_keeps_its_width_while_a_column_can_go():
    # ls: id, status, a note (firm, down to 12) and four arguments (priority 3)
    cols = [Column("id"), Column("status"), Column("note", min_width=12, firm=True),
            *(Column(a, priority=3) for a in "abcd")]
    rows = [[ID_B, "finished", "x" * 40, "1", "2", "3", "4"]]
    keep, narrow, needed = fit(cols, rows, 80)  # 17+8+40 and gaps = 69: room for 3 of 4
    assert keep == [0, 1, 2, 3, 4, 5] and narrow == {} and needed == 69 + 3 * 3
    keep, narrow, needed = fit(cols, rows, 60)  # every argument goes, then the note gives way
    assert keep == [0, 1, 2] and narrow == {2: 31} and needed == 60
    keep, narrow, needed = fit(cols, rows, 20)  # the id and status stay whole, the note at 12
    assert keep == [0, 1, 2] and narrow == {2: 12} and needed == 17 + 8 + 12 + 4


def test_a_column_left_out_comes_back_when_a_narrower_one_fits():
    # as ls: a wide sweep column (priority 1) goes after the error (2) and the arguments (3);
    # then the error (at its least) and the arguments come back in the room it left, and
    # the error takes what is still spare
    cols = [Column("id"), Column("sweep", priority=1), Column("error", priority=2, min_width=6),
            Column("a", priority=3), Column("b", priority=3)]
    rows = [["x" * 10, "s" * 30, "e" * 20, "1" * 5, "2" * 5]]
    keep, narrow, needed = fit(cols, rows, 40)
    assert keep == [0, 2, 3, 4] and needed == 40
    assert narrow == {2: 40 - (10 + 5 + 5) - 3 * 2}
    # of equal priority the leftmost are shown: a narrow one right of one too wide stays out
    rows = [["x" * 10, "s" * 30, "e" * 20, "1" * 25, "2"]]
    keep, narrow, _ = fit(cols, rows, 40)
    assert keep == [0, 2] and narrow == {}
    keep, narrow, _ = fit(cols, rows, 200)  # room for all: nothing shrunk
    assert keep == [0, 1, 2, 3, 4] and narrow == {}


def test_the_line_under_the_table_is_the_callers():
    said = []

    def left_out(hidden):
        said.append([c.header for c in hidden])
        return f"… {len(hidden)} more (widen the terminal)"

    text = render(COLS, ROWS, console=Console(file=StringIO(), width=60), left_out=left_out)
    assert said == [["min"]] and text.splitlines()[-1] == "  … 1 more (widen the terminal)"
    assert render(COLS, ROWS, console=Console(file=StringIO(), width=60),
                  left_out=lambda hidden: None).splitlines()[-1].split()[0] == ID_A  # no line
    said.clear()
    render(COLS, ROWS, console=Console(file=StringIO(), width=200), left_out=left_out)
    assert said == []  # nothing left out: not asked


def test_plain_text_is_aligned_and_whole():
    text = render(COLS, ROWS)  # no console: piped
    lines = text.splitlines()
    assert lines[0] == "  id                 status       note" + " " * (len(NOTE) - 4) + "    min   max"
    assert lines[1] == f"  {ID_B}  interrupted  {NOTE}  0.001  12.5"
    assert lines[2].endswith("      1     2")  # numbers to the right
    assert render([Column(), Column()], [["a", ""], ["bb", ""]]) == "  a\n  bb\n"  # empty: no room
    assert render(COLS, []) == ""


def test_cells_are_printable_text():
    evil = "x\x1b]52;c;R0lWRU4=\x07y\tz\nw"
    for console in (None, Console(file=StringIO(), width=120, force_terminal=True)):
        text = render([Column("k"), Column("v")], [["name", evil]], console=console)
        assert "\x07" not in text and "\x1b]" not in text and "\t" not in text
        assert r"x\x1b]52;c;R0lWRU4=\x07y z\nw" in re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_styles_reach_a_terminal_only():
    cols = [Column("id"), Column("status", style=lambda s: "red" if s == "failed" else None)]
    rows = [[ID_A, "failed"]]
    colour = render(cols, rows, console=Console(file=StringIO(), width=80, force_terminal=True,
                                                  color_system="standard"))
    assert "\x1b[31mfailed" in colour
    assert "\x1b[" not in render(cols, rows)
    assert "\x1b[" not in render(cols, rows, console=Console(file=StringIO(), width=80))


# show and diff under a real pseudo-terminal, as a person sees them
SCRIPT = """\
import argparse, runlog, sys
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--model", default="mlp")
p.add_argument("--layers", type=int, nargs="+", default=[2 ** i for i in range(6, 22)])
p.add_argument("--stop", action="store_true")
a = p.parse_args()
run = runlog.start(git=False)
for s in range(5):
    run.log_metrics({"loss": 1 / (s + 1) * a.lr, "validation_accuracy_top5_of_the_held_out_set": s / 5},
                    step=s)
if a.stop:
    raise KeyboardInterrupt
"""
NOTES = ["baseline, the settings of the paper, nothing changed from what they describe",
         "interrupted on purpose: a long note that wraps on a narrow terminal but never loses a word"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tables")
    (d / "t.py").write_text(SCRIPT)
    for extra, note in ((["--lr", "1e-4"], NOTES[0]), (["--lr", "3e-4", "--model", "cnn", "--stop"],
                                                       NOTES[1])):
        subprocess.run([sys.executable, "t.py", *extra, "--note", note], cwd=d, env=clean_env(),
                       capture_output=True, timeout=60)
    ids = sorted(p.name for p in (d / "logs").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(ids) == 2
    return d / "logs", ids


def _on_a_pty(logs, columns: int, *args: str) -> str:
    text = on_a_terminal([sys.executable, "-m", "runlog", "--dir", str(logs), *args], columns,
                         clean_env())
    assert "\x1b[" in text  # drawn for a terminal (colour), not the piped form
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_show_and_diff_on_terminals(two_runs, columns):
    logs, ids = two_runs
    diff = _on_a_pty(logs, columns, "diff", ids[0], ids[1])
    head, args, metrics = diff.split("\n\n")[:3]
    assert all(len(ln) <= columns for ln in diff.splitlines()), diff
    assert head.split()[:3] == ["A", ids[0], "finished"]
    assert f"B {ids[1]}" in head and "interrupted" in head.split()
    assert NOTES[0] in _words(head) and NOTES[1] in _words(head)  # wrapped, never cut
    assert [ln.split() for ln in args.splitlines()[1:]] == [["lr", "0.0001", "0.0003"],
                                                          ["model", "mlp", "cnn"],
                                                          ["stop", "False", "True"]]
    rows = {ln.split()[0]: ln.split()[1:] for ln in metrics.splitlines()[1:]}
    assert set(rows) == {"loss", "validation_accuracy_top5_of_the_held_out_set"}
    assert rows["loss"][:2] == ["2e-05", "6e-05"]

    show = _on_a_pty(logs, columns, "show", ids[1])
    assert show.startswith(f"Run {ids[1]} · interrupted")
    section = {p.splitlines()[0]: p for p in show.split("\n\n")}
    tables = [v for k, v in section.items() if k in ("Arguments:", "Metrics:")
              or k.startswith("Files in ")]
    # the tables fit (the report above them is the report: its lines are what it pastes)
    assert all(len(ln) <= columns for t in tables for ln in t.splitlines()[1:]), show
    args = section["Arguments:"]
    layers = "[" + ",".join(str(2 ** i) for i in range(6, 22)) + "]"
    assert layers in re.sub(r"\s+", "", args)  # a long value wraps, whole
    assert ["lr", "given", "0.0003"] in [ln.split() for ln in args.splitlines()]
    metrics = section["Metrics:"].splitlines()
    assert metrics[1].split()[:2] == ["metric", "last"]
    assert metrics[3].split()[0] == "validation_accuracy_top5_of_the_held_out_set"
    if columns >= 120:  # room for every column
        assert metrics[1].split() == ["metric", "last", "min", "max", "points", "step"]
    files = section[[k for k in section if k.startswith("Files in ")][0]]
    assert "run.json" in files and "run.log" in files


def test_show_and_diff_piped_stay_plain(two_runs):
    logs, ids = two_runs
    for args in (["show", ids[1]], ["diff", ids[0], ids[1]]):
        p = subprocess.run([sys.executable, "-m", "runlog", "--dir", str(logs), *args],
                           env=clean_env(COLUMNS="40"), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "\x1b" not in p.stdout
        assert NOTES[1] in p.stdout  # one line, whatever the terminal's width
