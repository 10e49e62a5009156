"""args/note.py: --note taken out of argv, and which note the run gets."""

from __future__ import annotations

import pytest

from runlog.args.note import decide, take_note


@pytest.mark.parametrize("argv, note, rest", [
    (["--lr", "0.1"], None, ["--lr", "0.1"]),
    (["--note", "why", "--lr", "0.1"], "why", ["--lr", "0.1"]),
    (["--lr", "0.1", "--note=why, not"], "why, not", ["--lr", "0.1"]),
    (["--note="], "", []),
    (["--note", "a", "--note", "b"], "b", []),           # the last one counts, as argparse's
    (["--lr", "--note"], None, ["--lr", "--note"]),       # no text: left for the parser to reject
    (["--notes", "x", "--note-file", "y"], None, ["--notes", "x", "--note-file", "y"]),
])
def test_take_note_forms(argv, note, rest):
    assert take_note(argv) == (note, rest)


def test_double_dash_stops_it():
    argv = ["--lr", "1", "--", "cmd", "--note", "not ours", "--note=nor this"]
    assert take_note(argv) == (None, argv)
    assert take_note(["--note", "ours", "--", "--note", "theirs"]) == ("ours", ["--", "--note", "theirs"])


def test_take_note_does_not_change_its_argument():
    argv = ["--note", "x", "--lr", "1"]
    take_note(argv)
    assert argv == ["--note", "x", "--lr", "1"]


def test_decide_typed_first_then_code(monkeypatch):
    monkeypatch.setenv("RUNLOG_NOTE", "from the environment")
    assert decide("typed", "in code") == "typed; in code"
    assert decide("typed", None) == "typed"
    assert decide(None, "in code") == "in code"


def test_decide_keeps_a_note_given_twice_once(monkeypatch):
    monkeypatch.delenv("RUNLOG_NOTE", raising=False)
    assert decide("same", "same") == "same"
    assert decide("  same ", "same\n") == "same"
    assert decide("", "  ") is None and decide(None, None) is None


def test_runlog_note_only_when_neither_gives_one(monkeypatch):
    monkeypatch.setenv("RUNLOG_NOTE", "from the environment")
    assert decide(None, None) == "from the environment"
    assert decide("", None) is None  # an empty --note= is a note given, and says nothing
    monkeypatch.setenv("RUNLOG_NOTE", "")
    assert decide(None, None) is None


def test_decide_makes_any_note_writable(monkeypatch):
    monkeypatch.delenv("RUNLOG_NOTE", raising=False)
    assert decide("caf\udce9", 42) == "caf\ufffd; 42"  # undecodable argv bytes, a number
