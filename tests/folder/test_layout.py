"""folder/layout.py: every name in a log directory and a run folder."""

from __future__ import annotations

import os

from runlog.folder import layout
from runlog.folder.layout import LogDir, RunFolder


def test_a_run_folder_names_each_of_its_files(tmp_path):
    f = RunFolder(str(tmp_path / "20261122-133316"))
    assert f.id == "20261122-133316" and os.fspath(f) == f.path
    names = {f.log: "run.log", f.record: "run.json", f.metrics: "metrics.jsonl",
             f.patch: "code.patch", f.notes: "notes.md", f.report: "report.md",
             f.cells: "cells.py", f.args: "args.json", f.note: "note.txt"}
    for path, name in names.items():
        assert path == os.path.join(f.path, name)
    assert f.file("rank1.log") == os.path.join(f.path, layout.rank_log(1))
    assert layout.rank_log(0) == "run.log"


def test_a_log_directory_names_its_own_files(tmp_path):
    d = LogDir(str(tmp_path))
    assert d.index == str(tmp_path / ".runlog-index.jsonl")
    assert d.sweeps == str(tmp_path / ".sweeps")
    assert d.journal == str(tmp_path / "journal.html")
    assert d.run("x").path == str(tmp_path / "x")


def test_has_record_and_last_write(tmp_path):
    f = RunFolder(str(tmp_path))
    assert not f.has_record() and f.last_write() is None
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "run.log").write_text("a\n")
    (tmp_path / "notes.md").write_text("later\n")  # a note is no write of the run
    os.utime(tmp_path / "run.json", (1000, 1000))
    os.utime(tmp_path / "run.log", (3000, 3000))
    os.utime(tmp_path / "notes.md", (9000, 9000))
    assert f.has_record()
    assert f.last_write() == 3000


def test_log_root_argument_then_environment_then_logs(monkeypatch, tmp_path):
    assert layout.log_root() == "logs"
    monkeypatch.setenv("RUNLOG_DIR", str(tmp_path / "env"))
    assert layout.log_root() == str(tmp_path / "env")
    assert layout.log_root(tmp_path / "arg") == str(tmp_path / "arg")


def test_hidden_names_are_never_runs():
    assert layout.is_run_name("20261122-133316")
    assert not layout.is_run_name(".sweeps") and not layout.is_run_name(".runlog-index.jsonl")
