"""`runlog note`: append, never rewrite."""

from __future__ import annotations

import datetime
import os
import re
import stat

from runlog.cli import main as cli

from cli_helpers import add_mess


def test_notes_append_in_order(history, capsys):
    ids = history.ids()
    assert cli(history.cli("note", "first thought")) == 0
    assert capsys.readouterr().out == f"noted on {ids[-1]}\n"
    assert cli(history.cli("note", "second", "thought")) == 0  # words joined
    assert cli(history.cli("note", ids[0], "on the baseline")) == 0
    assert cli(history.cli("note", "-2", "on the cnn")) == 0
    notes = (history.logs / ids[-1] / "notes.md").read_text()
    assert notes.index("first thought") < notes.index("second thought")
    assert notes.count("## 20") == 2
    assert "on the baseline" in (history.logs / ids[0] / "notes.md").read_text()
    assert "on the cnn" in (history.logs / ids[2] / "notes.md").read_text()
    before = notes
    assert cli(history.cli("note", "third")) == 0
    after = (history.logs / ids[-1] / "notes.md").read_text()
    assert after.startswith(before)  # earlier notes are never rewritten


def test_editor(history, tmp_path, monkeypatch, capsys):
    editor = tmp_path / "ed.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor\\n" > "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(editor))
    assert cli(history.cli("note")) == 0
    notes = (history.logs / history.ids()[-1] / "notes.md").read_text()
    assert "written in the editor" in notes
    empty = tmp_path / "empty.sh"
    empty.write_text("#!/bin/sh\n: > \"$1\"\n")
    empty.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(empty))
    assert cli(history.cli("note")) == 1
    assert "empty note" in capsys.readouterr().err


def test_run_or_text(history, capsys):
    assert cli(history.cli("note", "-9", "x")) == 1  # -N always names a run
    assert "no run -9" in capsys.readouterr().err
    assert cli(history.cli("note", "zzz", "is", "text")) == 0  # not a run: part of the note
    assert "zzz is text" in (history.logs / history.ids()[-1] / "notes.md").read_text()
    assert not os.path.exists(history.logs / history.ids()[0] / "notes.md")


def test_each_note_has_its_time(history, capsys):
    ids = history.ids()
    before = datetime.datetime.now().astimezone().replace(microsecond=0)
    assert cli(history.cli("note", ids[1], "one")) == 0
    assert cli(history.cli("note", ids[1], "two\n\nparagraphs")) == 0
    after = datetime.datetime.now().astimezone()
    text = (history.logs / ids[1] / "notes.md").read_text()
    stamps = re.findall(r"^## (\S+)$", text, re.M)
    times = [datetime.datetime.fromisoformat(s) for s in stamps]
    assert len(times) == 2 and all(t.tzinfo is not None for t in times)  # with its offset
    assert before <= times[0] <= times[1] <= after
    assert text.index("one") < text.index("two\n\nparagraphs")
    assert cli(history.cli("show", ids[1])) == 0  # and show prints them
    out = capsys.readouterr().out
    assert "Notes:" in out and "  one" in out and "  paragraphs" in out


def test_run_by_prefix_and_text_that_only_looks_like_one(project, capsys):
    project.train("--note", "only run")
    (run_id,) = project.ids()
    assert cli(project.cli("note", run_id[:11], "by its prefix")) == 0
    assert cli(project.cli("note", "20", "epochs are enough")) == 0  # a short word is text
    notes = (project.logs / run_id / "notes.md").read_text()
    assert "\nby its prefix\n" in notes and "\n20 epochs are enough\n" in notes
    project.train()
    project.train()
    ids = project.ids()
    shared = ids[0][:8]  # the day: a prefix of every run, so it means a run but not which
    assert cli(project.cli("note", shared, "which one?")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"runlog: error: '{shared}' matches 3 runs") and err.count("\n") == 1
    assert not any((project.logs / i / "notes.md").exists() for i in ids[1:])


def test_notes_among_foreign_files_and_broken_runs(history, capsys):
    ids = history.ids()
    add_mess(history.logs)
    assert cli(history.cli("note", "-2", "still fine")) == 0
    out = capsys.readouterr()
    assert out.out == f"noted on {ids[2]}\n" and out.err == ""  # the broken are older
    assert cli(history.cli("note", "20200101-000000", "torn")) == 1  # a run's folder, broken
    out = capsys.readouterr()
    assert out.out == "" and out.err.splitlines()[-1].startswith(
        "runlog: error: run '20200101-000000' has no readable record (")
    assert cli(history.cli("note", "tensorboard", "shows nan")) == 0  # a folder, not a run
    assert "tensorboard shows nan" in (history.logs / ids[3] / "notes.md").read_text()
    assert "still fine" in (history.logs / ids[2] / "notes.md").read_text()
