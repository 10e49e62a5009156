"""The note: why a run exists, typed on the command line or given in code.

``--note TEXT`` / ``--note=TEXT`` is taken out of ``sys.argv`` once, so the
script's own parser never sees it — unless that parser (or else the first of its
subcommands' parsers) defines ``--note`` itself, which then gets it back (see
``argparse_hook``).
"""

from __future__ import annotations

import os
import sys

_stashed: str | None = None
_taken = False


def take_note(argv: list[str]) -> tuple[str | None, list[str]]:
    """Remove ``--note TEXT`` / ``--note=TEXT`` from argv (before any ``--``)."""
    note = None
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            out.extend(argv[i:])
            break
        if a == "--note" and i + 1 < len(argv):
            note = argv[i + 1]
            i += 2
            continue
        if a.startswith("--note="):
            note = a[len("--note="):]
            i += 1
            continue
        out.append(a)
        i += 1
    return note, out


def strip_from_argv() -> None:
    """Take the note out of sys.argv once, so the script's parser never sees it."""
    global _stashed, _taken
    if _taken:
        return
    _taken = True
    argv = getattr(sys, "argv", None)
    if not argv or not any(a == "--note" or a.startswith("--note=") for a in argv[1:]):
        return
    note, rest = take_note(argv[1:])
    if note is None:
        return
    _stashed = note
    sys.argv[1:] = rest
    from . import argparse_hook

    argparse_hook.hand_back_note(note)


def stashed() -> str | None:
    """The note taken from this process's command line, if any."""
    return _stashed


def typed() -> str | None:
    """The note typed on this process's command line (``--note``)."""
    return _stashed


def decide(typed_note: str | None, code_note: str | None) -> str | None:
    """The run's note. A note typed on the command line is never dropped: with a note
    in the code as well, both are kept, the typed one first. ``RUNLOG_NOTE`` is
    the note when neither gives one."""
    from ..folder.record import clean_text

    if typed_note is None and code_note is None:
        typed_note = os.environ.get("RUNLOG_NOTE") or None
    parts = []
    for n in (typed_note, code_note):
        if n is None:
            continue
        n = clean_text(str(n)).strip()
        if n and n not in parts:
            parts.append(n)
    return "; ".join(parts) or None


def reset() -> None:
    """Forget the note taken (tests; a new command line)."""
    global _stashed, _taken
    _stashed, _taken = None, False
