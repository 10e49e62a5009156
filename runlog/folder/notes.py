"""``notes.md``: notes added to a run, appended and never rewritten.

Each note is a block::

    ## 2026-11-23T00:17:12+01:00

    the text of the note


The heading is the local time with its offset, to the second. A note is one
``O_APPEND`` write, so notes added at the same time by several processes stay
whole.
"""

from __future__ import annotations

import os

from .layout import RunFolder, read_bytes


def block(text: str, stamp: str | None = None) -> str:
    """The text a note adds to notes.md."""
    if stamp is None:
        import datetime

        stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"## {stamp}\n\n{text}\n\n"


def clean(text) -> str:
    """A note's text: stripped, and writable whatever bytes it came from."""
    from .record import clean_text

    text = clean_text(str(text)).strip()
    if not text:
        raise ValueError("a note needs some text")
    return text


def append(run_dir: str, text) -> str:
    """Append a note with its time; returns the block written."""
    b = block(clean(text))
    fd = os.open(RunFolder(run_dir).notes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b.encode("utf-8"))
    finally:
        os.close(fd)
    return b


def read(run_dir: str) -> str:
    path = RunFolder(run_dir).notes
    if not os.access(path, os.F_OK):  # most runs have no notes: no exception raised and caught
        return ""
    try:
        text = read_bytes(path).decode("utf-8", "replace")
    except OSError:
        return ""
    # as a file read in text mode: "\r\n" and a lone "\r" end a line as "\n" does
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def split(text: str) -> list[list[str]]:
    """notes.md as [[time, text], …] (the time as "YYYY-mm-dd HH:MM")."""
    notes: list[list[str]] = []
    for line in text.split("\n"):  # not splitlines(): U+2028 and others stay in their note
        if line.startswith("## "):
            stamp = line[3:].strip()
            notes.append([stamp[:16].replace("T", " "), ""])
        elif notes:
            notes[-1][1] += line + "\n"
    return [[t, body.strip()] for t, body in notes if body.strip()]
