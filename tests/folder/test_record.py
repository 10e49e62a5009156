"""folder/record.py: run.json — new, upgraded, validated, written atomically — and the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from runlog.folder import record
from runlog.folder.layout import RunFolder
from runlog.folder.record import RecordError
from runlog.folder.settle import settle


def new(run_id="20261122-133316", t0=None, **kw) -> dict:
    kw.setdefault("command", ["python", "train.py"])
    kw.setdefault("command_line", "python train.py")
    kw.setdefault("script", "train.py")
    kw.setdefault("script_path", "/src/train.py")
    return record.new_record(run_id, time.time() if t0 is None else t0, **kw)


def dead_pid() -> int:
    """The pid of a real process that has ended and been reaped."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def write_raw(folder, text: str) -> str:
    (folder / "run.json").write_text(text)
    return str(folder)


# ---------------------------------------------------------------- new and read


def test_a_new_record_reads_back_as_written(tmp_path):
    r = new(note="why", name="base", tags=("a", 1))
    assert (r["schema"], r["status"], r["pid"]) == (record.SCHEMA, "running", os.getpid())
    assert r["tags"] == ["a", "1"] and r["ended_at"] is None and r["args"] == {}
    record.write(str(tmp_path), r, pretty=False)
    assert record.read(str(tmp_path)) == r


def test_a_schema_0_record_is_filled_not_renamed(tmp_path):
    old = {"id": "20201010-101010", "status": "finished", "note": 3, "extra": {"kept": 1}}
    r = record.read(write_raw(tmp_path, json.dumps(old)))
    assert r["schema"] == 0 and r["id"] == "20201010-101010"
    assert r["status"] == "finished" and r["note"] == "3"  # shown as text
    assert r["extra"] == {"kept": 1}
    assert (r["args"], r["metrics"], r["tags"], r["command"], r["args_given"]) == ({}, {}, [], [], [])
    assert r["git"] is None and r["previous"] is None and r["script_path"] is None


def test_a_record_without_a_status_reads_as_running(tmp_path):
    assert record.read(write_raw(tmp_path, '{"id": "x"}'))["status"] == "running"


@pytest.mark.parametrize("text", ["{", "", '{"id": "x", "args": {}', "[" * 100000])
def test_unparsable_json_is_an_error(tmp_path, text):
    with pytest.raises(RecordError, match="unreadable"):
        record.read(write_raw(tmp_path, text))


@pytest.mark.parametrize("text", ["[1, 2]", "3", "null", '"run"', '{"id": 3}', '{"id": ""}',
                                  '{"status": "finished"}'])
def test_json_that_is_no_record_is_an_error(tmp_path, text):
    with pytest.raises(RecordError, match="not a runlog record"):
        record.read(write_raw(tmp_path, text))


@pytest.mark.parametrize("field, value", [
    ("args", [1]), ("metrics", 3), ("git", "abc"), ("error", "boom"), ("tags", "a"),
    ("command", "python x.py"), ("args_given", {}), ("duration_s", "3 s"),
    ("metrics", {"loss": 0.5}),
])
def test_a_field_of_the_wrong_type_is_corrupt(tmp_path, field, value):
    with pytest.raises(RecordError, match="corrupt"):
        record.read(write_raw(tmp_path, json.dumps({"id": "x", field: value})))


def test_a_missing_or_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(RecordError, match="no run.json"):
        record.read(str(tmp_path))
    (tmp_path / "run.json").mkdir()  # there, but no file (root can read any file)
    with pytest.raises(RecordError, match="unreadable"):
        record.read(str(tmp_path))


# ---------------------------------------------------------------- writing


def test_writes_replace_the_record_and_leave_no_temporary_file(tmp_path):
    r = new()
    record.write(str(tmp_path), r, pretty=False)
    compact = (tmp_path / "run.json").read_text()
    r["status"] = "finished"
    record.write(str(tmp_path), r, pretty=True)
    assert os.listdir(tmp_path) == ["run.json"]
    assert "\n" not in compact.rstrip("\n") and "\n  " in (tmp_path / "run.json").read_text()
    assert record.read(str(tmp_path))["status"] == "finished"


def test_a_value_json_cannot_hold_is_written_as_text(tmp_path):
    r = new()
    r["args"] = {"cfg": {}}
    r["args"]["cfg"]["self"] = r["args"]  # circular
    record.write(str(tmp_path), r)
    assert isinstance(record.read(str(tmp_path))["args"], dict)


FAILING_WRITE = """\
import resource, signal, sys
from runlog.folder import record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    record.write_atomic(sys.argv[1], "x" * 100000)
except OSError as e:
    print("failed:", e.strerror)
"""


