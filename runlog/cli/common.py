"""What the commands share: errors, finding runs, reading a run in full."""

from __future__ import annotations

import os
import sys

from .. import store
from ..record import RecordError, read_record


class CliError(Exception):
    """A known failure: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


_warned: set = set()


def forget_warnings() -> None:
    _warned.clear()


def warn(message: str) -> None:
    """One line on stderr, once per process however often the broken thing is met."""
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write(f"runlog: warning: {message}\n")


def check_root(root: str) -> None:
    if not os.path.isdir(root):
        raise CliError(f"no log directory {root!r} (use --dir or RUNLOG_DIR)")


def pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, TypeError, ValueError):
        return True
    return True


def shown_status(r: dict) -> str:
    """``lost`` for a run still marked running whose process is gone."""
    status = r.get("status") or "?"
    if status == "running" and r.get("host") in (None, os.uname().nodename):
        if r.get("pid") and not pid_alive(r["pid"]):
            return "lost"
    return status


def all_runs(root: str) -> list[dict]:
    check_root(root)
    return store.sorted_runs(root, warn=warn)


def find(root: str, spec: str | None, runs: list[dict] | None = None) -> dict:
    """Resolve RUN to its summary entry, as a CliError when it cannot be.

    Without ``runs``, the common cases (the newest runs, a whole id, a prefix of
    one folder) read only the index's end or one run.json; the rest (errors,
    ambiguous prefixes) list every run, so their messages are exact.
    """
    if runs is None:
        entry = _quick_find(root, spec)
        if entry is not None:
            return entry
        runs = all_runs(root)
    try:
        return store.resolve(root, spec, runs)
    except store.NoSuchRun as e:
        raise CliError(str(e)) from None


def _quick_find(root: str, spec: str | None) -> dict | None:
    check_root(root)
    if not spec or (spec.startswith("-") and spec[1:].isdigit()):
        n = int(spec[1:]) if spec else 1
        if n < 1:
            return None
        newest = store.newest_runs(root, n, warn=warn)
        return newest[n - 1] if len(newest) == n else None
    names = [i for i in store.run_ids(root) if i.startswith(spec)]
    if spec in names:
        names = [spec]
    return store.read_run(root, names[0], warn) if len(names) == 1 else None


def is_run(root: str, spec: str) -> bool:
    """Whether a word names a run: -N, or an id / prefix of a folder holding a run.json."""
    if spec.startswith("-") and spec[1:].isdigit():
        return True
    return any(i.startswith(spec) and os.path.isfile(os.path.join(root, i, "run.json"))
               for i in store.run_ids(root))


def load(root: str, spec: str | None, runs: list[dict] | None = None) -> dict:
    """The full record of one run (run.json), with ``dir`` and the status as shown."""
    entry = find(root, spec, runs)
    path = entry.get("dir") or os.path.join(root, entry["id"])
    try:
        record = read_record(path)
    except RecordError as e:
        raise CliError(str(e)) from None
    record["dir"] = path
    record["shown_status"] = shown_status(record)
    return record


def previous_of(root: str, record: dict) -> dict | None:
    prev_id = record.get("previous")
    if not prev_id:
        return None
    try:  # one small file, not the whole index
        return read_record(os.path.join(root, prev_id))
    except RecordError:
        return store.read_index(root).get(prev_id)


def read_notes(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "notes.md"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


_NUMBER = None


def number(text: str):
    """``text`` as an int or float if it is written as one, else None."""
    global _NUMBER
    if _NUMBER is None:
        import re

        _NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
    if not _NUMBER.match(text):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
