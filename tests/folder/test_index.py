"""folder/index.py: run ids, the index, listing, the previous run and resolving RUN."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runlog.folder import index, notes, record
from runlog.folder.index import NoSuchRun

T0 = 1763850000.0  # a fixed second: ids and start times are known


def make_run(root, t0, *, status="finished", name=None, script_path="/src/train.py",
             in_index=True) -> dict:
    """A run as the lifecycle leaves it: folder, run.json and its start and end index lines."""
    run_id, d = index.new_run_dir(str(root), name, t0)
    r = record.new_record(run_id, t0, command=["python", "train.py"], command_line=None,
                          script="train.py", script_path=script_path, name=name)
    record.write(d, r, pretty=False)
    if in_index:
        index.append_record(str(root), r)
    if status != "running":
        r.update(status=status, exit_code=0 if status == "finished" else 1,
                 ended_at=record.iso(t0 + 1), duration_s=1.0)
        record.write(d, r)
        if in_index:
            index.append_record(str(root), r)
    return r


def add_note(root, run_id, text) -> str:
    block = notes.append(os.path.join(root, run_id), text)
    index.append_note(str(root), run_id, block)
    return block


def ids(runs) -> list[str]:
    return [r["id"] for r in runs]


# ---------------------------------------------------------------- run ids


def test_ids_of_the_same_second_are_numbered(tmp_path):
    root = str(tmp_path / "deep" / "logs")  # made on the first run
    made = [index.new_run_dir(root, None, T0)[0] for _ in range(3)]
    base = made[0]
    assert made == [base, f"{base}-2", f"{base}-3"]
    assert sorted(os.listdir(root)) == sorted(made)


def test_names_become_safe_folder_names(tmp_path):
    def name_of(name):
        return index.new_run_dir(str(tmp_path), name, T0)[0].split("-", 2)[2]

    assert name_of("lr 0.1/cnn") == "lr-0.1-cnn"
    assert name_of("a+b=c") == "a+b=c"
    assert name_of("...") == "run"
    assert len(name_of("x" * 100)) == 60


def test_concurrent_processes_never_share_an_id(tmp_path):
    code = ("import sys; from runlog.folder import index; "
            "print(index.new_run_dir(sys.argv[1], None, %r)[0])" % T0)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    got = [p.communicate(timeout=60)[0].strip() for p in procs]
    base = min(got, key=len)
    assert sorted(got) == sorted([base] + [f"{base}-{n}" for n in range(2, 7)])


# ---------------------------------------------------------------- the index


def test_a_runs_lines_are_merged_oldest_first(tmp_path):
    index.append(str(tmp_path), {"id": "a", "status": "running", "only_first": 1, "note": "x"})
    index.append(str(tmp_path), {"id": "a", "status": "finished", "note": "y"})
    index.append(str(tmp_path), {"id": "b", "status": "running"})
    entries = index.read(str(tmp_path))
    assert entries["a"] == {"id": "a", "status": "finished", "only_first": 1, "note": "y"}
    assert entries["b"]["status"] == "running"


def test_notes_added_are_concatenated(tmp_path):
    r = make_run(tmp_path, T0)
    first, second = add_note(tmp_path, r["id"], "first"), add_note(tmp_path, r["id"], "second")
    assert index.read(str(tmp_path))[r["id"]]["notes"] == first + second
    assert "notes_added" not in index.read(str(tmp_path))[r["id"]]
    assert index.sorted_runs(str(tmp_path))[0]["notes"] == first + second


def test_torn_and_junk_lines_are_skipped(tmp_path):
    a, b = make_run(tmp_path, T0), make_run(tmp_path, T0 + 1)
    with open(tmp_path / ".runlog-index.jsonl", "a") as f:
        f.write('junk\n[1, 2]\nnull\n{"id": 3}\n{"no": "id"}\n' + "[" * 100000 + "\n")
        f.write('{"id": "%s", "status": "fail' % a["id"])  # torn by a kill
    entries = index.read(str(tmp_path))
    assert set(entries) == {a["id"], b["id"]} and entries[a["id"]]["status"] == "finished"
    assert ids(index.sorted_runs(str(tmp_path))) == [b["id"], a["id"]]


def test_the_folders_are_the_truth(tmp_path):
    a = make_run(tmp_path, T0)
    b = make_run(tmp_path, T0 + 1, in_index=False)  # the index never heard of it
    gone = make_run(tmp_path, T0 + 2)
    os.rename(tmp_path / gone["id"], tmp_path / ".trash")  # folder gone, index line stays
    (tmp_path / "notes.txt").write_text("not a run")
    (tmp_path / "scratch").mkdir()  # a folder without a record
    assert ids(index.sorted_runs(str(tmp_path))) == [b["id"], a["id"]]


def history(root) -> list[dict]:
    """Runs of every kind: same-second collisions past -9, names, running, noted, unindexed."""
    runs = [make_run(root, T0 + s) for s in (0, 1, 1, 3)]
    runs += [make_run(root, T0 + 5) for _ in range(11)]  # -2 … -11: -10 is newer than -9
    runs.append(make_run(root, T0 + 6, name="named"))
    runs.append(make_run(root, T0 + 7, status="failed", in_index=False))
    runs.append(make_run(root, T0 + 8, status="running"))
    add_note(root, runs[0]["id"], "after the end")
    return runs


def test_newest_first_with_collision_numbers_compared_as_numbers(tmp_path):
    runs = history(tmp_path)
    base = runs[4]["id"]  # the first run of the busy second
    got = ids(index.sorted_runs(str(tmp_path)))
    busy = [i for i in got if i.startswith(base)]
    assert busy == [f"{base}-{n}" for n in range(11, 1, -1)] + [base]
    assert got[:3] == [runs[-1]["id"], runs[-2]["id"], runs[-3]["id"]]  # running, failed, named


def test_newest_agrees_with_sorted_runs(tmp_path):
    history(tmp_path)
    everything = index.sorted_runs(str(tmp_path))
    for n in range(1, len(everything) + 2):
        assert index.newest(str(tmp_path), n) == everything[:n], n


def test_newest_keeps_a_note_added_during_the_run(tmp_path):
    run_id, d = index.new_run_dir(str(tmp_path), None, T0)
    r = record.new_record(run_id, T0, command=[], command_line=None, script=None, script_path=None)
    index.append_record(str(tmp_path), r)
    add_note(tmp_path, run_id, "looks unstable")
    r.update(status="finished", exit_code=0)
    record.write(d, r)
    index.append_record(str(tmp_path), r)
    assert index.newest(str(tmp_path), 1) == index.sorted_runs(str(tmp_path))


# ---------------------------------------------------------------- the previous run


def rewrite_index(root, **dumps_kw) -> None:
    """The same index lines, written with json.dumps(**dumps_kw) instead of runlog's compact form."""
    path = root / ".runlog-index.jsonl"
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(e, **dumps_kw) + "\n" for e in lines))


