"""What a Python program inside ``runlog run`` hands to the run its parent owns.

``args.json`` holds the program's argparse arguments (the first top-level
parse of the first process to parse claims it with an exclusive create),
the note it was given on its command line and its script; ``note.txt`` the
note given in its code (``start(note=...)``). The parent reads both when the
program ends and puts them in run.json; ``secret_options`` (the option strings
whose values are secrets) mask its command.
"""

from __future__ import annotations

import json
import os

from .layout import RunFolder
from .record import write_atomic


def write_args(run_dir: str, args: dict, given, note: str | None, script: str | None,
               claim: bool, secret_options=None, sources=None) -> bool:
    """Hand over the program's (masked) arguments, and the option strings its parser
    says hold secrets (the parent masks its command with them). With ``claim``, only
    if nobody has yet."""
    data = {
        "args": args,
        "args_given": list(dict.fromkeys(given or [])),
        "note": note,
        "script": script,
        "pid": os.getpid(),
        "secret_options": list(secret_options) if secret_options is not None else None,
    }
    if sources:  # a script's globals: where each value came from
        data["args_source"] = dict(sources)
    path = RunFolder(run_dir).args
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    if claim:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False  # another process of the program parsed first
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
    else:
        write_atomic(path, text)
    return True


def read_args(run_dir: str) -> dict | None:
    try:
        with open(RunFolder(run_dir).args, encoding="utf-8", errors="replace") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_note(run_dir: str, note: str) -> None:
    write_atomic(RunFolder(run_dir).note, note)


def read_note(run_dir: str) -> str | None:
    try:
        with open(RunFolder(run_dir).note, encoding="utf-8", errors="replace") as f:
            return f.read() or None
    except OSError:
        return None
