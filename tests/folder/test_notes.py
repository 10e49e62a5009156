"""folder/notes.py: notes.md, appended and never rewritten."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from runlog.folder import notes

STAMP = r"## \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def test_a_note_is_one_block_with_its_time(tmp_path):
    block = notes.append(str(tmp_path), "  lr 0.3 diverged\n")
    assert re.fullmatch(STAMP + r"\n\nlr 0.3 diverged\n\n", block)
    assert notes.read(str(tmp_path)) == block
    assert notes.block("x", stamp="2026-11-23T00:17:12+01:00") == "## 2026-11-23T00:17:12+01:00\n\nx\n\n"


def test_notes_are_appended_never_rewritten(tmp_path):
    first = notes.append(str(tmp_path), "first")
    second = notes.append(str(tmp_path), "second\nwith two lines")
    assert notes.read(str(tmp_path)) == first + second
    times = [t for t, _ in notes.split(first + second)]
    assert [b for _, b in notes.split(first + second)] == ["first", "second\nwith two lines"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", t) for t in times)


def test_an_empty_note_is_refused(tmp_path):
    with pytest.raises(ValueError):
        notes.append(str(tmp_path), "  \n ")
    assert notes.read(str(tmp_path)) == ""  # no file, no error


def test_split_ignores_text_before_the_first_note_and_empty_notes():
    text = "stray\n## 2026-11-23T00:17:12+01:00\n\n\n## 2026-11-23T00:18:00+01:00\n\nkept\n\n"
    assert notes.split(text) == [["2026-11-23 00:18", "kept"]]


WRITER = """\
import sys
from runlog.folder import notes
letter, count = sys.argv[2], int(sys.argv[3])
sys.stdin.readline()  # start together
for i in range(count):
    notes.append(sys.argv[1], f"{letter}{i:04d} " + letter * 20000)
"""


def test_concurrent_appends_from_several_processes_stay_whole(tmp_path):
    letters, count = "abcdef", 100
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), x, str(count)],
                              stdin=subprocess.PIPE, text=True) for x in letters]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.stdin.close()
        assert p.wait(timeout=120) == 0
    got = [body for _, body in notes.split(notes.read(str(tmp_path)))]
    assert len(got) == len(letters) * count
    for body in got:
        head, tail = body.split(" ")
        assert tail == head[0] * 20000, head
    for x in letters:  # each writer's notes in the order it wrote them
        assert [b[:5] for b in got if b[0] == x] == [f"{x}{i:04d}" for i in range(count)]
