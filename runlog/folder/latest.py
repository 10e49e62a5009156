"""The last finished run of each script: one small file per script, so that finding the run
to compare with costs the same in a log directory of 10 runs or of 100,000.

``.runlog-latest/<key>``'s last line is the id of the script's last finished run
(the key is a hash of its ``script_path``); ``.runlog-latest/.complete`` says the files
were built from the whole index once, so a missing file means "no finished run
of this script". Like the index it is a cache: a file that is missing before
that build, stale, broken or naming a run that is gone sends the caller back to
the index, which is the truth.
"""

from __future__ import annotations

import os

from . import record as _record
from .layout import LogDir

COMPLETE = ".complete"
COMPACT_AT = 64 * 1024  # bytes of a script's appended ids before it is rewritten with the last
UNKNOWN = object()  # recall() cannot tell: read the index


def key(script_path: str) -> str:
    """FNV-1a of the path: stable across processes, no hashlib to import."""
    h = 0xcbf29ce484222325
    for b in script_path.encode("utf-8", "surrogateescape"):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def remember(root: str, rec: dict) -> None:
    """A run of a script finished: it is now that script's last finished run. Appended (the
    last line is the one that counts): a file made at every finish costs ~0.4 ms of CPU on
    some filesystems; the file is rewritten with its last line once it passes ``COMPACT_AT``."""
    if rec.get("status") != "finished" or not rec.get("script_path"):
        return
    path = os.path.join(LogDir(root).latest, key(rec["script_path"]))
    line = f"\n{rec['id']}\n".encode()  # the newline first: a file an older runlog wrote has none
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:  # the first one here: nothing is complete yet
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        grown = os.fstat(fd).st_size > COMPACT_AT
    finally:
        os.close(fd)
    if grown:
        _record.write_atomic(path, f"{rec['id']}\n")


def _last_line(path: str) -> str:
    """The file's last non-empty line (read from its end: the file only grows until compacted)."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 4096))
        lines = [ln for ln in f.read().split(b"\n") if ln.strip()]
    return lines[-1].decode("utf-8", "replace").strip() if lines else ""


def recall(root: str, script_path: str, before: str, exclude: str):
    """The script's last finished run (its summary), None when it has none, or UNKNOWN."""
    d = LogDir(root).latest
    try:
        run_id = _last_line(os.path.join(d, key(script_path)))
    except FileNotFoundError:
        return None if os.path.exists(os.path.join(d, COMPLETE)) else UNKNOWN
    except OSError:
        return UNKNOWN
    if not run_id or run_id == exclude or os.sep in run_id or run_id.startswith("."):
        return UNKNOWN
    path = LogDir(root).run(run_id).path
    try:
        rec = _record.read(path)
    except _record.RecordError:
        return UNKNOWN
    if (rec.get("status") != "finished" or rec.get("script_path") != script_path
            or str(rec.get("started_at")) > before):
        return UNKNOWN  # a concurrent run, a hash shared with another script: the index decides
    out = _record.summary(rec)
    out["dir"] = path
    return out


def build(root: str, entries: dict[str, dict]) -> None:
    """Write every script's last finished run from the index's merged entries (newest
    last), then mark the files complete."""
    last: dict[str, str] = {}
    for run_id, e in entries.items():  # in the order the index met them
        if e.get("status") == "finished" and isinstance(e.get("script_path"), str):
            last[e["script_path"]] = run_id
    d = LogDir(root).latest
    os.makedirs(d, exist_ok=True)
    for script_path, run_id in last.items():
        p = os.path.join(d, key(script_path))
        if not os.path.exists(p):  # a finish since may have written a newer one
            _record.write_atomic(p, f"{run_id}\n")
    _record.write_atomic(os.path.join(d, COMPLETE), "built from the index\n")
