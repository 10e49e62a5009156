"""A Python program inside ``runlog run``: its arguments and runlog.start() join the parent's run.

The parent (``runlog run``) owns the run: it passes the output through, logs
it, and writes the final record. A Python program under it adds what only it
knows: its argparse arguments (the first top-level parse of the first process
to parse, claimed with an exclusive create of ``args.json``), its note, and,
if it calls ``runlog.start()``, its log records and metrics.
"""

from __future__ import annotations

import json
import os
import sys

ARGS_FILE = "args.json"
ENV_DIR = "RUNLOG_RUN_DIR"
ENV_ID = "RUNLOG_RUN_ID"
ENV_CONSOLE = "RUNLOG_CONSOLE_FD"


def run_dir() -> str | None:
    d = os.environ.get(ENV_DIR)
    return d if d and os.path.isdir(d) else None


def is_worker() -> bool:
    """A multiprocessing / DataLoader / spawned worker, never the program itself."""
    argv = getattr(sys, "argv", None) or []
    if "--multiprocessing-fork" in argv or (argv and argv[0] == "-c"):
        return True
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        try:
            return mp.parent_process() is not None
        except Exception:
            return False
    return False


def boot() -> None:
    """Called from sitecustomize at interpreter start-up."""
    if run_dir() is None or is_worker():
        return
    from . import capture

    capture.strip_note_from_argv()
    capture.listen(_on_parse)


def _on_parse(parser, namespace, given) -> None:
    from . import capture

    capture.unlisten()
    if is_worker():
        return
    write_args(capture.namespace_args(namespace), given, claim=True)


def write_args(args: dict, given, claim: bool) -> bool:
    """Give the run this program's arguments. With ``claim``, only if nobody has yet."""
    from . import capture
    from .mask import mask_args
    from .record import jsonable, write_atomic

    d = run_dir()
    if d is None:
        return False
    args = jsonable(args)
    data = {
        "args": mask_args(args),
        "args_given": list(dict.fromkeys(given or [])),
        "note": capture.stashed_note(),
        "script": sys.argv[0] if sys.argv else None,
        "pid": os.getpid(),
    }
    path = os.path.join(d, ARGS_FILE)
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    if claim:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False  # another process of the program parsed first
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        write_atomic(path, text)
    return True


def read_args(d: str) -> dict | None:
    try:
        with open(os.path.join(d, ARGS_FILE), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


NOTE_FILE = "note.txt"


def add_note_file(d: str, note: str) -> None:
    """start(note=...) inside `runlog run`: the parent puts it in the record."""
    from .record import write_atomic

    write_atomic(os.path.join(d, NOTE_FILE), note)


def read_note_file(d: str) -> str | None:
    try:
        with open(os.path.join(d, NOTE_FILE), encoding="utf-8") as f:
            return f.read() or None
    except OSError:
        return None
