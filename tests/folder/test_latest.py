"""folder/latest.py: the last finished run of each script, at a cost that does not grow with
the history, and always the same answer as reading the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runlog.folder import index, latest, record

from .test_index import T0, make_run


def finish(root, r) -> dict:
    latest.remember(str(root), r)  # what the lifecycle does when a run finishes
    return r


def scan(root, script_path, before, exclude):
    return index._scan_previous(str(root), script_path, before, exclude)


def test_pointers_give_what_the_index_gives(tmp_path):
    runs = []
    for i, (script, status) in enumerate([("/a.py", "finished"), ("/b.py", "finished"),
                                          ("/a.py", "failed"), ("/a.py", "finished"),
                                          ("/b.py", "killed"), ("/c.py", "failed")]):
        r = make_run(tmp_path, T0 + i, status=status, script_path=script)
        runs.append(finish(tmp_path, r))
    later = record.iso(T0 + 100)
    for script in ("/a.py", "/b.py", "/c.py", "/new.py"):
        want = scan(tmp_path, script, later, "x")
        got = index.previous(str(tmp_path), script, later, "x")
        assert (got or {}).get("id") == (want or {}).get("id"), script
    assert index.previous(str(tmp_path), "/a.py", later, "x")["id"] == runs[3]["id"]


def test_an_older_log_directory_gets_its_pointers_once(tmp_path):
    # runs written before the pointers existed: the first lookup reads the index, builds
    # every script's pointer and marks them complete; later lookups need no index at all
    a = make_run(tmp_path, T0, script_path="/a.py")
    make_run(tmp_path, T0 + 1, script_path="/b.py", status="failed")
    later = record.iso(T0 + 100)
    assert not os.path.exists(tmp_path / ".runlog-latest")
    assert index.previous(str(tmp_path), "/a.py", later, "x", build=True)["id"] == a["id"]
    assert (tmp_path / ".runlog-latest" / latest.COMPLETE).exists()
    (tmp_path / ".runlog-index.jsonl").write_text("{ not json\n")  # the index is gone now
    assert index.previous(str(tmp_path), "/a.py", later, "x")["id"] == a["id"]
    assert index.previous(str(tmp_path), "/b.py", later, "x") is None  # known: none finished
    assert index.previous(str(tmp_path), "/never.py", later, "x") is None


def test_a_stale_or_broken_pointer_sends_back_to_the_index(tmp_path):
    a = finish(tmp_path, make_run(tmp_path, T0, script_path="/a.py"))
    b = finish(tmp_path, make_run(tmp_path, T0 + 1, script_path="/a.py"))
    later = record.iso(T0 + 100)
    p = tmp_path / ".runlog-latest" / latest.key("/a.py")
    assert p.read_text().split() == [a["id"], b["id"]]  # appended: the last line counts
    # the run it names was deleted: the index still knows the one before
    import shutil

    shutil.rmtree(tmp_path / b["id"])
    assert index.previous(str(tmp_path), "/a.py", later, "x")["id"] in (a["id"], b["id"])
    for junk in ("", "../etc", ".hidden", "no-such-run"):
        p.write_text(junk)
        got = index.previous(str(tmp_path), "/a.py", later, "x")
        assert got is None or got["id"] in (a["id"], b["id"])
    # a pointer to a run that started after us (a concurrent one) is not "previous"
    p.write_text(a["id"])
    assert index.previous(str(tmp_path), "/a.py", record.iso(T0 - 10), "x") is None


def test_real_runs_keep_their_pointer(git_repo):
    (git_repo / "s.py").write_text("import runlog, sys\nrunlog.start()\nsys.exit(int(sys.argv[1]))\n")
    ids = []
    for code in ("0", "3", "0"):
        subprocess.run([sys.executable, "s.py", code], cwd=git_repo, capture_output=True,
                       timeout=60)
        ids.append(sorted(p.name for p in (git_repo / "logs").iterdir()
                          if p.is_dir() and not p.name.startswith("."))[-1])
    logs = git_repo / "logs"
    pointer = logs / ".runlog-latest" / latest.key(str((git_repo / "s.py").resolve()))
    assert pointer.read_text().split() == [ids[0], ids[2]]  # the finished ones; the last counts
    records = [json.loads((logs / i / "run.json").read_text()) for i in ids]
    assert records[1]["previous"] == ids[0] and records[2]["previous"] == ids[0]


def test_appended_pointers_read_their_last_line_and_stay_small(tmp_path):
    runs = [make_run(tmp_path, T0 + i, script_path="/a.py") for i in range(2)]
    p = tmp_path / ".runlog-latest" / latest.key("/a.py")
    p.parent.mkdir()
    p.write_text(runs[0]["id"])  # as an older runlog wrote it: the id alone, no newline
    finish(tmp_path, runs[1])
    later = record.iso(T0 + 100)
    assert index.previous(str(tmp_path), "/a.py", later, "x")["id"] == runs[1]["id"]
    with open(p, "a") as f:  # a line torn by another host's append: not an id, so the index decides
        f.write("\n20251122-2220")
    assert index.previous(str(tmp_path), "/a.py", later, "x")["id"] == runs[1]["id"]
    runs.append(make_run(tmp_path, T0 + 2, script_path="/a.py"))
    for _ in range(latest.COMPACT_AT // 20):  # many finishes: rewritten with the last once past the bound
        finish(tmp_path, runs[2])
    assert p.stat().st_size <= latest.COMPACT_AT
    assert p.read_text().split()[-1] == runs[2]["id"]
    assert index.previous(str(tmp_path), "/a.py", later, "x")["id"] == runs[2]["id"]
