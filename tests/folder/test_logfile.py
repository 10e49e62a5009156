"""folder/logfile.py: the run.log line, written and parsed, and reading a log from its end."""

from __future__ import annotations

import pytest

from runlog.folder import logfile
from runlog.folder.logfile import LEVELS, LogFile, last_lines

T = 1763850000.25  # a fixed moment, exact to the millisecond in binary


def written(tmp_path, *lines) -> list[str]:
    log = LogFile(str(tmp_path / "run.log"))
    for tag, text in lines:
        log.line(tag, text, T)
    log.close()
    return (tmp_path / "run.log").read_text().splitlines()


@pytest.mark.parametrize("tag", sorted(LEVELS))
def test_every_tag_round_trips_through_level_of(tmp_path, tag):
    (line,) = written(tmp_path, (tag, "some text"))
    assert logfile.level_of(line) == LEVELS[tag]
    assert logfile.line_time(line) == T
    assert line[:23] == logfile.second_prefix(int(T)) + ".250"
    assert line[23:].startswith(logfile.head(tag)) and line.endswith("some text")


def test_the_line_format(tmp_path):
    (line,) = written(tmp_path, ("INFO", "train: epoch 1"))
    assert line[4] == "-" and line[10] == " " and line[19] == "." and line[23] == " "
    assert line[24:] == "INFO    train: epoch 1"


def test_a_record_of_several_lines_continues_without_the_prefix(tmp_path):
    lines = written(tmp_path, ("ERROR", "Traceback (most recent call last):\n  File \"s.py\"\n"
                                        "ValueError: bad"), ("OUT", "after"))
    assert [logfile.level_of(ln) for ln in lines] == [40, None, None, 20]
    assert lines[1:3] == ['  File "s.py"', "ValueError: bad"]
    assert logfile.line_time(lines[1]) is None


@pytest.mark.parametrize("text", ["", "short", "2026-11-22 23:11:44.730", "x" * 40,
                                  "2026-11-22 23:11:44.730 NOSUCHTAG text"])
def test_other_text_has_no_level(text):
    assert logfile.level_of(text) is None


# ---------------------------------------------------------------- last_lines


def log_of(tmp_path, text: bytes) -> str:
    (tmp_path / "run.log").write_bytes(text)
    return str(tmp_path / "run.log")


def test_last_lines_and_where_to_follow_from(tmp_path):
    path = log_of(tmp_path, b"one\ntwo\nthree\nfour\n")
    assert last_lines(path, 2) == (["three", "four"], 19)
    assert last_lines(path, 10) == (["one", "two", "three", "four"], 19)
    assert last_lines(path, 0) == ([], 19)


def test_an_unfinished_last_line_is_left_to_follow(tmp_path):
    path = log_of(tmp_path, b"one\ntwo\nthr")
    assert last_lines(path, 5) == (["one", "two"], 8)
    assert last_lines(log_of(tmp_path, b"no newline yet"), 5) == ([], 0)
    assert last_lines(log_of(tmp_path, b""), 5) == ([], 0)


def test_keep_filters_before_counting(tmp_path):
    body = "".join(f"{'keep' if i % 3 == 0 else 'drop'} {i}\n" for i in range(100_000))
    path = log_of(tmp_path, body.encode())
    got, _ = last_lines(path, 4, keep=lambda ln: ln.startswith("keep"))
    assert got == ["keep 99987", "keep 99990", "keep 99993", "keep 99996", "keep 99999"][-4:]


def test_lines_across_block_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(logfile, "BLOCK", 7)  # every line spans blocks
    lines = [f"line {i} " + "x" * (i % 13) for i in range(50)]
    path = log_of(tmp_path, ("\n".join(lines) + "\npartial").encode())
    for n in (1, 5, 49, 50, 60):
        assert last_lines(path, n)[0] == lines[-n:]
    assert last_lines(path, 3, keep=lambda ln: "1" in ln)[0] == [ln for ln in lines if "1" in ln][-3:]


def test_a_5_mb_last_line(tmp_path):
    big = b"y" * (5 * 1024 * 1024)
    path = log_of(tmp_path, b"first\n" + big + b"\n")
    got, end = last_lines(path, 2, cap=len(big))
    assert got == ["first", big.decode()] and end == len(big) + 7
    got, _ = last_lines(path, 2)  # by default, what run.log itself keeps of a line: 1 MiB
    assert got == ["first", "y" * (1 << 20) + f" … [{len(big) - (1 << 20)} more bytes not shown]"]
    got, end = last_lines(log_of(tmp_path, b"first\n" + big), 2)  # still being written
    assert got == ["first"] and end == 6


def test_undecodable_bytes_do_not_stop_reading(tmp_path):
    assert last_lines(log_of(tmp_path, b"ok\n\xff\xfe bad\n"), 2)[0] == ["ok", "\ufffd\ufffd bad"]


def test_a_line_past_the_cap_gives_its_start_and_says_how_much_more(tmp_path):
    """A 40 MB line costs what its first `cap` bytes cost; the lines around it are whole."""
    big = b"z" * (3 * 65536 + 17)
    path = log_of(tmp_path, b"first\n" + big + b"\nlast\n")
    got, end = last_lines(path, 3, cap=1000)
    assert got == ["first", "z" * 1000 + f" … [{len(big) - 1000} more bytes not shown]", "last"]
    assert end == len(big) + 12
    assert last_lines(path, 3, cap=len(big))[0] == ["first", big.decode(), "last"]
    assert last_lines(path, 2, keep=lambda ln: ln != "last", cap=10)[0] == [
        "first", "z" * 10 + f" … [{len(big) - 10} more bytes not shown]"]
    small = log_of(tmp_path, b"abcdef\nxy\n")  # a file of one block is read in one go: the same rules
    assert last_lines(small, 2, cap=3) == (["abc … [3 more bytes not shown]", "xy"], 10)