def failed_write(tmp_path):
    (tmp_path / "run.json").write_text('{"id": "old"}')
    p = subprocess.run([sys.executable, "-c", FAILING_WRITE, str(tmp_path / "run.json")],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("failed:"), p.stderr


def test_a_write_that_fails_half_way_keeps_the_old_record_and_no_temporary_file(tmp_path):
    failed_write(tmp_path)  # a real short write: the file size limit, as a full disk would
    assert record.read(str(tmp_path))["id"] == "old"
    assert os.listdir(tmp_path) == ["run.json"]


# ---------------------------------------------------------------- the summary


def finished() -> dict:
    r = new()
    r.update(status="killed", exit_code=143, signal="SIGTERM", ended_at=r["started_at"],
             duration_s=1.5, error={"type": "X", "message": "m", "where": None, "traceback": []},
             git={"commit": "a" * 40, "short": "aaaaaaa", "branch": "main", "dirty": True,
                  "changed_files": ["x.py"], "patch": "code.patch", "patch_truncated": False})
    return r


LEGACY_LINE = {  # an index line written by runlog before the summary existed
    "id": "20251010-101010", "name": None, "tags": [], "status": "finished", "exit_code": 0,
    "started_at": "2025-10-10T10:10:10.000+00:00", "ended_at": "2025-10-10T10:10:11.000+00:00",
    "duration_s": 1.0, "note": "old", "script": "train.py", "script_path": "/src/train.py",
    "args": {"lr": 0.1}, "args_given": ["lr"], "metrics": {}, "pid": 1, "host": "h",
    "git_short": "abcdef1", "git_commit": "abcdef1" + "0" * 33, "command_line": "python train.py",
}


def test_running_and_finished_summaries_have_the_same_keys():
    running, done = record.summary(new()), record.summary(finished())
    assert set(running) == set(done) == set(record.SUMMARY_FIELDS)
    assert done["git"] == {"commit": "a" * 40, "short": "aaaaaaa", "branch": "main", "dirty": True}
    assert running["git"] is None and done["signal"] == "SIGTERM"


def test_a_legacy_index_line_gets_git_nested():
    entry = record.from_index(dict(LEGACY_LINE))
    assert "git_short" not in entry and "git_commit" not in entry
    assert entry["git"] == {"commit": LEGACY_LINE["git_commit"], "short": "abcdef1",
                            "branch": None, "dirty": None}
    no_git = record.from_index(dict(LEGACY_LINE, git_short=None, git_commit=None))
    assert no_git["git"] is None


def test_a_legacy_index_line_has_the_summary_keys():
    assert set(record.from_index(dict(LEGACY_LINE))) == set(record.summary(new()))


# ---------------------------------------------------------------- lost runs


def test_a_running_record_whose_process_is_gone_is_shown_lost():
    here = os.uname().nodename
    assert record.shown_status({"status": "running", "pid": dead_pid(), "host": here}) == "lost"
    assert record.shown_status({"status": "running", "pid": os.getpid(), "host": here}) == "running"
    # another machine's process cannot be asked; an ended run keeps its status
    assert record.shown_status({"status": "running", "pid": dead_pid(), "host": "elsewhere"}) \
        == "running"
    assert record.shown_status({"status": "failed", "pid": dead_pid(), "host": here}) == "failed"


def test_a_lost_run_ends_at_its_last_write_not_at_reading(tmp_path):
    t0 = float(int(time.time()) - 1000)
    r = new(t0=t0)
    r["pid"] = dead_pid()
    record.write(str(tmp_path), r, pretty=False)
    (tmp_path / "run.log").write_text("…\n")
    (tmp_path / "metrics.jsonl").write_text(
        '{"name":"loss","value":0.5,"step":1,"time":1}\n'
        '{"name":"loss","value":0.25,"step":2,"time":2}\n{"name":"lo')  # torn by the kill
    for name, age in (("run.json", 1), ("metrics.jsonl", 5), ("run.log", 7)):
        os.utime(tmp_path / name, (t0 + age, t0 + age))
    shown = settle(record.read(str(tmp_path)), RunFolder(str(tmp_path)))
    assert shown["status"] == "lost"
    assert shown["ended_at"] == record.iso(t0 + 7) and shown["duration_s"] == 7.0
    assert shown["metrics"]["loss"] == {"last": 0.25, "min": 0.25, "max": 0.5, "count": 2, "step": 2}


def test_settle_leaves_an_ended_run_as_it_is(tmp_path):
    r = finished()
    assert settle(dict(r), RunFolder(str(tmp_path))) == r
