"""`runlog note`: append, never rewrite."""

from __future__ import annotations

import os
import stat

from runlog.cli import main as cli


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
