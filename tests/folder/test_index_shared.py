"""The index on a shared filesystem: several writers at once, lines torn or lost.

On NFS an ``O_APPEND`` write is not atomic across hosts: two appends can run
into one line, or one can be cut. These tests make that happen for real
(several processes appending at once, one of them writing half lines without
their newline) and check that every reader still finds every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from runlog.folder import index, listing, notes, record

from .test_index import T0, ids, make_run

# Each writer makes N runs of its own script as the lifecycle leaves them (folder, run.json,
# start and end lines, a note on every third, the script's last-finished pointer). A
# "tearing" writer gives every index line of its runs only its first half, without the
# newline: the next line anyone appends runs into it.
WRITER = textwrap.dedent("""
    import json, os, sys, time
    from runlog.folder import index, latest, notes, record
    from runlog.folder.layout import LogDir

    root, tag, n, tear = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "tear"
    script = f"/src/{tag}.py"

    def torn(entry):
        data = json.dumps(entry, separators=(",", ":")).encode()
        fd = os.open(LogDir(root).index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, data[: len(data) // 2])  # half a line, no newline
        os.close(fd)

    def append_record(r):
        if not tear:
            return index.append_record(root, r)
        line = record.summary(r)
        if r["status"] != "running" and notes.read(os.path.join(root, r["id"])):
            line["notes"] = notes.read(os.path.join(root, r["id"]))
        torn(line)

    for i in range(n):
        run_id, d = index.new_run_dir(root, f"{tag}-{i}")
        r = record.new_record(run_id, time.time(), command=["python", script], command_line=None,
                              script=os.path.basename(script), script_path=script, name=f"{tag}-{i}")
        record.write(d, r, pretty=False)
        append_record(r)
        if i % 3 == 0:
            block = notes.append(d, f"note {tag} {i}")
            if tear:
                torn({"id": run_id, "notes_added": block})
            else:
                index.append_note(root, run_id, block)
        r.update(status="finished", exit_code=0, ended_at=record.iso(time.time()), duration_s=0.5)
        record.write(d, r)
        append_record(r)
        latest.remember(root, r)
        print(run_id, flush=True)
""")


def run_writers(root, writers: list[tuple[str, str]], n: int) -> dict[str, list[str]]:
    """Start every writer at once; their run ids, in the order each made them."""
    procs = {tag: subprocess.Popen([sys.executable, "-c", WRITER, str(root), tag, str(n), mode],
                                   stdout=subprocess.PIPE, text=True)
             for tag, mode in writers}
    made = {}
    for tag, p in procs.items():
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        made[tag] = out.split()
    return made


def test_runs_survive_concurrent_writers_that_tear_lines(tmp_path):
    root = str(tmp_path)
    made = run_writers(tmp_path, [("a", "whole"), ("b", "whole"), ("c", "whole"), ("t", "tear")], 25)
    every = {i for got in made.values() for i in got}
    assert len(every) == 100
    raw = (tmp_path / ".runlog-index.jsonl").read_bytes()
    assert raw.count(b"\n") < raw.count(b'"id"')  # lines did run together

    runs = index.sorted_runs(root)
    assert {r["id"] for r in runs} == every
    assert all(r["status"] == "finished" for r in runs)
    assert ids(runs) == ids(sorted(runs, key=index.newest_first_key, reverse=True))
    by = {r["id"]: r for r in runs}
    for tag, got in made.items():
        for i, run_id in enumerate(got):  # notes too, from the index or from notes.md
            assert (f"note {tag} {i}" in (by[run_id].get("notes") or "")) == (i % 3 == 0), run_id
    assert index.newest(root, 7) == runs[:7]
    # the previous run of each script: by its pointer, and by reading the index alone
    for tag, got in made.items():
        assert index.previous(root, f"/src/{tag}.py", "9999", "")["id"] == got[-1]
    for f in os.listdir(tmp_path / ".runlog-latest"):
        os.unlink(tmp_path / ".runlog-latest" / f)
    for tag in "abc":  # their lines are whole, or whole after another's half line
        assert index.previous(root, f"/src/{tag}.py", "9999", "")["id"] == made[tag][-1]


def test_the_cli_lists_and_shows_runs_whose_lines_were_torn(tmp_path):
    made = run_writers(tmp_path, [("a", "whole"), ("t", "tear")], 6)
    env = {k: v for k, v in os.environ.items() if k != "RUNLOG_DIR"}
    rl = [sys.executable, "-m", "runlog", "--dir", str(tmp_path)]
    got = subprocess.run([*rl, "ls", "--all", "--json"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert got.returncode == 0 and got.stderr == ""  # torn lines are no news: no warning
    listed = [json.loads(ln) for ln in got.stdout.splitlines()]
    assert {r["id"] for r in listed} == set(made["a"] + made["t"])
    assert {r["status"] for r in listed} == {"finished"}
    torn = made["t"][-1]
    show = subprocess.run([*rl, "show", torn], capture_output=True, text=True, env=env, timeout=60)
    assert show.returncode == 0 and torn in show.stdout and "finished" in show.stdout
    grep = subprocess.run([*rl, "ls", "--grep", "note t 3", "--json"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert [json.loads(ln)["id"] for ln in grep.stdout.splitlines()] == [made["t"][3]]


def test_a_half_line_then_another_writers_line(tmp_path):
    """Written in a known order: A's line cut in half, then B's whole lines; A's lines all lost."""
    root = str(tmp_path)
    a = make_run(tmp_path, T0, in_index=False)
    line = json.dumps(record.summary(a), separators=(",", ":")).encode()
    with open(tmp_path / ".runlog-index.jsonl", "ab") as f:
        f.write(line[: len(line) // 2])
    b = make_run(tmp_path, T0 + 1)  # its start line runs into A's half line
    block = notes.append(str(tmp_path / b["id"]), "checked")
    with open(tmp_path / ".runlog-index.jsonl", "ab") as f:
        f.write(line[:40])
    index.append_note(root, b["id"], block)  # a note's line after another half line
    scan = listing.IndexScan(root)
    assert scan.entry(b["id"])["status"] == "finished"
    assert scan.entry(a["id"]) is None and scan.torn == 2  # read to the start: nothing of A
    scan.close()
    runs = index.sorted_runs(root)
    assert ids(runs) == [b["id"], a["id"]]
    assert runs[0]["notes"] == block and runs[1]["status"] == "finished"
    assert index.read(root)[b["id"]]["notes"] == block
    assert not (tmp_path / ".runlog-latest").exists()  # the index alone decides
    assert index.previous(root, "/src/train.py", "9999", "")["id"] == b["id"]
    assert index.newest(root, 1)[0]["id"] == b["id"]


def test_a_run_whose_lines_were_all_lost_is_still_listed(tmp_path):
    root = str(tmp_path)
    runs = [make_run(tmp_path, T0 + s) for s in range(5)]
    lost = runs[2]["id"]
    path = tmp_path / ".runlog-index.jsonl"
    kept = [ln for ln in path.read_text().splitlines() if f'"{lost}"' not in ln]
    path.write_text("\n".join(kept) + "\n")  # overwritten by another host's append: no trace
    assert ids(index.sorted_runs(root)) == [r["id"] for r in runs[::-1]]
    assert index.newest(root, 3)[2]["id"] == lost
    assert index.sorted_runs(root)[2]["status"] == "finished"


def test_the_newest_runs_read_only_the_end_of_the_index(tmp_path):
    root = str(tmp_path)
    runs = [make_run(tmp_path, T0 + 60 * s) for s in range(40)]
    scan = listing.IndexScan(root)
    it = listing.stream(root, scan=scan, want=3)
    got = [next(it)["id"] for _ in range(3)]
    assert got == [r["id"] for r in runs[::-1][:3]]
    assert not scan.over  # the older lines were never read
    rest = [r["id"] for r in it]
    assert rest == [r["id"] for r in runs[::-1][3:]]
    scan.close()


def test_a_hole_of_zero_bytes_before_a_line(tmp_path):
    """NFS can leave a run of zero bytes where another client's write was lost."""
    root = str(tmp_path)
    a = make_run(tmp_path, T0, in_index=False)
    with open(tmp_path / ".runlog-index.jsonl", "ab") as f:
        f.write(b"\0" * 300)
    index.append_record(root, a)  # its line follows the hole on the same line
    with open(tmp_path / ".runlog-index.jsonl", "ab") as f:
        f.write(b"\0" * 300 + b"\n")
    scan = listing.IndexScan(root)
    assert scan.entry(a["id"])["status"] == "finished" and scan.torn == 2
    scan.close()
    assert ids(index.sorted_runs(root)) == [a["id"]]
