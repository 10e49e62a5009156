"""`runlog show`, and how every command finds its RUN."""

from __future__ import annotations

import json

from runlog.cli import main as cli

import cli_helpers
from cli_helpers import add_mess, one_error_line, runlog

shared_history = cli_helpers.shared_history  # the fixture, for this module


def test_show_is_readable(history, capsys):
    ids = history.ids()
    assert cli(history.cli("note", ids[2], "cnn is slower per step")) == 0
    capsys.readouterr()
    assert cli(history.cli("show", "-2")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Run {ids[2]} · finished")
    for section in ("Arguments:", "Metrics:", "Git:", "Notes:", "Files in "):
        assert section in out
    assert ["model", "given", "cnn"] in [ln.split() for ln in out.splitlines()]
    assert "cnn is slower per step" in out and "code.patch" in out
    assert cli(history.cli("show", "-1")) == 0
    assert "Traceback:" in capsys.readouterr().out  # the failed run's traceback


def test_show_patch_and_json(shared_history, capsys):
    assert cli(shared_history.cli("show", "-2", "--patch")) == 0
    patch = capsys.readouterr().out
    assert "diff --git a/model.py b/model.py" in patch and "+LAYERS = 4" in patch
    assert cli(shared_history.cli("show", shared_history.ids()[0], "--patch")) == 1
    assert "saved no code changes" in capsys.readouterr().err
    assert cli(shared_history.cli("show", "-1", "--json")) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["status"] == "failed" and raw["error"]["type"] == "RuntimeError"
    assert "dir" not in raw


def test_run_resolution(shared_history, capsys):
    ids = shared_history.ids()  # oldest first
    for spec, want in ((ids[1], ids[1]), ("-1", ids[3]), ("-2", ids[2]), ("-4", ids[0]),
                       (None, ids[3])):
        assert cli(shared_history.cli("show", "--json", *([spec] if spec else []))) == 0
        assert json.loads(capsys.readouterr().out)["id"] == want, spec
    # a unique prefix: the id of the newest run without its last character, when no other
    # id starts the same way (ids are times: the newest is most often alone in its second)
    other = [i for i in ids[:3] if i.startswith(ids[3][:-1])]
    if not other:
        assert cli(shared_history.cli("show", "--json", ids[3][:-1])) == 0
        assert json.loads(capsys.readouterr().out)["id"] == ids[3]
    # a full id that is also the prefix of others (…-2, …-3) names itself
    if any(i.startswith(ids[0] + "-") for i in ids[1:]):
        assert cli(shared_history.cli("show", "--json", ids[0])) == 0
        assert json.loads(capsys.readouterr().out)["id"] == ids[0]


def test_unknown_and_ambiguous_runs_are_one_line(shared_history):
    ids = shared_history.ids()
    for spec, says in (("zzz", "no run matches 'zzz'"), ("-9", "no run -9: there are 4 runs"),
                       ("-0", "no run -0")):
        p = runlog(shared_history.logs, "show", spec)
        assert p.returncode == 1 and p.stdout == ""
        assert says in one_error_line(p.stderr)
    p = runlog(shared_history.logs, "show", ids[0][:4])  # the year: every run
    assert p.returncode == 1
    err = one_error_line(p.stderr)
    assert f"'{ids[0][:4]}' matches 4 runs" in err and all(i in err for i in ids)
    for cmd in (["report", "zzz"], ["tail", "--no-follow", "zzz"], ["note", "-7", "x"],
                ["diff", "zzz", "-1"], ["diff", "-1", ids[0][:4]]):
        p = runlog(shared_history.logs, *cmd)
        assert p.returncode == 1 and p.stdout == "", cmd
        one_error_line(p.stderr)


def test_show_among_foreign_files_and_broken_runs(history, capsys):
    ids = history.ids()
    broken = add_mess(history.logs)
    for args in (["show"], ["show", "-4"], ["show", "--json", "-1"], ["show", "--patch", "-2"],
                 ["show", ids[1]]):
        assert cli(history.cli(*args)) == 0, args
        assert capsys.readouterr().err == ""  # the newest runs are found without reading older
    assert cli(history.cli("show", "20200101-000000")) == 1  # the torn one, asked for by name
    err = capsys.readouterr().err  # a whole id names that run or nothing: no other run is read
    assert one_error_line(err).startswith("runlog: error: run '20200101-000000' has no readable "
                                          "record (")
    assert cli(history.cli("show", "2020")) == 1  # a prefix of the broken and the foreign only
    err = capsys.readouterr().err  # now every folder is read: each broken one said once
    assert one_error_line(err, warnings=2).endswith("no run matches '2020'")
    assert [b for b in broken if b in err] == broken


def test_missing_log_dir(tmp_path):
    p = runlog(tmp_path / "nowhere", "show")
    assert p.returncode == 1 and "no log directory" in one_error_line(p.stderr)
