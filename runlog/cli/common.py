"""What the commands share: errors, finding runs, reading a run in full.

Runs are read and written only through ``runlog.folder``.
"""

from __future__ import annotations

import os
import sys

from ..folder import index, notes, record
from ..folder.layout import RunFolder
from ..folder.settle import settle


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


shown_status = record.shown_status


def all_runs(root: str) -> list[dict]:
    """Every run's summary, newest first."""
    check_root(root)
    return index.sorted_runs(root, warn=warn)


def stream_runs(root: str, found: tuple[list[str], list[str]] | None = None,
                want: int | None = None):
    """Every run's summary, newest first, one at a time (memory does not grow with the history).
    ``found``: the log directory's folders (``index.folders``), when listed already."""
    check_root(root)
    return index.stream(root, warn=warn, found=found, want=want)


def newest_runs(root: str, n: int) -> list[dict]:
    check_root(root)
    return index.newest(root, n, warn=warn)


def folder(root: str, entry: dict) -> RunFolder:
    return index.folder_of(root, entry)


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
        return index.resolve(root, spec, runs)
    except index.NoSuchRun as e:
        raise CliError(str(e)) from None


def _quick_find(root: str, spec: str | None) -> dict | None:
    check_root(root)
    n = 1 if not spec else index.minus_n(spec)
    if n is not None:
        if n < 1:
            return None
        newest = index.newest(root, n, warn=warn)
        return newest[n - 1] if len(newest) == n else None
    names = [i for i in index.run_ids(root) if i.startswith(spec)]
    if spec in names:
        try:
            return index.resolve(root, spec, [])
        except index.NoSuchRun as e:
            raise CliError(str(e)) from None
    return index.read_run(root, names[0], warn) if len(names) == 1 else None


def is_run(root: str, spec: str) -> bool:
    """Whether a word names a run: -N, or an id / prefix of a folder holding a run.json."""
    if index.minus_n(spec) is not None:
        return True
    return any(i.startswith(spec) and RunFolder(os.path.join(root, i)).has_record()
               for i in index.run_ids(root))


def is_id(root: str, word: str) -> bool:
    """Whether a word is the whole id of a run folder holding a run.json."""
    return bool(word.strip(".")) and os.sep not in word and RunFolder(
        os.path.join(root, word)).has_record()


def load(root: str, spec: str | None, runs: list[dict] | None = None) -> dict:
    """The full record of one run (run.json), with ``dir`` and the status as shown."""
    entry = find(root, spec, runs)
    path = folder(root, entry).path
    try:
        rec = record.read(path)
    except record.RecordError as e:
        if entry.get("shown_status") == "lost":  # killed while it started: no run.json yet
            return {**record.upgrade(dict(entry)), "dir": path}
        raise CliError(str(e)) from None
    rec["dir"] = path
    rec["shown_status"] = shown_status(rec)
    return rec


def settled(rec: dict) -> dict:
    """A loaded record fit to show: a run that never finished gets what it wrote since."""
    return settle(rec, RunFolder(rec["dir"]))


def previous_of(root: str, rec: dict) -> dict | None:
    prev_id = rec.get("previous")
    if not prev_id:
        return None
    try:  # one small file, not the whole index
        return record.read(os.path.join(root, prev_id))
    except record.RecordError:
        scan = index.IndexScan(root)  # its lines only, read from the index's end
        try:
            return scan.entry(prev_id)
        finally:
            scan.close()


def read_notes(run_dir: str) -> str:
    return notes.read(run_dir)


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
