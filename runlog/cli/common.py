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


def warn(message: str) -> None:
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
    """Resolve RUN to its summary entry, as a CliError when it cannot be."""
    if runs is None:
        runs = all_runs(root)
    try:
        return store.resolve(root, spec, runs)
    except store.NoSuchRun as e:
        raise CliError(str(e)) from None


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
    entry = store.read_index(root).get(prev_id)
    if entry is None:
        try:
            entry = read_record(os.path.join(root, prev_id))
        except RecordError:
            return None
    return entry


def read_notes(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "notes.md"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