def previous_of(root, script_path, before_t) -> str | None:
    p = index.previous(str(root), script_path, record.iso(before_t), exclude="")
    return p["id"] if p else None


def test_previous_is_the_newest_finished_run_of_the_same_script(tmp_path):
    old = make_run(tmp_path, T0)
    last = make_run(tmp_path, T0 + 1)
    make_run(tmp_path, T0 + 2, status="failed")
    make_run(tmp_path, T0 + 3, script_path="/src/other.py")
    make_run(tmp_path, T0 + 9)  # started after
    assert previous_of(tmp_path, "/src/train.py", T0 + 5) == last["id"]
    assert previous_of(tmp_path, "/src/train.py", T0 + 0.5) == old["id"]
    assert previous_of(tmp_path, "/src/new.py", T0 + 5) is None
    assert index.previous(str(tmp_path), None, record.iso(T0 + 5), "") is None
    excluded = index.previous(str(tmp_path), "/src/train.py", record.iso(T0 + 5), last["id"])
    assert excluded["id"] == old["id"]


@pytest.mark.parametrize("dumps_kw", [{"indent": None}, {"separators": (", ", ": ")},
                                      {"separators": (",", ":"), "ensure_ascii": False}])
def test_previous_does_not_depend_on_how_the_index_was_written(tmp_path, dumps_kw):
    make_run(tmp_path, T0)
    last = make_run(tmp_path, T0 + 1)
    make_run(tmp_path, T0 + 2, status="failed")
    rewrite_index(tmp_path, **dumps_kw)
    assert previous_of(tmp_path, "/src/train.py", T0 + 5) == last["id"]


def test_previous_of_a_script_with_a_non_ascii_path_in_a_default_json_index(tmp_path):
    last = make_run(tmp_path, T0, script_path="/home/müller/train.py")
    rewrite_index(tmp_path)  # json.dumps(entry): ", " ": " and \u00fc
    assert previous_of(tmp_path, "/home/müller/train.py", T0 + 5) == last["id"]


# ---------------------------------------------------------------- resolving RUN


def test_resolve_by_position_prefix_and_whole_id(tmp_path):
    a, b = make_run(tmp_path, T0), make_run(tmp_path, T0 + 3600 * 24 * 40)  # another month
    root = str(tmp_path)
    assert index.resolve(root, None)["id"] == b["id"]
    assert index.resolve(root, "-1")["id"] == b["id"] and index.resolve(root, "-2")["id"] == a["id"]
    assert index.resolve(root, a["id"][:6])["id"] == a["id"]
    assert index.resolve(root, a["id"])["id"] == a["id"]
    with pytest.raises(NoSuchRun, match="no run -3: there are 2 runs"):
        index.resolve(root, "-3")
    with pytest.raises(NoSuchRun):
        index.resolve(root, "-0")
    with pytest.raises(NoSuchRun, match="'2' matches 2 runs"):
        index.resolve(root, "2")
    with pytest.raises(NoSuchRun, match="no run matches 'x'"):
        index.resolve(root, "x")


def test_resolve_in_an_empty_log_directory(tmp_path):
    with pytest.raises(NoSuchRun, match="no runs"):
        index.resolve(str(tmp_path), "-1")


@pytest.mark.parametrize("runs", [None, []], ids=["listing", "quick"])
def test_a_whole_id_with_an_unreadable_record_is_an_error_not_its_namesake(tmp_path, runs):
    broken, other = make_run(tmp_path, T0), make_run(tmp_path, T0)
    assert other["id"] == broken["id"] + "-2"
    (tmp_path / broken["id"] / "run.json").write_text("{ torn")
    with pytest.raises(NoSuchRun, match="no readable record"):
        index.resolve(str(tmp_path), broken["id"], runs)
    assert index.resolve(str(tmp_path), other["id"], runs)["id"] == other["id"]


def test_a_whole_id_known_to_the_index_never_resolves_to_its_namesake(tmp_path):
    broken, _ = make_run(tmp_path, T0), make_run(tmp_path, T0)
    (tmp_path / broken["id"] / "run.json").write_text("{ torn")
    cached = index.sorted_runs(str(tmp_path))  # the index still lists it as finished
    assert index.resolve(str(tmp_path), broken["id"], cached)["id"] == broken["id"]
