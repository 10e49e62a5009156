"""`runlog ls` on runs made by real runs."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys

import pytest

from runlog.cli import main as cli
from runlog.cli.ls import ls

import cli_helpers
from cli_helpers import add_mess, md_table, on_a_terminal, one_error_line, runlog
from conftest import clean_env

shared_history = cli_helpers.shared_history  # the fixture, for this module


def test_plain_listing_newest_first_only_differing_args(shared_history, capsys):
    assert cli(shared_history.cli("ls")) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["id", "status", "duration", "note"]
    assert "lr" in header and "model" in header and "epochs" not in header  # epochs never differs
    assert header[-2:] == ["loss", "acc"]
    ids = shared_history.ids()
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


def test_machine_formats(shared_history, capsys):
    assert cli(shared_history.cli("ls", "--json")) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == shared_history.ids()[::-1]
    assert rows[-1]["args"]["lr"] == 0.1 and rows[-1]["metrics"]["loss"]["count"] == 3
    assert cli(shared_history.cli("ls", "--csv")) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0][:4] == ["id", "status", "duration", "note"] and len(table) == 5
    assert table[4][table[0].index("lr")] == "0.1"
    assert cli(shared_history.cli("ls", "--md", "-n", "2")) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| id | status") and set(md[1]) <= set("|-") and len(md) == 4


def test_rich_table_on_a_terminal(shared_history, capsys):
    assert ls(str(shared_history.logs), tty=True) == 0
    out = capsys.readouterr().out
    assert "too far" in out and "baseline" in out


def test_n_and_all(history, capsys):
    for _ in range(3):
        history.train("--epochs", "1")
    assert cli(history.cli("ls", "-n", "3")) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert cli(history.cli("ls", "--all")) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8
    for bad in ("0", "-2"):
        assert cli(history.cli("ls", "-n", bad)) == 1
        assert capsys.readouterr().err == f"runlog: error: -n {bad}: give at least 1 (or --all)\n"


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


def test_metric_columns_show_each_runs_last_value(shared_history, capsys):
    assert cli(shared_history.cli("ls")) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    for line in lines[1:]:
        cells = line.split()
        metrics = shared_history.record(cells[0])["metrics"]
        assert float(cells[header.index("loss") + len(cells) - len(header)]) == pytest.approx(
            metrics["loss"]["last"], rel=1e-3)
        assert float(cells[-1]) == pytest.approx(metrics["acc"]["last"], rel=1e-3)


def test_md_and_csv_parse_back_to_the_json_rows(history, capsys):
    assert cli(history.cli("note", "-1", "a | pipe, a comma and \"quotes\"")) == 0
    capsys.readouterr()
    assert cli(history.cli("ls", "--json")) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert cli(history.cli("ls", "--md")) == 0
    md = md_table(capsys.readouterr().out)
    assert cli(history.cli("ls", "--csv")) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in md] == [r["id"] for r in table] == [r["id"] for r in rows]
    for j, m, c in zip(rows, md, table):
        # the same cells, whatever the format; CSV is data: a duration in seconds
        assert float(c.pop("duration")) == pytest.approx(j["duration_s"]) and m.pop("duration")
        assert m == c
        assert m["status"] == j["shown_status"] and m["note"] == (j["note"] or "")
        assert float(m["lr"]) == j["args"]["lr"] and m["model"] == j["args"]["model"]
        assert float(m["loss"]) == pytest.approx(j["metrics"]["loss"]["last"], rel=1e-3)
    history.train("--note", "a | b, c")  # a note that needs escaping in both formats
    assert cli(history.cli("ls", "--md", "-n", "1")) == 0
    assert md_table(capsys.readouterr().out)[0]["note"] == "a | b, c"
    assert cli(history.cli("ls", "--csv", "-n", "1")) == 0
    assert next(csv.DictReader(io.StringIO(capsys.readouterr().out)))["note"] == "a | b, c"


def test_every_run_streamed_reads_as_the_runs_held(shared_history, capsys):
    """--all reads the runs twice (columns, then rows) instead of holding them: the same
    table, CSV and JSON as a list of the same runs gives."""
    for fmt in ([], ["--csv"], ["--json"], ["--md"], ["--grep", "lr"], ["--status", "finished"]):
        assert cli(shared_history.cli("ls", "--all", *fmt)) == 0
        streamed = capsys.readouterr().out
        assert cli(shared_history.cli("ls", "-n", "1000", *fmt)) == 0
        assert capsys.readouterr().out == streamed and streamed, fmt


def test_piped_output_is_plain_aligned_text(shared_history):
    p = runlog(shared_history.logs, "ls")  # stdout is a pipe here, as in `runlog ls | grep …`
    assert p.returncode == 0 and p.stderr == ""
    assert "\x1b" not in p.stdout and "─" not in p.stdout and "│" not in p.stdout
    lines = p.stdout.splitlines()
    starts = [i for i in range(1, len(lines[0])) if lines[0][i - 1] == " " and lines[0][i] != " "]
    for line in lines[1:]:
        for i in starts:  # every column starts at the same place on every line
            assert line[i - 1] == " ", (line, i)


def test_grep_matches_the_id_and_an_argument_name(shared_history, capsys):
    ids = shared_history.ids()
    assert cli(shared_history.cli("ls", "--grep", ids[1])) == 0  # a whole id, or a part of one
    got = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert got[-1] == ids[1] and ids[0] not in got
    assert cli(shared_history.cli("ls", "--grep", "model=cnn")) == 0
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]] == [ids[2]]
    assert cli(shared_history.cli("ls", "--grep", "nothing like this")) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == "runlog: no runs match\n"


def test_status_takes_several(shared_history, capsys):
    assert cli(shared_history.cli("ls", "--status", "failed,finished")) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert cli(shared_history.cli("ls", "--status", "finished", "--json")) == 0
    assert {json.loads(x)["status"] for x in capsys.readouterr().out.splitlines()} == {"finished"}


def test_foreign_files_and_broken_runs_never_crash(history, capsys):
    broken = add_mess(history.logs)
    for args in (["ls"], ["ls", "--all"], ["ls", "--grep", "a"], ["ls", "--sort", "loss"],
                 ["ls", "--json"], ["ls", "--status", "failed"]):
        assert cli(history.cli(*args)) == 0, args
        out = capsys.readouterr()
        warnings = out.err.splitlines()
        assert len(warnings) == 2, (args, out.err)  # one line for each broken run, none else
        assert all(w.startswith("runlog: warning: ") for w in warnings)
        assert sorted(b for b in broken for w in warnings if b in w) == broken
        for name in ("README", "journal", "tensorboard", "empty", "20200101"):
            assert name not in out.out
    assert cli(history.cli("ls", "-n", "2")) == 0  # the newest two: the broken are never read
    err = capsys.readouterr().err  # no warning; one line says that there is more
    assert err.startswith("runlog: … ") and err.endswith(" more runs (use -n N or --all)\n")
    with_record = [i for i in history.ids() if (history.logs / i / "run.json").exists()]
    assert int(err.split()[2]) == len(with_record) - 2  # counted by folder, none parsed


def test_missing_log_dir_is_one_line(tmp_path):
    p = runlog(tmp_path / "nowhere", "ls")
    assert p.returncode == 1 and p.stdout == ""
    assert "no log directory" in one_error_line(p.stderr)
    p = runlog(tmp_path / "nowhere", "ls", "--all", "--json")
    assert p.returncode == 1 and "no log directory" in one_error_line(p.stderr)


def test_a_run_the_index_never_saw_is_listed_whole(history, capsys):
    # the index is a cache: deleted (or written by an older runlog), then a note is
    # added, so the index has a notes line for the run but no status line
    (history.logs / ".runlog-index.jsonl").unlink()
    ids = history.ids()
    assert cli(history.cli("note", ids[0], "seen later")) == 0
    capsys.readouterr()
    for args in (["ls", "--all"], ["ls"], ["ls", "--grep", "seen later"]):
        assert cli(history.cli(*args)) == 0
        row = [ln for ln in capsys.readouterr().out.splitlines() if ln.split()[0] == ids[0]]
        assert row and row[0].split()[1] == "finished" and "baseline" in row[0], args


SAME_SECOND = """\
import os, time, runlog

time.sleep(1 - time.time() % 1)  # the start of a second: all twelve fit in it
for i in range(12):
    with runlog.start(args={"i": i}, git=False, console=False, capture_output=False):
        pass
"""


def test_runs_of_the_same_second_are_in_start_order(project, capsys):
    # their ids end in -2 … -12, which do not sort as text ("-9" > "-12")
    (project.path / "many.py").write_text(SAME_SECOND)
    subprocess.run([sys.executable, "many.py"], cwd=project.path, env=clean_env(), check=True,
                   capture_output=True)
    assert cli(project.cli("ls", "--all", "--json")) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["args"]["i"] for r in rows] == list(range(11, -1, -1))
    newest = [r["id"] for r in rows]
    assert cli(project.cli("ls", "-n", "3")) == 0  # the fast path reads only the index's end
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]] == newest[:3]
    assert cli(project.cli("show", "-1", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["id"] == newest[0]


def test_old_schema_and_missing_files_are_read(project, capsys):
    old = project.logs / "20250101-120000"
    old.mkdir(parents=True)
    # a record from an older runlog: no schema, few fields, no log, no report
    (old / "run.json").write_text(json.dumps({"id": "20250101-120000", "status": "finished",
                                              "note": "from last year", "args": {"lr": 0.5}}))
    project.train("--lr", "0.2")
    assert cli(project.cli("ls")) == 0
    out = capsys.readouterr()
    assert "from last year" in out.out and out.err == ""
    for cmd in (["show", "2025"], ["report", "2025"], ["diff", "2025", "-1"],
                ["tail", "--no-follow", "2025"]):
        assert cli(project.cli(*cmd)) == 0, cmd
    assert "from last year" in capsys.readouterr().out


def _ls_on_a_pty(logs, columns: int) -> str:
    import re

    env = {k: v for k, v in os.environ.items() if k != "RUNLOG_DIR"}
    text = on_a_terminal([sys.executable, "-m", "runlog", "--dir", str(logs), "ls"], columns, env)
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_ls_on_narrow_and_wide_terminals(tmp_path):
    # ids are what you type next: never cut; statuses whole; argument columns go first
    (tmp_path / "t.py").write_text(
        "import argparse, runlog\np = argparse.ArgumentParser()\n"
        + "".join(f"p.add_argument('--{a}', default=0)\n" for a in "abcdefgh")
        + "a = p.parse_args()\nrun = runlog.start(git=False, note='a fairly long note saying "
          "why this run exists at all')\nrun.metric('val_loss', 0.5)\n")
    env = clean_env()
    for i in range(3):
        subprocess.run([sys.executable, "t.py", *(f"--{a}={i}" for a in "abcdefgh")],
                       cwd=tmp_path, env=env, check=True, capture_output=True)
    ids = sorted(p.name for p in (tmp_path / "logs").iterdir() if p.is_dir() and not p.name.startswith("."))
    for columns in (80, 120, 200):
        out = _ls_on_a_pty(tmp_path / "logs", columns)
        lines = out.splitlines()
        assert all(len(ln.rstrip()) <= columns for ln in lines), (columns, out)
        for i in ids:
            assert i in out, (columns, out)  # whole
        assert out.count("finished") == 3 and "val_loss" in out
        shown = [a for a in "abcdefgh" if f" {a} " in f" {lines[0]} "]
        if len(shown) < 8:
            assert f"… {8 - len(shown)} more differing argument" in out, (columns, out)
        else:
            assert "more differing" not in out
    assert len(shown) == 8  # at 200 columns, all of them


def test_on_80_columns_the_note_keeps_40_characters_before_any_argument(tmp_path):
    """Issue 14: a long note and 8 differing arguments on an 80-column terminal: the note
    shows its first 40 characters (cut there, as piped) and the arguments go, counted."""
    note = "why: the warmup of the previous run was far too short for this batch size"
    (tmp_path / "t.py").write_text(
        "import argparse, runlog\np = argparse.ArgumentParser()\n"
        + "".join(f"p.add_argument('--{a}', default=0)\n" for a in "abcdefgh")
        + f"a = p.parse_args()\nrunlog.start(git=False, note={note!r})\n")
    for i in range(2):
        subprocess.run([sys.executable, "t.py", *(f"--{a}={i}" for a in "abcdefgh")],
                       cwd=tmp_path, env=clean_env(), check=True, capture_output=True)
    out = _ls_on_a_pty(tmp_path / "logs", 80)
    lines = out.splitlines()
    header = lines[0].split()
    shown = header[4:]  # an argument or two when the ids are short (runs of different seconds)
    assert header[:4] == ["id", "status", "duration", "note"] and shown == list("abcdefgh")[:len(shown)]
    assert len(shown) < 8 and all(len(ln) <= 80 for ln in lines), out
    assert [ln.count(note[:39] + "…") for ln in lines[1:3]] == [1, 1], out  # 40 characters
    assert lines[-1] == f"… {8 - len(shown)} more differing arguments (widen the terminal, or --csv)"
    wide = _ls_on_a_pty(tmp_path / "logs", 120).splitlines()  # room: the arguments come back
    assert wide[0].split() == ["id", "status", "duration", "note", *"abcdefgh"], wide
    assert note[:39] + "…" in wide[1] and "more differing" not in "\n".join(wide)
